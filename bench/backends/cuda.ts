/**
 * The `cuda` backend: our precompiled kernels (build/liblak.so) through Deno FFI.
 * Inputs are uploaded once in `prepare`; every run, read and timing goes through lak_* calls.
 */
import {
  type Backend,
  BackendUnavailable,
  type DeviceInfo,
  findImpl,
  type ImplInfo,
  isRandomSource,
  type MemoryUse,
  type PreparedOp,
  type PrepareOptions,
  type RandomSource,
  type TimingOptions,
  Unsupported,
} from "./backend.ts";
import {
  type InputName,
  type Inputs,
  inputShape,
  type OpRequest,
  type OutputName,
  type Outputs,
  outputShapes,
  requiredInputs,
} from "../ops.ts";
import { distributionOf, inputSeed } from "../inputs.ts";
import { bytesPerElement, cast, type Dtype, numel, type Tensor, tensor } from "../tensor.ts";
import { LakLibrary, OpParamsBlock } from "../../ffi/library.ts";
import {
  DIST_CODES,
  DTYPE_CODES,
  IMPL_CODES,
  type ParamField,
  VARIANT_CODES,
} from "../../ffi/symbols.ts";

export interface CudaOptions {
  /** Path of liblak.so; else $LAK_LIBRARY; else build/liblak.so. */
  library?: string;
  /** CUDA device ordinal (default 0). */
  device?: number;
}

const IMPLS: ImplInfo[] = [
  {
    variant: "la",
    impl: "chunk",
    default: true,
    dtypes: ["f32", "bf16"],
    modes: ["fwd", "fwdbwd"],
    description:
      "chunked la forward and backward over (segment × B·H) blocks; fp32 FMA math, K = V in {64, 128}",
  },
  {
    variant: "gla",
    impl: "chunk",
    default: true,
    dtypes: ["f32", "bf16"],
    modes: ["fwd", "fwdbwd"],
    description:
      "chunked gla forward and backward over (segment × B·H) blocks, fp32 decays and states; K = V in {64, 128}",
  },
  {
    variant: "deltanet",
    impl: "chunk",
    default: true,
    dtypes: ["f32", "bf16"],
    modes: ["fwd", "fwdbwd"],
    description:
      "chunked WY/UT deltanet forward and backward, sequence split into segments with an fp32 scan of the chunk transitions (fwd and bwd); bf16: split-bf16 mma.sync, f32: fp32 FMA; K = V in {64, 128}, chunk 64 (16, 32: simple path)",
  },
  {
    variant: "softmax",
    impl: "flash",
    default: true,
    dtypes: ["f32", "bf16"],
    modes: ["fwd", "fwdbwd"],
    description:
      "tiled online-softmax attention (FlashAttention-2 algorithm); bf16 forward and backward on mma.sync tensor cores, fp32 FMA otherwise; the backward recomputes the forward; K = V in {64, 128}",
  },
  {
    variant: "rmt",
    impl: "chunk",
    default: true,
    dtypes: ["f32", "bf16"],
    modes: ["fwd", "fwdbwd"],
    description:
      "memory chain per (b,h) (one block walks the segments) plus one flash launch over every segment's tokens; fp32 final_state; M <= 64, K = V in {64, 128}",
  },
  ...(["la", "gla", "deltanet"] as const).map((variant) => ({
    variant,
    impl: "recurrent",
    default: false,
    dtypes: ["f32", "bf16", "f64"] as const,
    modes: ["fwd", "fwdbwd"] as const,
    description:
      "baseline: token by token, the K×64 state slice of one (b, h, V tile) in registers; backward recomputes from checkpoints every 64 tokens; K in {64, 128}, V a multiple of 64; f64: a separate fp64 forward (the drift oracle), no backward",
  })),
  ...(["la", "softmax"] as const).map((variant) => ({
    variant,
    impl: "quadratic",
    default: false,
    dtypes: ["f32", "bf16"] as const,
    modes: ["fwd", "fwdbwd"] as const,
    description:
      "naive baseline: B·H·T×T scores materialized, separate launches, cuBLAS (dlopen libcublas.so.13) matrix products with fp32 accumulation; oom once the scores outgrow the device",
  })),
];

