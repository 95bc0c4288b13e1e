/**
 * The benchmark matrix: profiles, user overrides (flags or a JSON config), and the expansion
 * into cells from what each open backend says it implements.
 */
import type { BackendName, ImplInfo } from "./backends/backend.ts";
import { InputError, type Variant, VARIANTS } from "./ops.ts";

/**
 * What a cell times: fwd (forward), bwd (backward alone, after an untimed forward's inputs
 * are in place), fwdbwd (forward then backward). bwd and fwdbwd run the op's fwdbwd request.
 */
export type BenchMode = "fwd" | "bwd" | "fwdbwd";
export const BENCH_MODES: readonly BenchMode[] = ["fwd", "bwd", "fwdbwd"];
import { type Dtype, DTYPES } from "./tensor.ts";
import { BACKENDS } from "./backends/backend.ts";

export type Profile = "smoke" | "nightly" | "full";
export const PROFILES: readonly Profile[] = ["smoke", "nightly", "full"];

export interface MatrixSpec {
  backends: BackendName[];
  variants: Variant[];
  /** Empty: every impl each backend has. */
  impls: string[];
  T: number[];
  dtypes: Dtype[];
  modes: BenchMode[];
  B: number;
  H: number;
  K: number;
  V: number;
  /** rmt memory rows. */
  M: number;
  timing: "cold" | "hot";
  /** Stop sampling when the median's 95% CI half-width is within this fraction. */
  ci_target: number;
  warmup: number;
  /**
   * Device seconds the warm-up spends at the least (more runs past `warmup`): a GPU left idle
   * while the host checks correctness comes back at low clocks. On the H100 the SM clock fell to
   * 345 MHz within a second of idle and took ≈ 0.4 s of load to climb back to 1,980 (nvidia-smi
   * every 100 ms, docs/perf-notes.md session 7), so 1 s covers the climb with room.
   */
  warmup_min_s: number;
  min_samples: number;
  max_samples: number;
  /** Seconds of sampling per cell before giving up on the CI target. */
  time_cap_s: number;
  /** Tokens of each timed output checked against the fp64 oracle. */
  check_tokens: number;
  /** Input sets the samples rotate through. */
  input_sets: number;
  /** Tokens per chunk of the chunked variants (la, gla, deltanet); 64 by default. */
  chunk_size: number;
}

const BASE: Omit<MatrixSpec, "T" | "backends"> = {
  variants: [...VARIANTS],
  impls: [],
  dtypes: ["bf16", "f32", "f16", "f64"],
  modes: ["fwd", "bwd", "fwdbwd"],
  B: 1,
  H: 8,
  K: 64,
  V: 64,
  M: 16,
  timing: "cold",
  ci_target: 0.01,
  warmup: 3,
  warmup_min_s: 1,
  min_samples: 10,
  max_samples: 100,
  time_cap_s: 5,
  check_tokens: 1024,
  input_sets: 2,
  chunk_size: 64,
};

const GPU_DTYPES: Dtype[] = ["bf16", "f32", "f16"];

export function profileSpec(profile: Profile, gpu: boolean): MatrixSpec {
  switch (profile) {
    case "smoke":
      // Sized so a 2-core machine without a GPU finishes in well under two minutes.
      return {
        ...BASE,
        backends: ["cpu", "cuda", "webgpu"],
        T: gpu ? [4096, 16384] : [256, 1024],
        modes: ["fwd", "fwdbwd"],
        H: 2,
        K: 32,
        V: 32,
        min_samples: 3,
        max_samples: 10,
        time_cap_s: 1,
        warmup: 1,
        warmup_min_s: 0,
        ci_target: 0.05,
        check_tokens: 256,
        input_sets: 1,
      };
    case "nightly":
      return {
        ...BASE,
        backends: ["cuda", "webgpu", "torch"],
        // f64 on a GPU is the drift oracle (cuda recurrent), timed only when asked for.
        dtypes: GPU_DTYPES,
        T: [16384, 65536, 262144, 1048576],
      };
    case "full":
      return {
        ...BASE,
        backends: ["cuda", "webgpu", "torch"],
        dtypes: GPU_DTYPES,
        T: [16384, 65536, 262144, 1048576],
        max_samples: 300,
        time_cap_s: 20,
      };
  }
}

