/**
 * The one interface between everything above the kernels (run-op, the bench runner, drift)
 * and the kernels themselves. A backend uploads an op's inputs once (`prepare`), then runs,
 * reads back and times that op on its own device clock. Nothing above this file knows
 * whether it talks to the CPU references, CUDA through FFI, or WGSL through WebGPU.
 */
import type { Inputs, OpRequest, Outputs, Variant } from "../ops.ts";
import type { Dtype } from "../tensor.ts";

export type BackendName = "cpu" | "cuda" | "webgpu" | "torch";
export const BACKENDS: readonly BackendName[] = ["cpu", "cuda", "webgpu", "torch"];

/** What one implementation of one variant can do on a backend. */
export interface ImplInfo {
  variant: Variant;
  impl: string;
  /** The impl chosen when --impl is not given. */
  default: boolean;
  dtypes: readonly Dtype[];
  modes: readonly ("fwd" | "fwdbwd")[];
  description: string;
}

/** Free-form but stable keys; they land in results.json provenance. */
export interface DeviceInfo {
  backend: BackendName;
  name: string;
  [key: string]: unknown;
}

export interface MemoryUse {
  /** Bytes in use on the device right now (library accounting or live buffers). */
  in_use_bytes: number;
  /** High-water mark since the last resetPeak(). */
  peak_bytes: number;
}

export interface TimingOptions {
  /** Flush the L2 (or the closest thing the backend has) before each sample. */
  cold: boolean;
  /** Samples to take; each is one run of the prepared op (its request's mode), timed on the device. */
  samples: number;
  /**
   * all (default): the whole request (forward, or forward then backward); bwd: the backward
   * pass alone, for a fwdbwd request. A backend that cannot separate it throws Unsupported.
   */
  part?: "all" | "bwd";
}

/**
 * Inputs drawn from a seed rather than given, so a backend can draw a 1M-token tensor on the
 * device (bench/inputs.ts names each input's distribution). PreparedOp.inputs reads back
 * what was drawn.
 */
export interface RandomSource {
  random: { seed: number };
}

export function isRandomSource(x: Inputs | RandomSource): x is RandomSource {
  return "random" in x;
}

/** An op with its inputs resident on the device and its outputs allocated. */
export interface PreparedOp {
  /** Device bytes this op needs beyond its inputs and outputs. */
  readonly workspaceBytes: number;
  /** Fill every output with NaN so unwritten elements cannot pass a check. */
  poison(): Promise<void>;
  /** Run once (forward, or forward and backward per the request's mode) and wait. */
  run(): Promise<void>;
  /** Copy the outputs of the last run back to the host, at their storage dtype. */
  read(): Promise<Outputs>;
  /**
   * The inputs as stored on the device (storage dtype): per-token inputs cut to their first
   * `tokens` positions, the others whole. How a check sees device-drawn inputs.
   */
  inputs(tokens: number): Promise<Inputs>;
  /** Device-timed samples in milliseconds. */
  time(opts: TimingOptions): Promise<number[]>;
  dispose(): void;
}

export interface PrepareOptions {
  impl: string;
  /** Storage dtype on the device; inputs are cast to it during upload. */
  dtype: Dtype;
}

export interface Backend {
  readonly name: BackendName;
  info(): DeviceInfo;
  impls(): ImplInfo[];
  prepare(req: OpRequest, inputs: Inputs | RandomSource, opts: PrepareOptions): Promise<PreparedOp>;
  memory(): MemoryUse;
  resetPeak(): void;
  close(): void;
}

/**
 * The backend cannot run here at all (no library, no driver, no device, no adapter).
 * CLIs exit with code 2 on it.
 */
export class BackendUnavailable extends Error {
  override name = "BackendUnavailable";
  constructor(readonly backend: BackendName, message: string) {
    super(`${backend} backend unavailable: ${message}`);
  }
}

/** The backend exists but lacks what was asked (impl, dtype, mode, shape). */
export class Unsupported extends Error {
  override name = "Unsupported";
}

/** The device ran out of memory for this op; the bench records the cell as `oom`. */
export class OutOfMemory extends Error {
  override name = "OutOfMemory";
}

export function findImpl(
  backend: Backend,
  variant: Variant,
  impl: string | undefined,
  dtype: Dtype,
  mode: "fwd" | "fwdbwd",
): ImplInfo {
  const all = backend.impls().filter((i) => i.variant === variant);
  if (all.length === 0) {
    throw new Unsupported(`${backend.name} backend has no implementation of ${variant} yet`);
  }
  const chosen = impl === undefined
    ? all.find((i) => i.default) ?? all[0]
    : all.find((i) => i.impl === impl);
  if (!chosen) {
    throw new Unsupported(
      `unknown impl '${impl}' for ${variant} on ${backend.name} (available: ${
        all.map((i) => i.impl).join(", ")
      })`,
    );
  }
  if (!chosen.dtypes.includes(dtype)) {
    throw new Unsupported(
      `${backend.name} ${variant}/${chosen.impl} does not support dtype ${dtype} (supported: ${
        chosen.dtypes.join(", ")
      })`,
    );
  }
  if (!chosen.modes.includes(mode)) {
    throw new Unsupported(
      `${backend.name} ${variant}/${chosen.impl} does not support mode ${mode} (supported: ${
        chosen.modes.join(", ")
      })`,
    );
  }
  return chosen;
}
