/**
 * The `webgpu` backend: WGSL kernels through Deno's built-in WebGPU (wgpu). See docs/webgpu.md.
 * Kernels come from a registry of builders per (variant, impl) (kernels/webgpu/kernel.ts); this
 * file owns what they share: head groups that keep every buffer within one binding, uploads,
 * device-side random inputs, poison, readback and timing.
 */
import {
  type InputName,
  type Inputs,
  inputShape,
  type OpRequest,
  type OutputName,
  type Outputs,
  outputShapes,
  requiredInputs,
  type Variant,
} from "../ops.ts";
import { cast, numel, type Tensor, tensor } from "../tensor.ts";
import {
  type Backend,
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
  BufferPool,
  fillWords,
  openDevice,
  type OpenedDevice,
  readBuffer,
  scoped,
  upload,
} from "../../kernels/webgpu/device.ts";
import {
  checkTickPeriod,
  type Encode,
  TICK_NS,
  type TickCheck,
  timePasses,
  type Timer,
} from "../../kernels/webgpu/timing.ts";
import {
  type BindName,
  type Kernel,
  type KernelBuilder,
  type Plan,
  type Storage,
  tensorStorage,
  tuneOverrides,
} from "../../kernels/webgpu/kernel.ts";
import { RandomFill } from "../../kernels/webgpu/random.ts";
import { laChunk } from "../../kernels/webgpu/la/chunk_fwd.ts";
import { glaChunk } from "../../kernels/webgpu/gla/chunk_fwd.ts";
import { deltanetChunk } from "../../kernels/webgpu/deltanet/chunk_fwd.ts";
import { rmtSegment } from "../../kernels/webgpu/rmt/rmt_fwd.ts";
import { softmaxFlash } from "../../kernels/webgpu/softmax/flash.ts";
import { laQuadratic, softmaxQuadratic } from "../../kernels/webgpu/quadratic/quadratic.ts";
import {
  deltanetRecurrent,
  glaRecurrent,
  laRecurrent,
} from "../../kernels/webgpu/recurrent/recurrent.ts";

/** Every kernel the backend offers, one builder per (variant, impl). */
// deno-lint-ignore no-explicit-any
const REGISTRY: KernelBuilder<any>[] = [
  laChunk,
  glaChunk,
  deltanetChunk,
  rmtSegment,
  softmaxFlash,
  laRecurrent,
  glaRecurrent,
  deltanetRecurrent,
  laQuadratic,
  softmaxQuadratic,
];

const NAN_WORD: Record<Storage, number> = {
  f32: 0x7fc00000,
  f16: 0x7e007e00,
  bf16: 0x7fc07fc0,
};
/** Bytes cleared before each cold sample: above the H100's 50 MB L2 and CPU LLCs. */
const FLUSH_BYTES = 256 << 20;

const STORAGE = GPUBufferUsage.STORAGE;
const COPY_DST = GPUBufferUsage.COPY_DST;
const COPY_SRC = GPUBufferUsage.COPY_SRC;

export interface WebGpuOptions {
  /**
   * Plan as if maxStorageBufferBindingSize were this many bytes (never above the granted
   * limit). For tests of the head-group split on small shapes.
   */
  bindingLimit?: number;
}

export async function openWebGpu(opts: WebGpuOptions = {}): Promise<Backend> {
  const gpu = await openDevice();
  const check = gpu.features.includes("timestamp-query") ? await checkTickPeriod(gpu.device) : null;
  return new WebGpuBackend(gpu, opts, check);
}

class WebGpuBackend implements Backend {
  readonly name = "webgpu" as const;
  readonly pool: BufferPool;
  readonly timer: Timer;
  #scratch: GPUBuffer | null = null;
  #random: RandomFill | null = null;
  #lost: string | null = null;

  constructor(
    readonly gpu: OpenedDevice,
    readonly opts: WebGpuOptions,
    readonly tickCheck: TickCheck | null,
  ) {
    this.pool = new BufferPool(gpu.device);
    // Timestamps whose period fails the wall-clock check are not used: wall time is honest.
    this.timer = tickCheck?.ok ? "timestamp-query" : "wall";
    gpu.device.lost.then((info) => {
      this.#lost = `${info.reason}: ${info.message}`;
    });
  }