/** Inputs whose device storage is always fp32, whatever the op dtype. */
const FP32_INPUTS: ReadonlySet<InputName> = new Set(["h0", "z0"]);
/** Outputs stored at the op dtype; the others (states) are fp32. */
const STORAGE_OUTPUTS: ReadonlySet<OutputName> = new Set([
  "o",
  "dq",
  "dk",
  "dv",
  "dg",
  "dbeta",
  "dmem",
]);

/** Opens liblak, selects the device and returns the backend; BackendUnavailable when it can't. */
export function openCuda(opts: CudaOptions = {}): Promise<Backend> {
  try {
    return Promise.resolve(
      new CudaBackend(LakLibrary.open({ path: opts.library }), opts.device ?? 0),
    );
  } catch (e) {
    return Promise.reject(e);
  }
}

/**
 * Device-to-device copy bandwidth, bytes read plus bytes written per second, median of 5
 * copies of 512 MiB: the memory roofline the bench reports rates against.
 */
function measureCopyGbps(lib: LakLibrary): number {
  const bytes = 512 * 2 ** 20;
  const a = lib.malloc(bytes), b = lib.malloc(bytes);
  const ev = [lib.eventCreate(), lib.eventCreate()];
  try {
    lib.memset(a, 1, bytes);
    const ms: number[] = [];
    for (let i = 0; i < 6; i++) {
      lib.eventRecord(ev[0]);
      lib.dtod(b, a, bytes);
      lib.eventRecord(ev[1]);
      lib.synchronize();
      if (i > 0) ms.push(lib.elapsedMs(ev[0], ev[1]));
    }
    ms.sort((x, y) => x - y);
    return (2 * bytes) / (ms[2] / 1e3) / 1e9;
  } finally {
    for (const e of ev) lib.eventDestroy(e);
    lib.free(a);
    lib.free(b);
    lib.resetPeak();
  }
}

/**
 * This GPU's matmul rate (TFLOP/s) from one n = 8192 GEMM timed with events, median of 5 after
 * a warm-up: bf16 on tensor cores, f32 without TF32. Undefined when the library or cuBLAS
 * cannot run it (the results then carry no matmul peak).
 */
function measureMatmulTflops(lib: LakLibrary, dtype: "bf16" | "f32"): number | undefined {
  const n = 8192;
  const bytes = n * n * (dtype === "bf16" ? 2 : 4);
  const bufs: bigint[] = [];
  const ev = [lib.eventCreate(), lib.eventCreate()];
  try {
    for (let i = 0; i < 3; i++) bufs.push(lib.malloc(bytes));
    // 0x3c bytes: about 0.0116 in both formats, so sums stay finite.
    lib.memset(bufs[0], 0x3c, bytes);
    lib.memset(bufs[1], 0x3c, bytes);
    const ms: number[] = [];
    for (let i = 0; i < 6; i++) {
      lib.eventRecord(ev[0]);
      lib.matmul(bufs[0], bufs[1], bufs[2], n, DTYPE_CODES[dtype]);
      lib.eventRecord(ev[1]);
      lib.synchronize();
      if (i > 0) ms.push(lib.elapsedMs(ev[0], ev[1]));
    }
    ms.sort((x, y) => x - y);
    return (2 * n ** 3) / (ms[2] / 1e3) / 1e12;
  } catch (e) {
    if (e instanceof Unsupported) return undefined;
    throw e;
  } finally {
    for (const e of ev) lib.eventDestroy(e);
    for (const b of bufs) lib.free(b);
    lib.resetPeak();
  }
}

class CudaBackend implements Backend {
  readonly name = "cuda" as const;
  readonly #lib: LakLibrary;
  readonly #info: DeviceInfo;