/** "16K" → 16384, "1M" → 1048576, "4096" → 4096. */
export function parseTokens(s: string): number {
  const m = s.trim().match(/^(\d+)([kKmM]?)$/);
  if (!m) throw new InputError(`--T value '${s}' is not a token count (e.g. 4096, 16K, 1M)`);
  const n = Number(m[1]) *
    (m[2].toLowerCase() === "k" ? 1024 : m[2].toLowerCase() === "m" ? 1 << 20 : 1);
  if (n < 1) throw new InputError(`--T value '${s}' must be at least 1`);
  return n;
}

export function formatTokens(n: number): string {
  if (n >= 1 << 20 && n % (1 << 20) === 0) return `${n >> 20}M`;
  if (n >= 1024 && n % 1024 === 0) return `${n >> 10}K`;
  return String(n);
}

function list<T extends string>(flag: string, value: string, choices: readonly T[]): T[] {
  return value.split(",").map((v) => {
    const t = v.trim();
    if (!(choices as readonly string[]).includes(t)) {
      throw new InputError(`unknown ${flag} value '${t}' (choose from ${choices.join(", ")})`);
    }
    return t as T;
  });
}

function positiveInt(flag: string, value: unknown): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) {
    throw new InputError(`${flag} must be a positive integer, got '${value}'`);
  }
  return n;
}

export interface MatrixFlags {
  backend?: string;
  variant?: string;
  impl?: string;
  T?: string;
  dtype?: string;
  mode?: string;
  B?: string;
  H?: string;
  K?: string;
  V?: string;
  M?: string;
  timing?: string;
  "ci-target"?: string;
  "max-samples"?: string;
  "min-samples"?: string;
  warmup?: string;
  "time-cap"?: string;
  "chunk-size"?: string;
  "warmup-time"?: string;
}

/** A duration in seconds, 0 allowed. */
function seconds(name: string, value: unknown): number {
  const n = Number(value);
  if (!(n >= 0) || !Number.isFinite(n)) {
    throw new InputError(`${name} must be seconds (0 or more), got '${value}'`);
  }
  return n;
}

