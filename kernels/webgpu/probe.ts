/**
 * Per-pass device times of one WebGPU kernel (perf work: which pass is slow). Builds the
 * kernel for one head group of the given shape, binds zero-filled buffers (β = 0.5) and times
 * each pass with its own timestamp pair, twice (the first run includes warm-up).
 *
 *   deno run -A kernels/webgpu/probe.ts VARIANT[/IMPL] T [H] [f32|f16|bf16] [fwd|fwdbwd]
 *   e.g. deno run -A kernels/webgpu/probe.ts la 1048576 1 f32 fwd
 *
 * K = V = 64 (rmt: M = 16). H is the heads of the group (each buffer must fit one binding).
 */
import {
  defaultParams,
  type InputName,
  inputShape,
  type OpRequest,
  outputShapes,
  requiredInputs,
  type Variant,
} from "../../bench/ops.ts";
import { numel } from "../../bench/tensor.ts";
import { openDevice } from "./device.ts";
import { type KernelBuilder, type Storage, tensorStorage } from "./kernel.ts";
import { laChunk } from "./la/chunk_fwd.ts";
import { glaChunk } from "./gla/chunk_fwd.ts";
import { deltanetChunk } from "./deltanet/chunk_fwd.ts";
import { rmtSegment } from "./rmt/rmt_fwd.ts";
import { softmaxFlash } from "./softmax/flash.ts";
import { deltanetRecurrent, glaRecurrent, laRecurrent } from "./recurrent/recurrent.ts";

// deno-lint-ignore no-explicit-any
const BUILDERS: KernelBuilder<any>[] = [
  laChunk,
  glaChunk,
  deltanetChunk,
  rmtSegment,
  softmaxFlash,
  laRecurrent,
  glaRecurrent,
  deltanetRecurrent,
];

const [which = "la", tArg = "65536", hArg = "1", dtArg = "f32", modeArg = "fwd"] = Deno.args;
const [variant, implArg] = which.split("/") as [Variant, string | undefined];
const builder = BUILDERS.find((b) =>
  b.variant === variant && (implArg ? b.impl === implArg : b.default)
);
if (!builder) throw new Error(`no webgpu kernel ${which}`);
const dtype = dtArg as Storage;
const mode = modeArg as "fwd" | "fwdbwd";
const shape = {
  B: 1,
  T: Number(tArg),
  H: Number(hArg),
  K: 64,
  V: 64,
  M: variant === "rmt" ? 16 : 0,
};
const req: OpRequest = { variant, mode, params: defaultParams(variant, 64), shape };
const gpu = await openDevice();
const device = gpu.device;
const plan = builder.plan(req, dtype, gpu.limits);
const names = requiredInputs(variant, mode);
const kernel = await builder.build(device, plan, req, new Set<InputName>(names));
const shapes: Record<string, number[]> = { ...outputShapes(req, {}) } as Record<string, number[]>;
for (const n of names) shapes[n] = inputShape(n, shape);
const buffers = Object.entries(kernel.bindings).map(([name, binding]) => {
  if (name === "params") {
    const b = device.createBuffer({
      size: kernel.params.byteLength,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    device.queue.writeBuffer(b, 0, kernel.params);
    return { binding: binding!, resource: { buffer: b } };
  }
  const bytes = plan.workspace[name] ??
    (shapes[name] ? numel(shapes[name]) * (tensorStorage(name, dtype) === "f32" ? 4 : 2) : 4);
  const size = Math.max(4, Math.ceil(bytes / 4) * 4);
  const b = device.createBuffer({ size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
  if (name === "beta") {
    const half = tensorStorage(name, dtype) === "f32"
      ? 0x3f000000
      : dtype === "bf16"
      ? 0x3f003f00
      : 0x38003800;
    device.queue.writeBuffer(b, 0, new Uint32Array(size / 4).fill(half));
  }
  return { binding: binding!, resource: { buffer: b } };
});
const bindGroup = device.createBindGroup({ layout: kernel.layout, entries: buffers });
const n = kernel.passes.length;
const querySet = device.createQuerySet({ type: "timestamp", count: 2 * n });
const resolve = device.createBuffer({
  size: 16 * n,
  usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
});
const staging = device.createBuffer({
  size: 16 * n,
  usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
});
for (let rep = 0; rep < 2; rep++) {
  const enc = device.createCommandEncoder();
  kernel.passes.forEach((p, i) => {
    const pass = enc.beginComputePass({
      timestampWrites: {
        querySet,
        beginningOfPassWriteIndex: 2 * i,
        endOfPassWriteIndex: 2 * i + 1,
      },
    });
    pass.setBindGroup(0, bindGroup);
    for (const s of p.steps) {
      pass.setPipeline(s.pipeline);
      pass.dispatchWorkgroups(...s.workgroups);
    }
    pass.end();
  });
  enc.resolveQuerySet(querySet, 0, 2 * n, resolve, 0);
  enc.copyBufferToBuffer(resolve, 0, staging, 0, 16 * n);
  const t0 = performance.now();
  device.queue.submit([enc.finish()]);
  await staging.mapAsync(GPUMapMode.READ);
  const wall = performance.now() - t0;
  const ticks = new BigUint64Array(staging.getMappedRange().slice(0));
  staging.unmap();
  const per = kernel.passes.map((p, i) =>
    `${p.label} ${(Number(ticks[2 * i + 1] - ticks[2 * i]) / 1e6).toFixed(3)}`
  );
  console.log(
    `${builder.variant}/${builder.impl} ${dtype} ${mode} T=${shape.T} H=${shape.H}: ${
      per.join(", ")
    } ms (wall ${wall.toFixed(1)} ms)`,
  );
}
device.destroy();
