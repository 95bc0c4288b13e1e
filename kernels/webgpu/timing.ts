/**
 * Device timing of a sequence of compute passes. With `timestamp-query` a sample spans the
 * first pass's beginning to the last pass's end (wgpu returns raw ticks; 1 tick = 1 ns on
 * NVIDIA Vulkan and on lavapipe, see docs/webgpu.md). Without it, wall clock around
 * submit → onSubmittedWorkDone.
 */

export type Timer = "timestamp-query" | "wall";

/** Nanoseconds per timestamp tick (checked on lavapipe against wall clock; 1 on NVIDIA). */
export const TICK_NS = 1;

/** Records the op's passes into `enc`; `ts` goes to the first and last pass. */
export type Encode = (
  enc: GPUCommandEncoder,
  ts?: { querySet: GPUQuerySet; begin: number; end: number },
) => void;

export interface TimeOptions {
  samples: number;
  /** Written (cleared) before each sample, outside the timed passes; null for warm runs. */
  scratch: GPUBuffer | null;
}

const BATCH = 256; // samples per query set (2 queries each; the spec caps a set at 4096)

export async function timePasses(
  device: GPUDevice,
  timer: Timer,
  encode: Encode,
  opts: TimeOptions,
): Promise<number[]> {
  const out: number[] = [];
  if (timer === "wall") {
    for (let i = 0; i < opts.samples; i++) {
      if (opts.scratch) {
        const pre = device.createCommandEncoder();
        pre.clearBuffer(opts.scratch);
        device.queue.submit([pre.finish()]);
        await device.queue.onSubmittedWorkDone();
      }
      const enc = device.createCommandEncoder();
      encode(enc);
      const cmd = enc.finish();
      const t0 = performance.now();
      device.queue.submit([cmd]);
      await device.queue.onSubmittedWorkDone();
      out.push(performance.now() - t0);
    }
    return out;
  }
  for (let done = 0; done < opts.samples; done += BATCH) {
    const n = Math.min(BATCH, opts.samples - done);
    const querySet = device.createQuerySet({ type: "timestamp", count: 2 * n });
    const resolve = device.createBuffer({
      size: 16 * n,
      usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
    });
    const staging = device.createBuffer({
      size: 16 * n,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    try {
      const cmds: GPUCommandBuffer[] = [];
      for (let i = 0; i < n; i++) {
        const enc = device.createCommandEncoder();
        if (opts.scratch) enc.clearBuffer(opts.scratch);
        encode(enc, { querySet, begin: 2 * i, end: 2 * i + 1 });
        cmds.push(enc.finish());
      }
      const fin = device.createCommandEncoder();
      fin.resolveQuerySet(querySet, 0, 2 * n, resolve, 0);
      fin.copyBufferToBuffer(resolve, 0, staging, 0, 16 * n);
      cmds.push(fin.finish());
      device.queue.submit(cmds);
      await staging.mapAsync(GPUMapMode.READ);
      const ticks = new BigUint64Array(staging.getMappedRange().slice(0));
      for (let i = 0; i < n; i++) {
        out.push(Number(ticks[2 * i + 1] - ticks[2 * i]) * TICK_NS / 1e6);
      }
    } finally {
      querySet.destroy();
      resolve.destroy();
      staging.destroy();
    }
  }
  return out;
}

export interface TickCheck {
  /** The busy kernel's time by timestamps (at TICK_NS per tick) and by the wall clock. */
  device_ms: number;
  wall_ms: number;
  /** Device time within the wall time and not far below it: the tick period holds. */
  ok: boolean;
}

const BUSY = `
override ITERS: u32 = 256u;
@group(0) @binding(0) var<storage, read_write> sink: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3u) {
  var x = f32(id.x) * 1e-7;
  for (var i = 0u; i < ITERS; i++) { x = fma(x, 0.999, 1e-3); }
  sink[id.x % 1024u] = x;
}`;

/**
 * Checks the assumed tick period once per run: a kernel long enough (≥ 30 ms of device time) that submit
 * overhead is a small part of the wall time is timed both ways. Timestamps reading more than
 * the wall clock, or under half of it, mean the period (or the timer) cannot be trusted.
 * The kernel grows by workgroups first, then by iterations per invocation (a fast GPU needs
 * both; a CPU adapter reaches 30 ms with few workgroups and short loops).
 */
export async function checkTickPeriod(device: GPUDevice): Promise<TickCheck> {
  const sink = device.createBuffer({ size: 4096, usage: GPUBufferUsage.STORAGE });
  try {
    const module = device.createShaderModule({ code: BUSY });
    const maxGroups = device.limits.maxComputeWorkgroupsPerDimension;
    let groups = 256;
    let iters = 256;
    for (;;) {
      const pipeline = await device.createComputePipelineAsync({
        layout: "auto",
        compute: { module, entryPoint: "main", constants: { ITERS: iters } },
      });
      const bind = device.createBindGroup({
        layout: pipeline.getBindGroupLayout(0),
        entries: [{ binding: 0, resource: { buffer: sink } }],
      });
      const encode: Encode = (enc, ts) => {
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
        pass.dispatchWorkgroups(groups);
        pass.end();
      };
      const once = async () => {
        const t0 = performance.now();
        const [device_ms] = await timePasses(device, "timestamp-query", encode, {
          samples: 1,
          scratch: null,
        });
        return { device_ms, wall_ms: performance.now() - t0 };
      };
      const { device_ms, wall_ms } = await once();
      // Grown until the device time itself is long; a wall-clock exit alone would stop on the
      // first submission's one-off costs (tens of ms on a fresh device) with a tiny kernel.
      // The decision is made on a second, warm run of the final size.
      if (device_ms >= 30 || wall_ms >= 1000 || iters >= 1 << 24) {
        const m = await once();
        return { ...m, ok: m.device_ms <= m.wall_ms * 1.02 && m.device_ms >= m.wall_ms / 2 };
      }
      const grow = device_ms < 3 ? 8 : 2;
      if (groups < maxGroups) groups = Math.min(maxGroups, groups * grow);
      else iters *= grow;
    }
  } finally {
    sink.destroy();
  }
}
