/**
 * What this adapter reaches through WebGPU, as the ceiling for the kernels' numbers (perf work:
 * docs/perf-notes.md compares each pass against these, not against the CUDA datasheet):
 *   fma     f32 multiply-adds from registers: 256 invocations a workgroup, 8 independent vec4
 *           chains each (no memory in the loop);
 *   shared  workgroup-memory reads: 256 invocations each read vec4s of a 32 KiB array, lanes
 *           consecutive (no bank conflicts), the sum kept so nothing is dropped;
 *   copy    device memory: a vec4 copy of a 1 GiB buffer (bytes read + written).
 * Device time from timestamp queries, median of the samples after a warm-up.
 *
 *   deno run -A kernels/webgpu/peak.ts [--samples N] [--workgroups N] [--iters N] [--copy-mib N]
 *
 * The defaults fill an H100 (8192 workgroups, 4096 iterations, 1 GiB); a software adapter wants
 * far smaller ones (tests/webgpu/peak_test.ts runs 8 workgroups, 64 iterations, 1 MiB).
 */
import { parseArgs } from "node:util";
import { openDevice } from "./device.ts";
import { timePasses } from "./timing.ts";

const HELP = `usage: deno run -A kernels/webgpu/peak.ts [options]

Times three microkernels on the WebGPU adapter with timestamp queries and prints each one's
median rate: fma (f32 multiply-adds from registers, TFLOP/s), shared (workgroup-memory reads,
TB/s), copy (a device-memory copy, bytes read + written, TB/s).

  --samples N      timed runs of each, after 3 warm-up runs (default 20)
  --workgroups N   workgroups of 256 invocations for fma and shared (default 8192)
  --iters N        loop iterations of fma and shared (default 4096)
  --copy-mib N     MiB copied (default 1024)
  -h, --help       this text`;

const FMA = `
override ITERS: u32 = 4096u;
@group(0) @binding(0) var<storage, read_write> sink: array<vec4f>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) g: vec3u, @builtin(num_workgroups) n: vec3u) {
  let i = g.x + g.y * n.x * 256u;
  let s = f32(i) * 1e-9;
  var a0 = vec4f(s); var a1 = vec4f(s + 1.0); var a2 = vec4f(s + 2.0); var a3 = vec4f(s + 3.0);
  var a4 = vec4f(s + 4.0); var a5 = vec4f(s + 5.0); var a6 = vec4f(s + 6.0); var a7 = vec4f(s + 7.0);
  let m = vec4f(0.999999);
  let c = vec4f(1e-7);
  for (var k = 0u; k < ITERS; k++) {
    a0 = fma(a0, m, c); a1 = fma(a1, m, c); a2 = fma(a2, m, c); a3 = fma(a3, m, c);
    a4 = fma(a4, m, c); a5 = fma(a5, m, c); a6 = fma(a6, m, c); a7 = fma(a7, m, c);
  }
  sink[i % arrayLength(&sink)] = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7;
}`;

const SHARED = `
override ITERS: u32 = 4096u;
const N: u32 = 2048u;  // vec4s: 32 KiB
var<workgroup> w: array<vec4f, N>;
@group(0) @binding(0) var<storage, read_write> sink: array<vec4f>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) g: vec3u, @builtin(local_invocation_index) lid: u32,
        @builtin(num_workgroups) n: vec3u) {
  let i = g.x + g.y * n.x * 256u;
  for (var j = lid; j < N; j += 256u) { w[j] = vec4f(f32(j)); }
  workgroupBarrier();
  var a0 = vec4f(0.0); var a1 = vec4f(0.0); var a2 = vec4f(0.0); var a3 = vec4f(0.0);
  for (var k = 0u; k < ITERS; k++) {
    let b = (k * 1024u + lid) % N;
    a0 += w[b]; a1 += w[(b + 256u) % N]; a2 += w[(b + 512u) % N]; a3 += w[(b + 768u) % N];
  }
  sink[i % arrayLength(&sink)] = a0 + a1 + a2 + a3;
}`;