  constructor(lib: LakLibrary, device: number) {
    this.#lib = lib;
    try {
      const count = lib.deviceCount();
      if (!Number.isInteger(device) || device < 0 || device >= count) {
        throw new BackendUnavailable("cuda", `device ${device} does not exist (${count} found)`);
      }
      lib.setDevice(device);
      const raw = lib.deviceInfo(device);
      this.#info = {
        ...raw,
        backend: "cuda",
        name: String(raw.name),
        library: lib.path,
      };
    } catch (e) {
      lib.close();
      throw e;
    }
  }

  // Measured on first use, so one-off users (run-op, tests) do not pay for it.
  #copyGbps: number | undefined;
  #matmul: { bf16?: number; f32?: number } | undefined;

  info(): DeviceInfo {
    this.#copyGbps ??= measureCopyGbps(this.#lib);
    this.#matmul ??= {
      bf16: measureMatmulTflops(this.#lib, "bf16"),
      f32: measureMatmulTflops(this.#lib, "f32"),
    };
    return {
      ...this.#info,
      peaks: {
        copy_gbps: this.#copyGbps,
        ...(this.#matmul.bf16 ? { matmul_tflops: this.#matmul.bf16 } : {}),
        ...(this.#matmul.f32 ? { matmul_tflops_f32: this.#matmul.f32 } : {}),
      },
    };
  }

  impls(): ImplInfo[] {
    return IMPLS.map((i) => ({ ...i }));
  }

  prepare(
    req: OpRequest,
    inputs: Inputs | RandomSource,
    opts: PrepareOptions,
  ): Promise<PreparedOp> {
    try {
      return Promise.resolve(this.#prepare(req, inputs, opts));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  #prepare(req: OpRequest, source: Inputs | RandomSource, opts: PrepareOptions): PreparedOp {
    const info = findImpl(this, req.variant, opts.impl, opts.dtype, req.mode);
    const dtype = opts.dtype as keyof typeof DTYPE_CODES;
    if (!(dtype in DTYPE_CODES)) throw new Unsupported(`cuda does not support dtype ${opts.dtype}`);
    if (dtype === "f64" && req.mode !== "fwd") {
      throw new Unsupported(
        `cuda ${req.variant}/${info.impl} f64 (the fp64 oracle) is forward only`,
      );
    }
    const lib = this.#lib;
    const { B, T, H, K, V, M } = req.shape;
    const p = new OpParamsBlock()
      .set("variant", VARIANT_CODES[req.variant])
      .set("dtype", DTYPE_CODES[dtype])
      .set("impl", IMPL_CODES[info.impl as keyof typeof IMPL_CODES])
      .set("B", B).set("T", T).set("H", H).set("K", K).set("V", V).set("M", M)
      .set("scale", req.params.scale)
      .set("normalize", req.params.normalize)
      .set("qk_l2norm", req.params.qk_l2norm)
      .set("segment_len", req.params.segment_len)
      .set("chunk_size", req.params.chunk_size);

    const owned: bigint[] = [];
    const alloc = (bytes: number): bigint => {
      const ptr = lib.malloc(Math.max(bytes, 1));
      owned.push(ptr);
      return ptr;
    };
    const freeAll = () => {
      for (const ptr of owned.splice(0)) {
        try {
          lib.free(ptr);
        } catch { /* already failing or closed: nothing more to do */ }
      }
    };
    const outputs: {
      name: OutputName;
      ptr: bigint;
      dtype: Dtype;
      shape: number[];
      bytes: number;
    }[] = [];
    let workspaceBytes = 0;
    // Where each input lives on the device, to read back what was drawn there.
    const stored: { name: InputName; ptr: bigint; dtype: Dtype; shape: number[] }[] = [];
    try {
      if (isRandomSource(source)) {
        for (const name of requiredInputs(req.variant, req.mode)) {
          const shape = inputShape(name, req.shape);
          const ptr = alloc(numel(shape) * bytesPerElement(dtype));
          const dist = DIST_CODES[distributionOf(name)];
          lib.fillRandom(
            ptr,
            numel(shape),
            DTYPE_CODES[dtype],
            dist,
            inputSeed(source.random.seed, name),
          );
          p.set(name as ParamField, ptr);
          stored.push({ name, ptr, dtype, shape });
        }
      } else {
        for (const [name, t] of Object.entries(source) as [InputName, Tensor][]) {
          if (!t) continue;
          const d: Dtype = FP32_INPUTS.has(name) ? "f32" : dtype;
          const host = cast(t, d);
          const ptr = alloc(host.data.byteLength);
          lib.htod(ptr, host.data as Float32Array<ArrayBuffer> | Uint16Array<ArrayBuffer>);
          p.set(name as ParamField, ptr);
          stored.push({ name, ptr, dtype: d, shape: [...t.shape] });
        }
      }
      const present: Inputs = Object.fromEntries(
        stored.map((x) => [x.name, { dtype: x.dtype, shape: x.shape, data: new Float32Array(0) }]),
      );
      for (
        const [name, shape] of Object.entries(outputShapes(req, present)) as [
          OutputName,
          number[],
        ][]
      ) {
        // The fp64 oracle keeps its final states in fp64 too (lak.h).
        const d: Dtype = STORAGE_OUTPUTS.has(name) || dtype === "f64" ? dtype : "f32";
        const bytes = numel(shape) * bytesPerElement(d);
        const ptr = alloc(bytes);
        p.set(name as ParamField, ptr);
        outputs.push({ name, ptr, dtype: d, shape, bytes });
      }
      workspaceBytes = lib.opWorkspace(p.bytes);
      if (workspaceBytes > 0) {
        p.set("workspace", alloc(workspaceBytes)).set("workspace_bytes", workspaceBytes);
      }
    } catch (e) {
      freeAll();
      throw e;
    }

    const events: bigint[] = [];
    let disposed = false;
    const live = () => {
      if (disposed) throw new Error("cuda: PreparedOp used after dispose()");
    };
    // fwdbwd is the training step: the forward (o, final_state), then the backward (which
    // recomputes whatever it needs from the inputs).
    const launch = () => {
      lib.opForward(p.bytes);
      if (req.mode === "fwdbwd") lib.opBackward(p.bytes);
    };
    const op: PreparedOp = {
      workspaceBytes,
      poison: () => {
        live();
        for (const o of outputs) lib.memset(o.ptr, 0xff, o.bytes); // 0xFF.. is NaN in f32 and bf16
        lib.synchronize();
        return Promise.resolve();
      },
      run: () => {
        live();
        launch();
        lib.synchronize();
        return Promise.resolve();
      },
      read: () => {
        live();
        const out: Outputs = {};
        for (const o of outputs) {
          const t = tensor(o.dtype, o.shape);
          lib.dtoh(t.data as Float32Array<ArrayBuffer> | Uint16Array<ArrayBuffer>, o.ptr);
          // As stored: converting a 1M-token bf16 output element by element costs seconds.
          out[o.name] = t;
        }
        return Promise.resolve(out);
      },
      inputs: (tokens: number) => {
        live();
        const out: Inputs = {};
        for (const x of stored) {
          const perToken = !["h0", "z0", "mem"].includes(x.name);
          const [B, T, ...rest] = x.shape;
          const keep = perToken ? Math.min(tokens, T) : T;
          const shape = perToken ? [B, keep, ...rest] : x.shape;
          const t = tensor(x.dtype, shape);
          if (!perToken || keep === T) {
            lib.dtoh(t.data as Float32Array<ArrayBuffer> | Uint16Array<ArrayBuffer>, x.ptr);
          } else {
            // [B,T,...]: the first `keep` positions of each batch are one contiguous run.
            const row = numel(rest);
            const esize = bytesPerElement(x.dtype);
            for (let b = 0; b < B; b++) {
              const dst = t.data.subarray(b * keep * row, (b + 1) * keep * row);
              lib.dtoh(
                dst as Float32Array<ArrayBuffer> | Uint16Array<ArrayBuffer>,
                x.ptr + BigInt(b * T * row * esize),
              );
            }
          }
          out[x.name] = t;
        }
        return Promise.resolve(out);
      },
      time: (t: TimingOptions) => {
        live();
        while (events.length < 2 * t.samples) events.push(lib.eventCreate());
        for (let i = 0; i < t.samples; i++) {
          if (t.cold) lib.l2Flush();
          lib.eventRecord(events[2 * i]);
          if (t.part === "bwd") lib.opBackward(p.bytes);
          else launch();
          lib.eventRecord(events[2 * i + 1]);
        }
        lib.synchronize();
        const ms: number[] = [];
        for (let i = 0; i < t.samples; i++) {
          ms.push(lib.elapsedMs(events[2 * i], events[2 * i + 1]));
        }
        return Promise.resolve(ms);
      },
      dispose: () => {
        if (disposed || lib.closed) return;
        disposed = true;
        for (const e of events.splice(0)) {
          try {
            lib.eventDestroy(e);
          } catch { /* keep freeing */ }
        }
        freeAll();
      },
    };
    return op;
  }

  memory(): MemoryUse {
    const m = this.#lib.memoryInfo();
    return { in_use_bytes: m.inUse, peak_bytes: m.peak };
  }

  resetPeak(): void {
    this.#lib.resetPeak();
  }

  close(): void {
    this.#lib.close();
  }
}
