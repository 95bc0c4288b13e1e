/**
 * What every WebGPU kernel builder shares: the builder contract the backend's registry holds,
 * storage-dtype load/store snippets generated per binding, and WGSL compilation with errors
 * thrown at line:column. A builder sees one head group (`Shape.H` = heads in the group); the
 * backend splits heads into groups whose buffers each fit one binding (docs/webgpu.md).
 */
import type { InputName, OpRequest, OutputName } from "../../bench/ops.ts";
import type { Mode, Variant } from "../../bench/ops.ts";
import { Unsupported } from "../../bench/backends/backend.ts";

export type Storage = "f32" | "f16" | "bf16";

export interface DeviceLimits {
  maxComputeWorkgroupStorageSize: number;
  maxComputeInvocationsPerWorkgroup: number;
  maxComputeWorkgroupSizeX: number;
  maxComputeWorkgroupsPerDimension: number;
  maxStorageBufferBindingSize: number;
  maxBufferSize: number;
  /** A CPU implementation (lavapipe), with its own execution limits. */
  softwareAdapter?: boolean;
}

/** A buffer name a pass can bind: an op input or output, a workspace, or the uniform block. */
export type BindName = InputName | OutputName | `ws${string}` | "params";

/** One dispatch; the dispatches of a pass run in order, each seeing the previous one's writes. */
export interface Step {
  pipeline: GPUComputePipeline;
  workgroups: [number, number, number];
}

/** One compute pass (the unit of timestamp writes), dispatched once per head group. */
export interface Pass {
  label: string;
  steps: Step[];
}

export interface Kernel {
  layout: GPUBindGroupLayout;
  /** Binding number of every name in the layout. */
  bindings: Partial<Record<BindName, number>>;
  /** The uniform block bound as `params`. */
  params: ArrayBuffer;
  passes: Pass[];
  /** fwdbwd only: index of the first backward pass (what `part: "bwd"` times). */
  bwdFrom?: number;
}

/** A plan for one head group: workspace sizes known before anything is allocated. */
export interface Plan {
  /** f32 workspace buffers by name (`ws…`), in bytes. */
  workspace: Record<string, number>;
}

export interface KernelBuilder<P extends Plan = Plan> {
  variant: Variant;
  impl: string;
  default: boolean;
  modes: readonly Mode[];
  /** Storage dtypes besides f32 and bf16 need shader-f16; listed here when supported. */
  dtypes: readonly Storage[];
  description: string;
  /** Tiles one head group; throws Unsupported when the shape cannot be tiled. */
  plan(req: OpRequest, dtype: Storage, limits: DeviceLimits): P;
  /** Compiles the pipelines; `has` says which optional inputs (h0, z0) were given. */
  build(device: GPUDevice, plan: P, req: OpRequest, has: Set<InputName>): Promise<Kernel>;
}

/** Inputs bound read-only; every other storage binding is read_write. */
export const INPUT_NAMES: ReadonlySet<string> = new Set<InputName>([
  "q",
  "k",
  "v",
  "g",
  "beta",
  "mem",
  "h0",
  "z0",
  "do",
]);

/** Tensors kept in f32 whatever the storage dtype: states, their gradients, per-token scalars' grads. */
export const F32_TENSORS: ReadonlySet<string> = new Set([
  "h0",
  "z0",
  "final_state",
  "final_z",
  "dh0",
  "dz0",
  "dbeta",
]);

/**
 * Layouts and pipelines are cached per device: prepare() of the same op shape (another dtype's
 * pipelines aside) then compiles nothing, which keeps tests and bench cells from recompiling.
 */
const layouts = new WeakMap<GPUDevice, Map<string, GPUBindGroupLayout>>();
const pipelines = new WeakMap<GPUDevice, Map<string, Promise<GPUComputePipeline>>>();
const layoutKeys = new WeakMap<GPUBindGroupLayout, string>();

export function layoutFor(
  device: GPUDevice,
  label: string,
  bindings: Partial<Record<BindName, number>>,
): GPUBindGroupLayout {
  let cache = layouts.get(device);
  if (!cache) layouts.set(device, cache = new Map());
  const key = `${label} ${JSON.stringify(bindings)}`;
  let layout = cache.get(key);
  if (!layout) {
    cache.set(key, layout = createLayout(device, label, bindings));
    layoutKeys.set(layout, key);
  }
  return layout;
}

function createLayout(
  device: GPUDevice,
  label: string,
  bindings: Partial<Record<BindName, number>>,
): GPUBindGroupLayout {
  const S = GPUShaderStage.COMPUTE;
  return device.createBindGroupLayout({
    label,
    entries: Object.entries(bindings).map(([name, binding]) => ({
      binding: binding!,
      visibility: S,
      buffer: {
        type: name === "params"
          ? "uniform" as const
          : INPUT_NAMES.has(name)
          ? "read-only-storage" as const
          : "storage" as const,
      },
    })),
  });
}

