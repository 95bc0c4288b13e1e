/**
 * The `webgpu` backend: WGSL kernels through Deno's built-in WebGPU (wgpu). See docs/webgpu.md.
 */
import type { Inputs, OpRequest, OutputName, Outputs } from "../ops.ts";
import { outputShapes } from "../ops.ts";
import { cast, type Dtype, numel, type Tensor, tensor } from "../tensor.ts";
import { prefixInputs, randomInputs } from "../inputs.ts";
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
import { type Encode, TICK_NS, timePasses, type Timer } from "../../kernels/webgpu/timing.ts";
import {
  BIND,
  buildLaChunk,
  type LaStorage,
  paramsBlock,
  planLaChunk,
} from "../../kernels/webgpu/la/chunk_fwd.ts";

const NAN_WORD: Record<LaStorage, number> = {
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
  return new WebGpuBackend(await openDevice(), opts);
}

class WebGpuBackend implements Backend {
  readonly name = "webgpu" as const;
  readonly pool: BufferPool;
  readonly timer: Timer;
  #scratch: GPUBuffer | null = null;
  #lost: string | null = null;

  constructor(readonly gpu: OpenedDevice, readonly opts: WebGpuOptions = {}) {
    this.pool = new BufferPool(gpu.device);
    this.timer = gpu.features.includes("timestamp-query") ? "timestamp-query" : "wall";
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
      runtime: `deno ${Deno.version.deno}`,
    };
  }

  impls(): ImplInfo[] {
    const dtypes: Dtype[] = this.gpu.features.includes("shader-f16")
      ? ["f32", "f16", "bf16"]
      : ["f32", "bf16"];
    return [{
      variant: "la",
      impl: "chunk",
      default: true,
      dtypes,
      modes: ["fwd"],
      description: "chunked la forward in 3 WGSL passes: chunk states, prefix over chunks, outputs",
    }];
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
    const dtype = opts.dtype as LaStorage;
    const device = this.device;
    const shape = req.shape;
    const granted = this.gpu.limits;
    const limits = {
      ...granted,
      maxStorageBufferBindingSize: Math.min(
        granted.maxStorageBufferBindingSize,
        this.opts.bindingLimit ?? Infinity,
      ),
    };
    // WGSL has no device-side generator yet: random inputs are drawn on the host.
    const inputs = isRandomSource(source) ? randomInputs(req, dtype, source.random.seed) : source;
    const esize = dtype === "f32" ? 4 : 2;
    const outShapes = outputShapes(req, inputs);

    // Size checks before anything is allocated: one binding per tensor for now.
    const maxBind = limits.maxStorageBufferBindingSize;
    const maxBuf = this.gpu.limits.maxBufferSize;
    const sizes: [string, number][] = [
      ["q", numel(inputs.q!.shape) * esize],
      ["k", numel(inputs.k!.shape) * esize],
      ["v", numel(inputs.v!.shape) * esize],
      ["o", numel(outShapes.o!) * esize],
    ];
    for (const [name, bytes] of sizes) {
      if (bytes > maxBind || bytes > maxBuf) {
        throw new Unsupported(
          `webgpu la/chunk: ${name} needs ${bytes} bytes in one binding, above ` +
            `maxStorageBufferBindingSize ${maxBind} (maxBufferSize ${maxBuf}); splitting large ` +
            `q/k/v/o into bound windows is not implemented yet`,
        );
      }
    }

    const plan = planLaChunk(shape, req.params, dtype, limits);
    const pool = this.pool;
    const owned: GPUBuffer[] = [];
    const make = (label: string, size: number, usage: number) => {
      const b = pool.create(label, size, usage);
      owned.push(b);
      return b;
    };
    try {
      const kernel = await scoped(
        device,
        "la/chunk pipeline creation",
        () => buildLaChunk(device, plan, shape),
      );
      const built = await scoped(device, "la/chunk buffer allocation and upload", () => {
        const inBuf = (name: "q" | "k" | "v") => {
          const t = cast(inputs[name]!, dtype);
          const b = make(name, t.data.byteLength, STORAGE | COPY_DST);
          upload(device, b, t.data);
          return b;
        };
        const f32In = (name: "h0" | "z0") => {
          const src = inputs[name];
          const t = src ? cast(src, "f32") : null;
          const b = make(name, t ? t.data.byteLength : 4, STORAGE | COPY_DST);
          if (t) upload(device, b, t.data);
          return b;
        };
        const bufs = {
          q: inBuf("q"),
          k: inBuf("k"),
          v: inBuf("v"),
          o: make("o", numel(outShapes.o!) * esize, STORAGE | COPY_SRC | COPY_DST),
          h0: f32In("h0"),
          z0: f32In("z0"),
          final_state: make(
            "final_state",
            numel(outShapes.final_state!) * 4,
            STORAGE | COPY_SRC | COPY_DST,
          ),
          final_z: make(
            "final_z",
            outShapes.final_z ? numel(outShapes.final_z) * 4 : 4,
            STORAGE | COPY_SRC | COPY_DST,
          ),
        };
        // One workspace, uniform block and bind group per head group (see planLaChunk).
        const groups = plan.groups.map((g, gi) => {
          const params = make(`params[${gi}]`, 32, GPUBufferUsage.UNIFORM | COPY_DST);
          const block = paramsBlock(plan, shape, !!inputs.h0, !!inputs.z0, g.base);
          upload(device, params, new Uint8Array(block));
          const ws = make(`workspace[${gi}]`, 4 * g.count * plan.NC * plan.KVZ, STORAGE);
          const all = { ...bufs, params, ws };
          const bindGroup = device.createBindGroup({
            label: `la/chunk group ${gi}`,
            layout: kernel.layout,
            entries: (Object.keys(BIND) as (keyof typeof BIND)[]).map((name) => ({
              binding: BIND[name],
              resource: { buffer: all[name] },
            })),
          });
          return { heads: g.count, bindGroup };
        });
        return { bufs, groups };
      });
      const { bufs, groups } = built;
      const encode: Encode = (enc, ts) => {
        kernel.passes.forEach((p, i) => {
          const last = i === kernel.passes.length - 1;
          const timestampWrites = ts && (i === 0 || last)
            ? {
              querySet: ts.querySet,
              beginningOfPassWriteIndex: i === 0 ? ts.begin : undefined,
              endOfPassWriteIndex: last ? ts.end : undefined,
            }
            : undefined;
          const pass = enc.beginComputePass({ label: `la/chunk ${p.label}`, timestampWrites });
          pass.setPipeline(p.pipeline);
          for (const g of groups) {
            pass.setBindGroup(0, g.bindGroup);
            const [x, y] = p.workgroups(g.heads);
            pass.dispatchWorkgroups(x, y);
          }
          pass.end();
        });
      };
      const outputs: [OutputName, GPUBuffer, number[], Dtype][] = [
        ["o", bufs.o, outShapes.o!, dtype],
        ["final_state", bufs.final_state, outShapes.final_state!, "f32"],
      ];
      if (outShapes.final_z) outputs.push(["final_z", bufs.final_z, outShapes.final_z, "f32"]);
      const stored = (tokens: number) => {
        const out: Inputs = {};
        for (const [name, t] of Object.entries(prefixInputs(inputs, tokens))) {
          out[name as keyof Inputs] = cast(t!, name === "h0" || name === "z0" ? "f32" : dtype);
        }
        return out;
      };
      return new WebGpuOp(this, owned, plan.wsBytes, encode, outputs, stored);
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

class WebGpuOp implements PreparedOp {
  #disposed = false;

  constructor(
    readonly backend: WebGpuBackend,
    readonly buffers: GPUBuffer[],
    readonly workspaceBytes: number,
    readonly encode: Encode,
    readonly outputs: [OutputName, GPUBuffer, number[], Dtype][],
    readonly stored: (tokens: number) => Inputs,
  ) {}

  inputs(tokens: number): Promise<Inputs> {
    this.#live();
    return Promise.resolve(this.stored(tokens));
  }

  #live(): GPUDevice {
    if (this.#disposed) throw new Error("webgpu: prepared op used after dispose()");
    return this.backend.device;
  }

  async poison(): Promise<void> {
    const device = this.#live();
    await scoped(device, "poison", async () => {
      for (const [, buf, , dtype] of this.outputs) {
        fillWords(device, buf, NAN_WORD[dtype as LaStorage]);
      }
      await device.queue.onSubmittedWorkDone();
    });
  }

  async run(): Promise<void> {
    const device = this.#live();
    await scoped(device, "la/chunk dispatch", async () => {
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
      for (const [name, buf, shape, dtype] of this.outputs) {
        const n = numel(shape);
        const bytes = await readBuffer(device, buf);
        let t: Tensor;
        if (dtype === "f32") t = tensor("f32", shape, new Float32Array(bytes, 0, n));
        else t = cast(tensor(dtype, shape, new Uint16Array(bytes, 0, n)), "f32");
        out[name] = t;
      }
    });
    return out;
  }

  async time(opts: TimingOptions): Promise<number[]> {
    const device = this.#live();
    const scratch = opts.cold ? this.backend.scratch() : null;
    return await scoped(
      device,
      "timing",
      () => timePasses(device, this.backend.timer, this.encode, { samples: opts.samples, scratch }),
    );
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const b of this.buffers) this.backend.pool.destroy(b);
  }
}
