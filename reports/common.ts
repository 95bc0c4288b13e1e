/**
 * What every report, comparison, dashboard and export shares: reading results.json strictly
 * enough that a wrong file fails with one line, the optional drift entries and device peaks
 * (read defensively, since their writers are not part of schema v1's core), and HTML helpers.
 */
import { type Cell, type DriftEntry, type Results, SCHEMA } from "../bench/results.ts";
export type { DriftEntry };
import { InputError } from "../bench/ops.ts";

/** One `deno task drift` measurement: error of a low-precision run against an fp64 one. */
export interface Peaks {
  copy_gbps?: number;
  matmul_tflops?: number;
}

export async function loadResults(path: string): Promise<Results> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new InputError(`cannot read '${path}': ${(e as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new InputError(`'${path}' is not JSON: ${(e as Error).message}`);
  }
  return checkResults(value, path);
}

export function checkResults(value: unknown, path: string): Results {
  const r = value as Partial<Results> | null;
  if (typeof r !== "object" || r === null || r.schema !== SCHEMA) {
    const found = typeof r === "object" && r !== null && "schema" in r
      ? `schema '${String(r.schema)}'`
      : "no schema";
    throw new InputError(`'${path}' is not a ${SCHEMA} results file (${found})`);
  }
  if (!Array.isArray(r.cells) || typeof r.run?.id !== "string" || !r.provenance) {
    throw new InputError(`'${path}' lacks run, provenance or cells`);
  }
  for (const c of r.cells) {
    if (typeof c?.id !== "string" || !Array.isArray(c.samples_ms) || !c.shape) {
      throw new InputError(`'${path}' has a malformed cell (${JSON.stringify(c?.id ?? c)})`);
    }
  }
  return { ...r, drift: Array.isArray(r.drift) ? r.drift : [] } as Results;
}

/** The drift entries that carry what reports need; anything else in `drift` is ignored. */
export function driftEntries(r: Results): DriftEntry[] {
  return r.drift.filter((d): d is DriftEntry => {
    const e = d as Partial<DriftEntry> | null;
    return typeof e === "object" && e !== null && typeof e.variant === "string" &&
      typeof e.backend === "string" && typeof e.T === "number" && typeof e.dtypes === "string" &&
      typeof e.rel_rms === "number" && typeof e.pass === "boolean";
  });
}

export function driftKey(d: DriftEntry): string {
  return [d.variant, d.backend, d.impl ?? "", d.dtypes, d.T].join("/");
}

export function deviceOf(r: Results, backend: string): Record<string, unknown> | undefined {
  return r.provenance.devices.find((d) => d.backend === backend);
}

/** The device a cell ran on, by name: what makes two runs' timings comparable. */
export function deviceName(r: Results, backend: string): string {
  const name = deviceOf(r, backend)?.name;
  return typeof name === "string" ? name : backend;
}

export function peaksOf(r: Results, backend: string): Peaks | undefined {
  const p = deviceOf(r, backend)?.peaks as Peaks | undefined;
  if (typeof p !== "object" || p === null) return undefined;
  const ok = (x: unknown) => typeof x === "number" && x > 0;
  if (!ok(p.copy_gbps) && !ok(p.matmul_tflops)) return undefined;
  return p;
}

/** Everything that identifies a timing series except T. */
export function seriesLabel(c: Cell): string {
  return `${c.backend}/${c.impl} ${c.dtype} ${c.mode}`;
}

export function shapeLabel(c: Cell): string {
  const s = c.shape;
  return `B${s.B} H${s.H} K${s.K} V${s.V}${s.M !== undefined ? ` M${s.M}` : ""}`;
}

export function isFailure(status: Cell["status"]): boolean {
  return status !== "ok" && status !== "skipped";
}

export function esc(s: unknown): string {
  return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** JSON that may sit inside a <script> element without ending it. */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, "\\u003c");
}

/**
 * The memory one op needs (its inputs, outputs and workspace): op_peak_bytes where the results
 * have it, else the cell's peak (which also counts the rotated input sets).
 */
export function opPeakBytes(c: Cell): number | undefined {
  if (!c.memory) return undefined;
  return c.memory.op_peak_bytes ?? c.memory.peak_bytes;
}

export function fmtBytes(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return "";
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  return `${(n / 1024).toFixed(0)} KiB`;
}

export function fmtMs(x: number | undefined | null): string {
  if (x === undefined || x === null || !Number.isFinite(x)) return "";
  return x >= 100 ? x.toFixed(1) : x.toPrecision(3);
}

export async function chartJsSource(): Promise<string> {
  const entry = import.meta.resolve("chart.js");
  const src = await Deno.readTextFile(new URL("./chart.umd.min.js", entry));
  // The source map it names is not shipped inside the page.
  return src.replace(/\n?\/\/# sourceMappingURL=\S+\s*$/, "");
}

/** Every results.json below `dir`, in path order. */
export async function findResultsFiles(dir: string): Promise<string[]> {
  const found: string[] = [];
  async function walk(d: string) {
    for await (const e of Deno.readDir(d)) {
      const p = `${d}/${e.name}`;
      if (e.isDirectory) await walk(p);
      else if (e.isFile && e.name === "results.json") found.push(p);
    }
  }
  await walk(dir.replace(/\/+$/, ""));
  return found.sort();
}