/** Applies a JSON config (any MatrixSpec fields), then flags, over a profile. */
export function applyOverrides(
  spec: MatrixSpec,
  config: Record<string, unknown> | undefined,
  flags: MatrixFlags,
): MatrixSpec {
  const s: MatrixSpec = { ...spec };
  if (config) {
    const known = new Set(Object.keys(BASE).concat(["T", "backends"]));
    for (const [key, value] of Object.entries(config)) {
      if (!known.has(key)) {
        throw new InputError(`config: unknown field '${key}' (known: ${[...known].join(", ")})`);
      }
      const asList = (v: unknown) => (Array.isArray(v) ? v.map(String).join(",") : String(v));
      switch (key) {
        case "backends":
          s.backends = list("config backends", asList(value), BACKENDS);
          break;
        case "variants":
          s.variants = list("config variants", asList(value), VARIANTS);
          break;
        case "dtypes":
          s.dtypes = list("config dtypes", asList(value), DTYPES);
          break;
        case "modes":
          s.modes = list("config modes", asList(value), BENCH_MODES);
          break;
        case "impls":
          s.impls = asList(value).split(",").filter(Boolean);
          break;
        case "T":
          s.T = [...new Set(asList(value).split(",").map(parseTokens))];
          break;
        case "timing":
          s.timing = list("config timing", String(value), ["cold", "hot"] as const)[0];
          break;
        case "ci_target":
        case "time_cap_s": {
          const n = Number(value);
          if (!(n > 0)) throw new InputError(`config: ${key} must be a positive number`);
          s[key] = n;
          break;
        }
        case "warmup_min_s":
          s.warmup_min_s = seconds(`config ${key}`, value);
          break;
        default:
          (s as unknown as Record<string, number>)[key] = positiveInt(`config ${key}`, value);
      }
    }
  }
  if (flags.backend) s.backends = list("--backend", flags.backend, BACKENDS);
  if (flags.variant) s.variants = list("--variant", flags.variant, VARIANTS);
  if (flags.impl) s.impls = flags.impl.split(",").map((x) => x.trim());
  if (flags.T) s.T = [...new Set(flags.T.split(",").map(parseTokens))];
  if (flags.dtype) s.dtypes = list("--dtype", flags.dtype, DTYPES);
  if (flags.mode) s.modes = list("--mode", flags.mode, BENCH_MODES);
  for (const k of ["B", "H", "K", "V", "M"] as const) {
    if (flags[k] !== undefined) s[k] = positiveInt(`--${k}`, flags[k]);
  }
  if (flags.timing) s.timing = list("--timing", flags.timing, ["cold", "hot"] as const)[0];
  if (flags["ci-target"] !== undefined) {
    const n = Number(flags["ci-target"]);
    if (!(n > 0)) {
      throw new InputError(`--ci-target must be a positive fraction, got '${flags["ci-target"]}'`);
    }
    s.ci_target = n;
  }
  if (flags.warmup !== undefined) s.warmup = positiveInt("--warmup", flags.warmup);
  if (flags["warmup-time"] !== undefined) {
    s.warmup_min_s = seconds("--warmup-time", flags["warmup-time"]);
  }
  if (flags["min-samples"] !== undefined) {
    s.min_samples = positiveInt("--min-samples", flags["min-samples"]);
  }
  if (flags["max-samples"] !== undefined) {
    s.max_samples = positiveInt("--max-samples", flags["max-samples"]);
  }
  if (flags["chunk-size"] !== undefined) {
    s.chunk_size = positiveInt("--chunk-size", flags["chunk-size"]);
  }
  if (flags["time-cap"] !== undefined) {
    const n = Number(flags["time-cap"]);
    if (!(n > 0)) {
      throw new InputError(`--time-cap must be positive seconds, got '${flags["time-cap"]}'`);
    }
    s.time_cap_s = n;
  }
  return s;
}

/** One cell to run: plain data, so it can cross to a worker process. */
export interface PlannedCell {
  id: string;
  backend: BackendName;
  variant: Variant;
  impl: string;
  dtype: Dtype;
  mode: BenchMode;
  T: number;
}

/** What the planner needs of a backend: its name and what it implements. */
export interface BackendCatalog {
  name: BackendName;
  impls: ImplInfo[];
}

/** Variants whose chunk_size parameter the matrix's chunk size sets. */
export const CHUNKED: ReadonlySet<Variant> = new Set(["la", "gla", "deltanet"]);

export function cellId(c: Omit<PlannedCell, "id">, s: MatrixSpec): string {
  return [
    c.variant,
    c.backend,
    c.impl,
    c.dtype,
    c.mode,
    `B${s.B}`,
    `T${c.T}`,
    `H${s.H}`,
    `K${s.K}`,
    `V${s.V}`,
    // Only a non-default chunk size names itself, so ids stay comparable across runs.
    ...(CHUNKED.has(c.variant) && s.chunk_size !== BASE.chunk_size ? [`C${s.chunk_size}`] : []),
  ]
    .join("/");
}

/** Every (backend, impl, dtype, mode, T) the spec asks for and the backend implements. */
export function planCells(spec: MatrixSpec, backends: BackendCatalog[]): PlannedCell[] {
  const cells: PlannedCell[] = [];
  for (const variant of spec.variants) {
    for (const backend of backends) {
      for (const info of backend.impls) {
        if (info.variant !== variant) continue;
        if (spec.impls.length && !spec.impls.includes(info.impl)) continue;
        for (const dtype of spec.dtypes) {
          if (!info.dtypes.includes(dtype)) continue;
          for (const mode of spec.modes) {
            if (!info.modes.includes(mode === "bwd" ? "fwdbwd" : mode)) continue;
            for (const T of spec.T) {
              const c = { backend: backend.name, variant, impl: info.impl, dtype, mode, T };
              cells.push({ ...c, id: cellId(c, spec) });
            }
          }
        }
      }
    }
  }
  return cells;
}