/**
 * WGSL declarations for storage-dtype tensors: for each `[name, binding]` an array binding and
 * `ld_<name>(i) -> f32`; outputs also get `st2_<name>(i, a, b, both)` storing elements i and
 * (when `both`) i + 1, i even. Inputs are read-only unless `writable` says otherwise. bf16 is 16-bit words paired in u32s (element 2w low half), so a
 * bf16 store writes a whole word and needs both halves from the same invocation.
 */
export function ioSource(
  dtype: Storage,
  tensors: [string, number][],
  writable: (name: string) => boolean = (name) => !INPUT_NAMES.has(name),
): string {
  const out: string[] = [];
  if (dtype === "f16") out.push("enable f16;");
  if (dtype === "bf16") {
    out.push(
      "fn bf16_at(w: u32, i: u32) -> f32 {",
      "  return bitcast<f32>(select(w << 16u, w & 0xffff0000u, (i & 1u) == 1u));",
      "}",
      "fn to_bf16(x: f32) -> u32 {",
      "  let b = bitcast<u32>(x);",
      "  if ((b & 0x7fffffffu) > 0x7f800000u) { return 0x7fc0u; }",
      "  return (b + 0x7fffu + ((b >> 16u) & 1u)) >> 16u;",
      "}",
    );
  }
  const elem = dtype === "f32" ? "f32" : dtype === "f16" ? "f16" : "u32";
  for (const [name, binding] of tensors) {
    const ro = !writable(name);
    const v = `t_${name}`;
    out.push(
      `@group(0) @binding(${binding}) var<storage, ${
        ro ? "read" : "read_write"
      }> ${v}: array<${elem}>;`,
    );
    if (dtype === "bf16") {
      out.push(`fn ld_${name}(i: u32) -> f32 { return bf16_at(${v}[i >> 1u], i); }`);
    } else if (dtype === "f16") {
      out.push(`fn ld_${name}(i: u32) -> f32 { return f32(${v}[i]); }`);
    } else {
      out.push(`fn ld_${name}(i: u32) -> f32 { return ${v}[i]; }`);
    }
    if (ro) continue;
    if (dtype === "bf16") {
      out.push(
        `fn st2_${name}(i: u32, a: f32, b: f32, both: bool) {`,
        `  ${v}[i >> 1u] = to_bf16(a) | (to_bf16(b) << 16u);`,
        "}",
      );
    } else {
      const cv = dtype === "f16" ? "f16" : "";
      out.push(
        `fn st2_${name}(i: u32, a: f32, b: f32, both: bool) {`,
        `  ${v}[i] = ${cv}(a);`,
        `  if (both) { ${v}[i + 1u] = ${cv}(b); }`,
        "}",
      );
    }
  }
  return out.join("\n");
}

/** Declarations of f32 storage bindings (states, workspaces): `var<storage, …> <name>: array<f32>`. */
export function f32Source(buffers: [string, number][]): string {
  return buffers.map(([name, binding]) =>
    `@group(0) @binding(${binding}) var<storage, ${
      INPUT_NAMES.has(name) ? "read" : "read_write"
    }> ${name}: array<f32>;`
  ).join("\n");
}

/**
 * `ld4_<name>(at, n) -> vec4f` and `st4_<name>(at, n, x)` for f32 buffers: the first n (1…4)
 * elements from `at`, zero past n when loading. WGSL functions cannot take a storage buffer as a
 * parameter, so the pair is generated once per buffer instead of written out by hand.
 */
export function vec4Accessors(names: string[]): string {
  return names.map((b) =>
    `fn ld4_${b}(at: u32, n: u32) -> vec4f {
  var x = vec4f(${b}[at], 0.0, 0.0, 0.0);
  if (n > 1u) { x.y = ${b}[at + 1u]; }
  if (n > 2u) { x.z = ${b}[at + 2u]; }
  if (n > 3u) { x.w = ${b}[at + 3u]; }
  return x;
}
fn st4_${b}(at: u32, n: u32, x: vec4f) {
  ${b}[at] = x.x;
  if (n > 1u) { ${b}[at + 1u] = x.y; }
  if (n > 2u) { ${b}[at + 2u] = x.z; }
  if (n > 3u) { ${b}[at + 3u] = x.w; }
}`
  ).join("\n");
}

const files = new Map<string, Promise<string>>();
/** Text of a .wgsl file next to `base` (an import.meta.url), cached. */
export function wgslFile(base: string, name: string): Promise<string> {
  const url = new URL(name, base).href;
  let s = files.get(url);
  if (!s) {
    s = Deno.readTextFile(new URL(url));
    files.set(url, s);
  }
  return s;
}

/**
 * Like Promise.all, but settles every promise first: a builder's other pipelines must not
 * still be compiling (and reporting into some later error scope) when the first error throws.
 */
export async function settled<T extends unknown[]>(
  ps: { [I in keyof T]: Promise<T[I]> },
): Promise<T> {
  const rs = await Promise.allSettled(ps as Promise<unknown>[]);
  const bad = rs.find((r) => r.status === "rejected");
  if (bad) throw (bad as PromiseRejectedResult).reason;
  return rs.map((r) => (r as PromiseFulfilledResult<unknown>).value) as T;
}