const COPY = `
@group(0) @binding(0) var<storage, read> src: array<vec4f>;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4f>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) g: vec3u, @builtin(num_workgroups) n: vec3u) {
  let i = g.x + g.y * n.x * 256u;
  if (i < arrayLength(&dst)) { dst[i] = src[i]; }
}`;

interface Case {
  name: string;
  code: string;
  workgroups: [number, number];
  constants?: Record<string, number>;
  buffers: number[];
  /** The rate's numerator for one run, and its unit. */
  work: number;
  unit: "TFLOP/s" | "TB/s";
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      samples: { type: "string", default: "20" },
      workgroups: { type: "string", default: "8192" },
      iters: { type: "string", default: "4096" },
      "copy-mib": { type: "string", default: "1024" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(HELP);
    Deno.exit(0);
  }
  const count = (flag: "samples" | "workgroups" | "iters" | "copy-mib", max: number) => {
    const n = Number(values[flag]);
    if (!Number.isInteger(n) || n < 1 || n > max) {
      console.error(`peak: --${flag} must be an integer from 1 to ${max}, got ${values[flag]}`);
      Deno.exit(2);
    }
    return n;
  };
  const samples = count("samples", 1000);
  const groups = count("workgroups", 65535);
  const ITERS = count("iters", 1 << 20);
  const copyBytes = count("copy-mib", 2047) << 20;
  const gpu = await openDevice().catch((e: Error) => {
    console.error(`peak: ${e.message}`);
    return Deno.exit(1);
  });
  if (!gpu.features.includes("timestamp-query")) {
    console.error("peak: this adapter has no timestamp-query, so device time cannot be measured");
    Deno.exit(1);
  }
  const { device } = gpu;
  const copyGroups = copyBytes / 16 / 256;
  const cases: Case[] = [
    {
      name: "fma",
      code: FMA,
      workgroups: [groups, 1],
      constants: { ITERS },
      buffers: [groups * 256 * 16],
      work: 2 * 32 * ITERS * groups * 256,
      unit: "TFLOP/s",
    },
    {
      name: "shared",
      code: SHARED,
      workgroups: [groups, 1],
      constants: { ITERS },
      buffers: [groups * 256 * 16],
      work: 4 * 16 * ITERS * groups * 256,
      unit: "TB/s",
    },
    {
      name: "copy",
      code: COPY,
      workgroups: [Math.min(copyGroups, 65535), Math.ceil(copyGroups / 65535)],
      buffers: [copyBytes, copyBytes],
      work: 2 * copyBytes,
      unit: "TB/s",
    },
  ];
  const info = gpu.adapterInfo;
  console.log(`peak: ${info.description || info.device || info.vendor || "webgpu adapter"}`);
  for (const c of cases) {
    const buffers = c.buffers.map((size) =>
      device.createBuffer({ size, usage: GPUBufferUsage.STORAGE })
    );
    const pipeline = device.createComputePipeline({
      layout: "auto",
      compute: {
        module: device.createShaderModule({ code: c.code }),
        entryPoint: "main",
        ...(c.constants ? { constants: c.constants } : {}),
      },
    });
    const bind = device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: buffers.map((buffer, binding) => ({ binding, resource: { buffer } })),
    });
    const ms = await timePasses(device, "timestamp-query", (enc, ts) => {
      const pass = enc.beginComputePass(
        ts
          ? {
            timestampWrites: {
              querySet: ts.querySet,
              beginningOfPassWriteIndex: ts.begin,
              endOfPassWriteIndex: ts.end,
            },
          }
          : {},
      );
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bind);
      pass.dispatchWorkgroups(...c.workgroups);
      pass.end();
    }, { samples: samples + 3, scratch: null });
    const kept = ms.slice(3).sort((a, b) => a - b);
    const median = kept[Math.floor(kept.length / 2)];
    const rate = c.work / (median * 1e-3) / 1e12;
    console.log(
      `${c.name}: ${rate.toFixed(2)} ${c.unit} (median ${median.toFixed(3)} ms of ${kept.length})`,
    );
    buffers.forEach((b) => b.destroy());
  }
  device.destroy();
}
