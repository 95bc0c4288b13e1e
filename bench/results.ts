/**
 * results.json v1: the contract every report, comparison and dashboard reads. A field never
 * changes meaning without a new schema version. docs/results-schema.md documents each field.
 */
import type { Gpu } from "./gpus.ts";
import type { DeviceInfo } from "./backends/backend.ts";
import type { OpParams, Variant } from "./ops.ts";
import type { BenchMode } from "./matrix.ts";
import type { SampleStats } from "./stats.ts";
import type { Correctness } from "./correctness.ts";

export const SCHEMA = "linattn-bench/results/v1";

export type CellStatus = "ok" | "oom" | "error" | "timeout" | "skipped" | "incorrect";

export interface CellStats extends SampleStats {
  /** Why sampling stopped: ci_target, max_samples, time_cap. */
  stop_reason: string;
  /**
   * Optional (added in v1, absent in earlier runs): whether samples_ms passed the steadiness
   * test (bench/stats.ts isSteady, tolerance max(2·ci_target, 2%)) when sampling stopped. A
   * cell stops at ci_target only when it did; false means time_cap or max_samples came first.
   * Absent below 4 samples.
   */
  steady?: boolean;
}

export interface Cell {
  id: string;
  variant: Variant;
  backend: string;
  impl: string;
  dtype: string;
  /** fwd, bwd (the backward alone) or fwdbwd. */
  mode: BenchMode;
  shape: { B: number; T: number; H: number; K: number; V: number; M?: number };
  params: OpParams;
  /** cold: L2 flushed before every sample; hot: back-to-back. */
  timing: "cold" | "hot";
  status: CellStatus;
  message: string;
  samples_ms: number[];
  stats: CellStats | null;
  /**
   * peak_bytes: peak device memory over the whole cell (every rotated input set). op_peak_bytes
   * (added in v1, optional): the peak after one full-size op was prepared and run, i.e. its
   * inputs, outputs and workspace: the number to compare with another implementation's.
   */
  memory: { peak_bytes: number; op_peak_bytes?: number; workspace_bytes: number } | null;
  throughput: {
    tokens_per_s: number;
    tflops: number;
    gbps: number;
    /** gbps over the device's measured copy bandwidth (info().peaks), when measured. */
    copy_fraction?: number;
    /** tflops over the device's measured matmul rate, when measured. */
    matmul_fraction?: number;
  } | null;
  /** FLOPs and bytes the op declares (bench/ops.ts opWork), behind the rates above. */
  work: { flops: number; bytes: number };
  correctness: Omit<Correctness, "per_output"> & { per_output?: Correctness["per_output"] } | null;
  /**
   * (added in v1, optional) The GPU a --gpus run timed this cell on; provenance.devices entries
   * carry the same object, so a cell's device (and its measured peaks) can be told apart.
   */
  gpu?: Gpu;
  /**
   * (added in v1, optional) When the cell finished (ISO 8601, UTC): in a resumed run, which
   * stretch of provenance.earlier (or the last machine) timed it.
   */
  finished_at?: string;
}

/** One drift measurement (deno task drift): low-precision output against a reference. */
export interface DriftEntry {
  variant: string;
  backend: string;
  impl?: string;
  T: number;
  /** Storage over reference precision, e.g. "bf16/fp64". */
  dtypes: string;
  /** Input scenario: model (default), strong-decay, zero-gates. */
  scenario?: string;
  /** What the output was compared with, in words. */
  reference: string;
  rel_rms: number;
  max_abs: number;
  /** rel_rms of o in each block of `block` positions, in sequence order. */
  per_position: number[];
  block: number;
  final_state_rel: number | null;
  threshold: number;
  pass: boolean;
}

export interface Provenance {
  /**
   * source (optional, v1): "git" when read from the checkout, "LAB_GIT_COMMIT" when named by
   * the environment (a copied tree whose .git is absent or stale); dirty is then false.
   */
  git: { commit: string; dirty: boolean; source?: "git" | "LAB_GIT_COMMIT" | "unknown" };
  deno: string;
  v8: string;
  typescript: string;
  os: string;
  cpu: { arch: string; cores: number; model: string };
  devices: DeviceInfo[];
  unavailable: { backend: string; reason: string }[];
  /**
   * (added in v1, optional) A resumed run's earlier stretches, oldest first: the provenance each
   * began with and when (`since`). The fields above are the stretch that finished the run, which
   * began at the last resume. Absent when the run never resumed.
   */
  earlier?: Stretch[];
}

/** One stretch of a run: from its start or a resume, on the machine this provenance describes. */
export type Stretch = { since: string } & Omit<Provenance, "earlier">;

export interface Results {
  schema: typeof SCHEMA;
  run: {
    id: string;
    started_at: string;
    finished_at: string;
    profile: string;
    argv: string[];
    seed: number;
    /**
     * (optional, v1) Only in a report rendered from an unfinished run folder (deno task report),
     * never in a results.json the bench writes: how far the run got. finished_at is then "".
     */
    unfinished?: { cells_done: number; cells_planned?: number; dir: string };
  };
  provenance: Provenance;
  cells: Cell[];
  drift: DriftEntry[];
}

async function command(cmd: string, args: string[]): Promise<string | undefined> {
  try {
    const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "null" }).output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : undefined;
  } catch {
    return undefined;
  }
}

async function cpuModel(): Promise<string> {
  try {
    const info = await Deno.readTextFile("/proc/cpuinfo");
    return info.match(/^model name\s*:\s*(.*)$/m)?.[1] ?? "unknown";
  } catch {
    return "unknown";
  }
}

/** The code that runs: LAB_GIT_COMMIT when set, else the checkout's HEAD and whether it is dirty. */
export async function gitProvenance(): Promise<Provenance["git"]> {
  const root = new URL("..", import.meta.url).pathname;
  // A copied tree (an offline GPU machine) names its commit through LAB_GIT_COMMIT, which wins:
  // such a copy may carry a .git older than its files, whose HEAD and status would mislead.
  const named = Deno.env.get("LAB_GIT_COMMIT");
  const head = named ? undefined : await command("git", ["-C", root, "rev-parse", "HEAD"]);
  const status = head === undefined
    ? undefined
    : await command("git", ["-C", root, "status", "--porcelain", "--untracked-files=no"]);
  return named
    ? { commit: named, dirty: false, source: "LAB_GIT_COMMIT" }
    : head
    ? { commit: head, dirty: (status ?? "").length > 0, source: "git" }
    : { commit: "unknown", dirty: false, source: "unknown" };
}

/** git: when the caller already read it (the bench does, to check --resume). */
export async function provenance(
  devices: DeviceInfo[],
  unavailable: { backend: string; reason: string }[],
  git?: Provenance["git"],
): Promise<Provenance> {
  git ??= await gitProvenance();
  return {
    git,
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    typescript: Deno.version.typescript,
    os: `${Deno.build.os} ${Deno.osRelease()}`,
    cpu: { arch: Deno.build.arch, cores: navigator.hardwareConcurrency, model: await cpuModel() },
    devices,
    unavailable,
  };
}

/** Writes through a temporary file and a rename, so a reader never sees half a file. */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  const tmp = `${path}.tmp-${Deno.pid}`;
  await Deno.writeTextFile(tmp, JSON.stringify(value, null, 1) + "\n");
  await Deno.rename(tmp, path);
}