  get device(): GPUDevice {
    if (this.#lost) throw new Error(`webgpu device lost (${this.#lost})`);
    return this.gpu.device;
  }

  info(): DeviceInfo {
    const a = this.gpu.adapterInfo;
    return {
      backend: "webgpu",
      name: a.description || a.device || a.vendor || "unknown adapter",
      vendor: a.vendor,
      architecture: a.architecture,
      device: a.device,
      description: a.description,
      isFallbackAdapter: a.isFallbackAdapter,
      limits: { ...this.gpu.limits },
      features: [...this.gpu.features],
      timer: this.timer,
      timestamp_ns_per_tick: this.timer === "timestamp-query" ? TICK_NS : null,
      timestamp_check: this.tickCheck,
      // Tile overrides in force (kernel.ts tuned()), so a tuned run is never mistaken for defaults.
      tile_overrides: tuneOverrides() ?? null,
      runtime: `deno ${Deno.version.deno}`,
    };
  }

  impls(): ImplInfo[] {
    const f16 = this.gpu.features.includes("shader-f16");
    return REGISTRY.map((b) => ({
      variant: b.variant,
      impl: b.impl,
      default: b.default,
      dtypes: b.dtypes.filter((d) => d !== "f16" || f16),
      modes: b.modes,
      description: b.description,
    }));
  }

  /** The device-side random input generator, made on first use. */
  get random(): RandomFill {
    this.#random ??= new RandomFill(this.device, this.gpu.limits.maxComputeWorkgroupsPerDimension);
    return this.#random;
  }

  /** A buffer larger than the last-level cache, cleared before each cold sample. */
  scratch(): GPUBuffer {
    if (!this.#scratch) {
      const size = Math.min(
        FLUSH_BYTES,
        this.gpu.limits.maxBufferSize - (this.gpu.limits.maxBufferSize % 4),
      );
      this.#scratch = this.pool.create("cold-flush scratch", size, COPY_DST);
    }
    return this.#scratch;
  }

  async prepare(
    req: OpRequest,
    source: Inputs | RandomSource,
    opts: PrepareOptions,
  ): Promise<PreparedOp> {
    findImpl(this, req.variant, opts.impl, opts.dtype, req.mode);
    const builder = REGISTRY.find((b) => b.variant === req.variant && b.impl === opts.impl)!;
    const dtype = opts.dtype as Storage;
    const device = this.device;
    const granted = this.gpu.limits;
    const maxBind = Math.min(
      granted.maxStorageBufferBindingSize,
      granted.maxBufferSize,
      this.opts.bindingLimit ?? Infinity,
    );
    const limits = {
      ...granted,
      maxStorageBufferBindingSize: maxBind,
      softwareAdapter: this.gpu.adapterInfo.isFallbackAdapter,
    };
    const random = isRandomSource(source) ? source.random.seed : null;
    const given: Inputs = random === null ? source as Inputs : {};
    const names = random === null
      ? Object.keys(given) as InputName[]
      : requiredInputs(req.variant, req.mode);
    const shapes: Partial<Record<InputName | OutputName, number[]>> = {
      ...outputShapes(req, given),
    };
    for (const n of names) shapes[n] = inputShape(n, req.shape);

    // Head groups: the fewest equal groups (a divisor of H) whose buffers each fit a binding.
    const { H } = req.shape;
    const bytesOf = (name: string, hg: number) =>
      Math.ceil(numel(shapes[name as InputName]!) / H * hg * esize(tensorStorage(name, dtype)));
    // Tensor sizes are checked first: a tensor that cannot fit even one head per group is the
    // problem to report, whatever the kernel's tiling would say about the shape.
    const tensorSizes = (hg: number): [string, number][] =>
      Object.keys(shapes).map((n) => [n, bytesOf(n, hg)]);
    const single = tensorSizes(1).find(([, b]) => b > maxBind);
    if (single) {
      const whole = tensorSizes(H).find(([n]) => n === single[0])!;
      throw new Unsupported(
        `webgpu ${req.variant}/${builder.impl}: ${whole[0]} needs ${whole[1]} bytes, and even ` +
          `one head per group needs ${single[1]}, above maxStorageBufferBindingSize ${maxBind} ` +
          `(maxBufferSize ${granted.maxBufferSize})`,
      );
    }
    let G = 0;
    let plan: Plan | null = null;
    for (let g = 1; g <= H && !plan; g++) {
      if (H % g !== 0) continue;
      const hg = H / g;
      const sub: OpRequest = { ...req, shape: { ...req.shape, H: hg } };
      const p: Plan = builder.plan(sub, dtype, limits);
      const over = [...tensorSizes(hg), ...Object.entries(p.workspace)].find(([, b]) =>
        b > maxBind
      );
      if (!over) {
        G = g;
        plan = p;
      } else if (g === H) {
        throw new Unsupported(
          `webgpu ${req.variant}/${builder.impl}: with one head per group ${over[0]} needs ` +
            `${over[1]} bytes, above maxStorageBufferBindingSize ${maxBind}; use a larger ` +
            `chunk_size or fewer tokens`,
        );
      }
    }
    // A bf16 output is stored a u32 word (two elements) at a time by one invocation, so a row of
    // odd length would share its last word with the next row's first, written by another.
    const oddRow = dtype === "bf16" &&
      Object.entries(outputShapes(req, given)).find(([n, s]) =>
        tensorStorage(n, dtype) === "bf16" && s[s.length - 1] % 2 !== 0
      );
    if (oddRow) {
      const [n, s] = oddRow;
      throw new Unsupported(
        `webgpu ${req.variant}/${builder.impl} bf16: output ${n} has rows of ${
          s[s.length - 1]
        } elements; packed bf16 pairs need an even row length`,
      );
    }
    const Hg = H / G;
    const sub: OpRequest = { ...req, shape: { ...req.shape, H: Hg } };
    const has = new Set(names);
    const pool = this.pool;
    const owned: GPUBuffer[] = [];
    const make = (label: string, size: number, usage: number) => {
      const b = pool.create(label, size, usage);
      owned.push(b);
      return b;
    };
    try {
      const kernel: Kernel = await scoped(
        device,
        `${req.variant}/${builder.impl} pipeline creation`,
        () => builder.build(device, plan!, sub, has),
      );
      const groups = await scoped(device, "buffer allocation and upload", async () => {
        const dummies = new Map<string, GPUBuffer>();
        const dummy = (name: string) => {
          let d = dummies.get(name);
          if (!d) dummies.set(name, d = make(`${name} (absent)`, 4, STORAGE));
          return d;
        };
        const params = make("params", kernel.params.byteLength, GPUBufferUsage.UNIFORM | COPY_DST);
        upload(device, params, new Uint8Array(kernel.params));
        const fillEnc = device.createCommandEncoder({ label: "random fill" });
        const uniforms: GPUBuffer[] = [];
        const out = [];
        for (let gi = 0; gi < G; gi++) {
          const bufs: Partial<Record<BindName, GPUBuffer>> = {};
          for (const n of names) {
            const st = tensorStorage(n, dtype);
            const buf = make(`${n}[${gi}]`, bytesOf(n, Hg), STORAGE | COPY_DST | COPY_SRC);
            bufs[n] = buf;
            if (random === null) {
              const t = splitHeads(cast(given[n]!, st), headAxis(n, req.variant), gi * Hg, Hg, G);
              upload(device, buf, t);
            } else {
              const shape = shapes[n]!;
              const axis = headAxis(n, req.variant);
              uniforms.push(
                await this.random.fill(fillEnc, n, random, st, {
                  buffer: buf,
                  n: numel(shape) / G,
                  H,
                  Hg,
                  hBase: gi * Hg,
                  inner: numel(shape.slice(axis + 1)),
                }),
              );
            }
          }
          for (const n of Object.keys(outputShapes(req, given)) as OutputName[]) {
            bufs[n] = make(`${n}[${gi}]`, bytesOf(n, Hg), STORAGE | COPY_SRC | COPY_DST);
          }
          for (const [n, bytes] of Object.entries(plan!.workspace)) {
            bufs[n as BindName] = make(`${n}[${gi}]`, bytes, STORAGE);
          }
          const entries = Object.entries(kernel.bindings).map(([n, binding]) => ({
            binding: binding!,
            resource: {
              buffer: n === "params" ? params : bufs[n as BindName] ?? dummy(n),
            },
          }));
          const bindGroup = device.createBindGroup({
            label: `${req.variant}/${builder.impl} group ${gi}`,
            layout: kernel.layout,
            entries,
          });
          out.push({ bufs, bindGroup });
        }
        if (random !== null) {
          device.queue.submit([fillEnc.finish()]);
          await device.queue.onSubmittedWorkDone();
        }
        for (const u of uniforms) u.destroy();
        return out;
      });
      // Records every pass; the timestamps span passes `from` … last (the backward alone when
      // `from` is kernel.bwdFrom, though the forward still runs first to feed it).
      const encode = (enc: GPUCommandEncoder, ts?: PassStamps, from = 0) => {
        kernel.passes.forEach((p, i) => {
          const last = i === kernel.passes.length - 1;
          const timestampWrites = ts && "perPass" in ts
            ? {
              querySet: ts.querySet,
              beginningOfPassWriteIndex: 2 * i,
              endOfPassWriteIndex: 2 * i + 1,
            }
            : ts && (i === from || last)
            ? {
              querySet: ts.querySet,
              beginningOfPassWriteIndex: i === from ? ts.begin : undefined,
              endOfPassWriteIndex: last ? ts.end : undefined,
            }
            : undefined;
          const pass = enc.beginComputePass({
            label: `${req.variant}/${builder.impl} ${p.label}`,
            timestampWrites,
          });
          for (const g of groups) {
            pass.setBindGroup(0, g.bindGroup);
            for (const s of p.steps) {
              pass.setPipeline(s.pipeline);
              pass.dispatchWorkgroups(...s.workgroups);
            }
          }
          pass.end();
        });
      };
      const tensors = (list: string[]): GroupedTensor[] =>
        list.map((n) => ({
          name: n,
          shape: shapes[n as InputName]!,
          dtype: tensorStorage(n, dtype),
          axis: headAxis(n, req.variant),
          buffers: groups.map((g) => g.bufs[n as BindName]!),
        }));
      const workspaceBytes = G * Object.values(plan!.workspace).reduce((a, b) => a + b, 0);
      return new WebGpuOp(
        this,
        owned,
        workspaceBytes,
        `${req.variant}/${builder.impl}`,
        encode,
        kernel.passes.map((p) => p.label),
        kernel.bwdFrom,
        tensors(Object.keys(outputShapes(req, given))),
        tensors(names),
        G,
      );
    } catch (e) {
      for (const b of owned) pool.destroy(b);
      throw e;
    }
  }

  memory(): MemoryUse {
    return { in_use_bytes: this.pool.inUse, peak_bytes: this.pool.peak };
  }

  resetPeak(): void {
    this.pool.resetPeak();
  }

  close(): void {
    if (this.#scratch) this.pool.destroy(this.#scratch);
    this.#scratch = null;
    this.gpu.device.destroy();
  }
}

/** One tensor of a prepared op, stored as one buffer per head group. */
interface GroupedTensor {
  name: string;
  shape: number[];
  dtype: Storage;
  /** Axis of H in `shape`. */
  axis: number;
  buffers: GPUBuffer[];
}

function esize(dtype: Storage): number {
  return dtype === "f32" ? 4 : 2;
}

/** Axis of the head dimension: [B,H,…] for states, [B,T,H,…] or [B,M,H,D] otherwise. */
function headAxis(name: string, variant: Variant): number {
  if (name === "h0" || name === "z0" || name === "dh0" || name === "dz0") return 1;
  if (name === "final_state" || name === "final_z") return variant === "rmt" ? 2 : 1;
  return 2;
}

/** Heads h0..h0+hg of `t` along `axis` (the whole tensor's data when G = 1). */
function splitHeads(t: Tensor, axis: number, h0: number, hg: number, G: number) {
  if (G === 1) return t.data;
  const H = t.shape[axis];
  const inner = numel(t.shape.slice(axis + 1));
  const outer = numel(t.shape.slice(0, axis));
  const Ctor = t.data.constructor as new (n: number) => typeof t.data;
  const out = new Ctor(outer * hg * inner);
  for (let o = 0; o < outer; o++) {
    const src = (o * H + h0) * inner;
    out.set(t.data.subarray(src, src + hg * inner), o * hg * inner);
  }
  return out;
}

/**
 * Reads a grouped tensor back as f32, cut to its first `tokens` positions along axis 1 when
 * `tokens` is given (per-token tensors); only those bytes are copied from the device.
 */
async function readGrouped(
  device: GPUDevice,
  t: GroupedTensor,
  tokens?: number,
): Promise<Tensor> {
  const G = t.buffers.length;
  const shape = [...t.shape];
  const T = shape[1];
  const keep = tokens === undefined ? T : Math.min(tokens, T);
  shape[1] = keep;
  const H = shape[t.axis];
  const Hg = H / G;
  const inner = numel(t.shape.slice(t.axis + 1));
  const outer = numel(shape.slice(0, t.axis));
  const row = numel(t.shape.slice(2)) / G; // elements per (b, position) in one group buffer
  const B = shape[0];
  const e = esize(t.dtype);
  const out = new Float32Array(numel(shape));
  for (let gi = 0; gi < G; gi++) {
    const part = new Float32Array(B * keep * row);
    for (let b = 0; b < B; b++) {
      // Whole 4-byte words around the wanted range; `skip` elements lead it.
      const start = b * T * row * e;
      const end = (b * T + keep) * row * e;
      const lo = start - (start % 4);
      const hi = Math.ceil(end / 4) * 4;
      const bytes = await readBuffer(device, t.buffers[gi], hi - lo, lo);
      const skip = (start - lo) / e;
      const n = keep * row;
      const dst = part.subarray(b * n, (b + 1) * n);
      if (t.dtype === "f32") dst.set(new Float32Array(bytes, 0, n));
      else {
        const words = new Uint16Array(bytes, 0, skip + n).subarray(skip);
        dst.set(cast(tensor(t.dtype, [n], words), "f32").data);
      }
    }
    if (G === 1) return tensor("f32", shape, part);
    for (let o = 0; o < outer; o++) {
      out.set(
        part.subarray(o * Hg * inner, (o + 1) * Hg * inner),
        (o * H + gi * Hg) * inner,
      );
    }
  }
  return tensor("f32", shape, out);
}

const PER_TOKEN: ReadonlySet<string> = new Set(["q", "k", "v", "g", "beta", "do"]);

/** Where an encode writes timestamps: around passes from … last, or around every pass. */
type PassStamps = Parameters<Encode>[1] | { querySet: GPUQuerySet; perPass: true };

/**
 * Device time of each pass of a prepared WebGPU op (median of `samples` hot runs, ms), for
 * tuning: what the bench times as one span, split at pass boundaries.
 */
export async function passTimes(
  op: PreparedOp,
  samples: number,
): Promise<{ label: string; ms: number }[]> {
  if (!(op instanceof WebGpuOp)) throw new Error("passTimes: not a webgpu op");
  return await op.passTimes(samples);
}

class WebGpuOp implements PreparedOp {
  #disposed = false;

  constructor(
    readonly backend: WebGpuBackend,
    readonly buffers: GPUBuffer[],
    readonly workspaceBytes: number,
    readonly label: string,
    readonly encode: (enc: GPUCommandEncoder, ts?: PassStamps, from?: number) => void,
    readonly passLabels: string[],
    readonly bwdFrom: number | undefined,
    readonly outputs: GroupedTensor[],
    readonly stored: GroupedTensor[],
    readonly groups: number,
  ) {}

  async inputs(tokens: number): Promise<Inputs> {
    const device = this.#live();
    const out: Inputs = {};
    await scoped(device, "input readback", async () => {
      for (const t of this.stored) {
        const f = await readGrouped(device, t, PER_TOKEN.has(t.name) ? tokens : undefined);
        out[t.name as InputName] = t.dtype === "f32" ? f : cast(f, t.dtype);
      }
    });
    return out;
  }

  #live(): GPUDevice {
    if (this.#disposed) throw new Error("webgpu: prepared op used after dispose()");
    return this.backend.device;
  }

  async poison(): Promise<void> {
    const device = this.#live();
    await scoped(device, "poison", async () => {
      for (const t of this.outputs) {
        for (const b of t.buffers) fillWords(device, b, NAN_WORD[t.dtype]);
      }
      await device.queue.onSubmittedWorkDone();
    });
  }

  async run(): Promise<void> {
    const device = this.#live();
    await scoped(device, `${this.label} dispatch`, async () => {
      const enc = device.createCommandEncoder();
      this.encode(enc);
      device.queue.submit([enc.finish()]);
      await device.queue.onSubmittedWorkDone();
    });
  }

  async read(): Promise<Outputs> {
    const device = this.#live();
    const out: Outputs = {};
    await scoped(device, "readback", async () => {
      for (const t of this.outputs) out[t.name as OutputName] = await readGrouped(device, t);
    });
    return out;
  }

  async time(opts: TimingOptions): Promise<number[]> {
    const device = this.#live();
    let from = 0;
    if (opts.part === "bwd") {
      if (this.bwdFrom === undefined) {
        throw new Unsupported(`webgpu ${this.label}: no backward passes to time (mode fwd)`);
      }
      if (this.backend.timer !== "timestamp-query") {
        throw new Unsupported("webgpu: timing the backward alone needs timestamp-query");
      }
      from = this.bwdFrom;
    }
    const scratch = opts.cold ? this.backend.scratch() : null;
    const encode: Encode = (enc, ts) => this.encode(enc, ts, from);
    return await scoped(
      device,
      "timing",
      () => timePasses(device, this.backend.timer, encode, { samples: opts.samples, scratch }),
    );
  }

  async passTimes(samples: number): Promise<{ label: string; ms: number }[]> {
    const device = this.#live();
    if (this.backend.timer !== "timestamp-query") {
      throw new Unsupported("webgpu: per-pass times need timestamp-query");
    }
    const n = this.passLabels.length;
    const runs: number[][] = this.passLabels.map(() => []);
    await scoped(device, "pass timing", async () => {
      for (let s = 0; s < samples; s++) {
        const querySet = device.createQuerySet({ type: "timestamp", count: 2 * n });
        const usage = GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC;
        const resolve = device.createBuffer({ size: 16 * n, usage });
        const staging = device.createBuffer({
          size: 16 * n,
          usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
        });
        const enc = device.createCommandEncoder();
        this.encode(enc, { querySet, perPass: true });
        enc.resolveQuerySet(querySet, 0, 2 * n, resolve, 0);
        enc.copyBufferToBuffer(resolve, 0, staging, 0, 16 * n);
        device.queue.submit([enc.finish()]);
        await staging.mapAsync(GPUMapMode.READ);
        const ticks = new BigUint64Array(staging.getMappedRange().slice(0));
        for (let i = 0; i < n; i++) {
          runs[i].push(Number(ticks[2 * i + 1] - ticks[2 * i]) * TICK_NS / 1e6);
        }
        querySet.destroy();
        resolve.destroy();
        staging.destroy();
      }
    });
    return this.passLabels.map((label, i) => {
      const r = runs[i].sort((a, b) => a - b);
      return { label, ms: r[r.length >> 1] };
    });
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const b of this.buffers) this.backend.pool.destroy(b);
  }
}
