/**
 * runCell's warm-up and input-set rotation, on the cpu backend with each prepared op's clock
 * replaced by a fixed per-run time, so "slow" and "fast" ops are exact and instant.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Backend, PreparedOp } from "../../bench/backends/backend.ts";
import { CpuBackend } from "../../bench/backends/cpu.ts";
import { cellId, type MatrixSpec, type PlannedCell, profileSpec } from "../../bench/matrix.ts";
import { BATCH_BUSY_MS, runCell } from "../../bench/runner.ts";

/**
 * The cpu backend, but every prepared op reports `runMs` per timed run (or `runMs(i)` for the
 * i-th timed run of the cell, warm-up included); counts what ran.
 */
function clocked(runMs: number | ((i: number) => number)) {
  const clock = typeof runMs === "number" ? () => runMs : runMs;
  const cpu = new CpuBackend();
  const seen = { prepared: 0, timedRuns: 0 };
  const backend: Backend = {
    name: cpu.name,
    info: () => cpu.info(),
    impls: () => cpu.impls(),
    memory: () => cpu.memory(),
    resetPeak: () => cpu.resetPeak(),
    close: () => cpu.close(),
    async prepare(...args: Parameters<Backend["prepare"]>): Promise<PreparedOp> {
      const op = await cpu.prepare(...args);
      seen.prepared++;
      return {
        workspaceBytes: op.workspaceBytes,
        poison: () => op.poison(),
        run: () => op.run(),
        read: () => op.read(),
        inputs: (tokens) => op.inputs(tokens),
        time: (opts) => {
          const first = seen.timedRuns;
          seen.timedRuns += opts.samples;
          return Promise.resolve(Array.from({ length: opts.samples }, (_, i) => clock(first + i)));
        },
        dispose: () => op.dispose(),
      };
    },
  };
  return { backend, seen };
}

const spec: MatrixSpec = {
  ...profileSpec("smoke", false),
  time_cap_s: 4,
  warmup: 3,
  input_sets: 2,
  min_samples: 3,
  max_samples: 6,
};
const base = { backend: "cpu", variant: "la", impl: "recurrent", dtype: "f64", mode: "fwd" };
const planned = { ...base, T: 64 } as Omit<PlannedCell, "id">;
const cell: PlannedCell = { ...planned, id: cellId(planned, spec) };

describe("runCell warm-up and input sets", () => {
  it("rotates every input set and warms each when a run is short", async () => {
    const { backend, seen } = clocked(1);
    const c = await runCell(backend, cell, spec, 7);
    assert.equal(c.status, "ok", c.message);
    // The gate's op plus one more input set.
    assert.equal(seen.prepared, 2);
    assert.equal(c.message, "");
    // 3 warm-up runs per set, then samples (a constant clock meets the CI target at once).
    assert.equal(seen.timedRuns, 6 + c.samples_ms.length);
  });

  it("warms up for warmup_min_s of device time, in batches", async () => {
    const { backend, seen } = clocked(1);
    const c = await runCell(backend, cell, { ...spec, warmup_min_s: 0.05 }, 7);
    assert.equal(c.status, "ok", c.message);
    // 3 runs per set (6 ms), then 44 more to reach 50 ms, then the samples.
    assert.equal(seen.timedRuns, 50 + c.samples_ms.length);
  });

  it("samples short runs in batches of BATCH_BUSY_MS of device work, long ones 5 at a time", async () => {
    const once = { ...spec, input_sets: 1, warmup: 1, warmup_min_s: 0, max_samples: 200 };
    const short = await runCell(clocked(1).backend, cell, once, 7);
    // A constant clock meets the CI target after the first batch.
    assert.equal(short.samples_ms.length, BATCH_BUSY_MS);
    const long = await runCell(clocked(30).backend, cell, once, 7);
    assert.equal(long.samples_ms.length, 5);
  });

  it("keeps one input set and one warm-up run when a run takes the warm-up budget", async () => {
    const { backend, seen } = clocked(1000); // a quarter of the 4 s cap
    const c = await runCell(backend, cell, spec, 7);
    assert.equal(c.status, "ok", c.message);
    assert.equal(seen.prepared, 1);
    assert.equal(c.message, "1 of 2 input sets (one run takes 1.00 s)");
    assert.equal(seen.timedRuns, 1 + c.samples_ms.length);
  });
});

describe("runCell stops at the CI target only on steady samples", () => {
  // One input set and no warm-up beyond the gate, so run i ≥ 1 is sample i − 1.
  const steadySpec: MatrixSpec = {
    ...spec,
    input_sets: 1,
    warmup: 0,
    warmup_min_s: 0,
    min_samples: 10,
    max_samples: 200,
    time_cap_s: 60,
  };

  it("samples on past a change of regime until the halves agree (a GPU raising its clocks)", async () => {
    // The H100's WebGPU cell: three samples at 17.4 ms, then 9.8 ms.
    const { backend } = clocked((i) => (i <= 3 ? 17.4 : 9.8));
    const c = await runCell(backend, cell, steadySpec, 7);
    assert.equal(c.status, "ok", c.message);
    assert.equal(c.stats?.stop_reason, "ci_target");
    assert.equal(c.stats?.steady, true);
    assert.equal(c.stats?.median_ms, 9.8);
    assert.deepEqual(c.samples_ms.slice(0, 3), [17.4, 17.4, 17.4]);
  });

  it("does not stop on a CI that a late faster regime has not yet moved", async () => {
    // Eight samples at 14.7 ms, then 5.7 ms: at 10 samples the median's CI is tight at 14.7.
    const { backend } = clocked((i) => (i <= 9 ? 14.7 : 5.7));
    const c = await runCell(backend, cell, steadySpec, 7);
    assert.equal(c.stats?.stop_reason, "ci_target");
    assert.equal(c.stats?.median_ms, 5.7);
    assert.ok(c.samples_ms.length > 10, `stopped after ${c.samples_ms.length}`);
  });

  it("records steady false when the cap comes first", async () => {
    // Alternating regimes never settle; stopped by max_samples.
    const { backend } = clocked((i) => (Math.floor(i / 10) % 2 ? 5 : 10));
    const c = await runCell(backend, cell, { ...steadySpec, max_samples: 40 }, 7);
    assert.equal(c.stats?.stop_reason, "max_samples");
    assert.equal(c.stats?.steady, false);
  });
});