/** Compiles one compute pipeline (cached); WGSL errors are thrown with line:column. */
export function compile(
  device: GPUDevice,
  label: string,
  layout: GPUBindGroupLayout,
  code: string,
  constants: Record<string, number>,
): Promise<GPUComputePipeline> {
  let cache = pipelines.get(device);
  if (!cache) pipelines.set(device, cache = new Map());
  const key = `${layoutKeys.get(layout) ?? label}\n${JSON.stringify(constants)}\n${code}`;
  let p = cache.get(key);
  if (!p) {
    p = compileOnce(device, label, layout, code, constants);
    cache.set(key, p);
    // A failed compile is not kept: the next prepare reports it again.
    p.catch(() => cache.delete(key));
  }
  return p;
}

async function compileOnce(
  device: GPUDevice,
  label: string,
  layout: GPUBindGroupLayout,
  code: string,
  constants: Record<string, number>,
): Promise<GPUComputePipeline> {
  const module = device.createShaderModule({ label, code });
  const info = await module.getCompilationInfo();
  const errors = info.messages.filter((m) => m.type === "error");
  if (errors.length > 0) {
    throw new Error(
      `WGSL ${label}: ${errors.map((m) => `${m.lineNum}:${m.linePos} ${m.message}`).join("; ")}`,
    );
  }
  return await device.createComputePipelineAsync({
    label,
    layout: device.createPipelineLayout({ bindGroupLayouts: [layout] }),
    compute: { module, entryPoint: "main", constants },
  });
}

/** Which storage dtype a tensor has on the device for a storage dtype of the op. */
export function tensorStorage(name: string, dtype: Storage): Storage {
  return F32_TENSORS.has(name) ? "f32" : dtype;
}

let scoped: string | undefined;

/** The tile overrides in force: a scopeTune's, else $LAB_WEBGPU_TUNE; undefined when neither. */
export function tuneOverrides(): string | undefined {
  return scoped ?? Deno.env.get("LAB_WEBGPU_TUNE");
}

/**
 * Puts `tune` in place of $LAB_WEBGPU_TUNE for this isolate until the returned function restores
 * the previous scope. Tests use it instead of the variable: `deno test --parallel` runs test
 * files side by side in one process, whose environment they share, so setting the variable
 * would retune the neighbouring files' kernels mid-test.
 */
export function scopeTune(tune: Record<string, number>): () => void {
  const prev = scoped;
  scoped = JSON.stringify(tune);
  return () => {
    scoped = prev;
  };
}

/**
 * The version of a kernel a planner runs under the knob `key`: `versions` lists those that exist
 * (a number n means 1…n; versions that lost an A/B are deleted and their numbers not reused, so a
 * number in perf-notes always names one kernel). Set, the asked one, and where it cannot tile the
 * request its Unsupported, naming the knob, so that an A/B never times one kernel under another's
 * name. Unset, version `preferred` (default the newest; a candidate not yet timed on a
 * GPU sits above it) or, after an Unsupported, each older one in turn.
 */
export function planVersion<P>(
  key: string,
  versions: number | readonly number[],
  plan: (version: number) => P,
  preferred?: number,
): P {
  const all = typeof versions === "number"
    ? Array.from({ length: versions }, (_, i) => i + 1)
    : [...versions].sort((a, b) => a - b);
  const asked = tuned(key, 0);
  if (asked !== 0) {
    if (!all.includes(asked)) {
      const list = `${all.slice(0, -1).join(", ")} or ${all[all.length - 1]}`;
      throw new Error(`LAB_WEBGPU_TUNE ${key} must be ${list}, got ${asked}`);
    }
    try {
      return plan(asked);
    } catch (e) {
      if (!(e instanceof Unsupported) || e.message.includes(`${key}=`)) throw e;
      throw new Unsupported(`${e.message} (${key}=${asked} was asked for: no other version runs)`);
    }
  }
  const tried = all.filter((v) => v <= (preferred ?? all[all.length - 1])).reverse();
  for (const [i, v] of tried.entries()) {
    try {
      return plan(v);
    } catch (e) {
      if (i === tried.length - 1 || !(e instanceof Unsupported)) throw e;
    }
  }
  throw new Error(`planVersion ${key}: no version at or below ${preferred}`);
}

/**
 * A tile-shape override for tuning sweeps: `LAB_WEBGPU_TUNE='{"la.cps":8}'` (JSON object of
 * numbers, keys `<variant>.<knob>`) replaces a planner's default; unset, the defaults hold.
 * For kernels/webgpu/prof.ts sweeps; the backend's info() records the overrides in force.
 */
export function tuned(key: string, fallback: number): number {
  const raw = tuneOverrides();
  if (!raw) return fallback;
  let obj: unknown;
  try {
    obj = JSON.parse(raw);
  } catch {
    throw new Error(`LAB_WEBGPU_TUNE is not a JSON object: ${raw}`);
  }
  const v = (obj as Record<string, unknown>)[key];
  if (v === undefined) return fallback;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1) {
    throw new Error(`LAB_WEBGPU_TUNE ${key} must be a positive integer, got ${JSON.stringify(v)}`);
  }
  return v;
}
