/**
 * Runs one cell of the matrix: check correctness first (a failing cell is never timed), then
 * warm up and sample on the device clock until the median's CI is tight enough, a sample
 * budget or a time cap is reached. The runner sees only the Backend interface.
 */
import { type Backend, OutOfMemory, type PreparedOp, Unsupported } from "./backends/backend.ts";
import { checkOutputs, checkPrefix, type Correctness } from "./correctness.ts";
import { CHUNKED, type MatrixSpec, type PlannedCell } from "./matrix.ts";
import { defaultParams, type OpRequest, opWork } from "./ops.ts";
import type { Cell, CellStatus } from "./results.ts";
import { isSteady, relativeHalfWidth, summarize } from "./stats.ts";

/**
 * Device work a sampling batch holds at the least (more runs of a short op). Between batches the
 * host waits (WebGPU: ≈ 11 ms per submit and read-back on the H100), and a GPU kept busy only a
 * third of the time lowers its clock: an H100 bench cell of 0.43 ms WebGPU runs in batches of 5
 * read 0.95 ms while nvidia-smi showed the SM clock sinking from 1,410 to 945 MHz (session 7,
 * docs/perf-notes.md).
 */
export const BATCH_BUSY_MS = 50;

export async function runCell(
  backend: Backend,
  planned: PlannedCell,
  spec: MatrixSpec,
  seed: number,
): Promise<Cell> {
  const { cell, req } = newCell(planned, spec);
  const { impl, dtype } = planned;
  const ops: PreparedOp[] = [];
  try {
    backend.resetPeak();
    const correctness = await checkCell(backend, req, planned, spec, seed, ops);
    const { per_output: _, ...summary } = correctness;
    cell.correctness = summary;
    if (!correctness.pass) {
      return finish(
        cell,
        "incorrect",
        `${correctness.worst}: rel_rms ${
          correctness.rel_rms.toExponential(2)
        } > ${correctness.threshold}`,
      );
    }
    // The gate prepared and ran one full-size op: its footprint is what a user of the op pays.
    const opPeak = backend.memory().peak_bytes;
    const cold = spec.timing === "cold";
    const part = planned.mode === "bwd" ? "bwd" : "all";
    // Warm-up runs one at a time so a slow op (seconds per run) stops warming once a quarter
    // of the time cap has gone to it. An op whose first run alone takes that long keeps one
    // input set: rotating sets (to keep inputs out of L2) means nothing at that size, and each
    // set would cost another run before the first sample.
    const warm: number[] = [];
    const warmBudgetMs = (spec.time_cap_s * 1000) / 4;
    const total = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
    const warmed = () => total(warm) >= warmBudgetMs;
    warm.push(...await ops[0].time({ cold, samples: 1, part }));
    let note = "";
    if (warmed() && spec.input_sets > 1) {
      note = `1 of ${spec.input_sets} input sets (one run takes ${
        (warm[0] / 1000).toPrecision(3)
      } s)`;
    } else {
      // Further input sets are rotated when they fit; one that does not leaves fewer sets,
      // not an oom cell (the op itself fitted).
      for (let i = 1; i < spec.input_sets; i++) {
        try {
          ops.push(await backend.prepare(req, { random: { seed: seed + i } }, { impl, dtype }));
        } catch (e) {
          if (!(e instanceof OutOfMemory)) throw e;
          note = `${ops.length} of ${spec.input_sets} input sets (the next did not fit)`;
          break;
        }
      }
      for (const [n, op] of ops.entries()) {
        for (let i = n === 0 ? 1 : 0; i < spec.warmup && !(warmed() && i > 0); i++) {
          warm.push(...await op.time({ cold, samples: 1, part }));
        }
      }
      // Then up to warmup_min_s of device time, in batches sized from the runs so far.
      const minMs = Math.min(spec.warmup_min_s * 1000, warmBudgetMs);
      for (let spent = total(warm); spent < minMs; spent = total(warm)) {
        const per = Math.max(summarize(warm).median_ms, 1e-3);
        const n = Math.max(1, Math.min(100, Math.ceil((minMs - spent) / per)));
        warm.push(...await ops[0].time({ cold, samples: n, part }));
      }
    }
    const samples: number[] = [];
    const started = performance.now();
    const steadyTol = Math.max(2 * spec.ci_target, 0.02);
    let stop = "";
    let steady: boolean | undefined;
    for (let round = 0; !stop; round++) {
      const op = ops[round % ops.length];
      // Batches of 5, or of BATCH_BUSY_MS of device work where runs are short, but no more than
      // fit in the time cap left (a 30 s sample must not take 5 at once), judged from the samples
      // so far or the warm-up's.
      const seen = samples.length ? samples : warm;
      const perSample = seen.length ? summarize(seen).median_ms : 0;
      const leftMs = spec.time_cap_s * 1000 - (performance.now() - started);
      const fit = perSample > 0 ? Math.floor(leftMs / perSample) : 5;
      const busy = perSample > 0 ? Math.ceil(BATCH_BUSY_MS / perSample) : 5;
      const batch = Math.max(
        1,
        Math.min(Math.max(5, busy), spec.max_samples - samples.length, fit),
      );
      samples.push(...(await op.time({ cold, samples: batch, part })));
      steady = isSteady(samples, steadyTol, batch);
      if (
        samples.length >= spec.min_samples && steady !== false &&
        relativeHalfWidth(summarize(samples)) <= spec.ci_target
      ) {
        stop = "ci_target";
      } else if (samples.length >= spec.max_samples) stop = "max_samples";
      else if ((performance.now() - started) / 1000 >= spec.time_cap_s) stop = "time_cap";
    }
    const mem = backend.memory();
    const stats = summarize(samples);
    cell.samples_ms = samples;
    cell.stats = { ...stats, stop_reason: stop, ...(steady === undefined ? {} : { steady }) };
    cell.memory = {
      peak_bytes: mem.peak_bytes,
      op_peak_bytes: opPeak,
      workspace_bytes: ops[0].workspaceBytes,
    };
    const seconds = stats.median_ms / 1000;
    const gbps = cell.work.bytes / seconds / 1e9;
    const tflops = cell.work.flops / seconds / 1e12;
    const peaks = (backend.info() as {
      peaks?: { copy_gbps?: number; matmul_tflops?: number; matmul_tflops_f32?: number };
    }).peaks;
    // f32 cells against the fp32 (no TF32) GEMM rate, 16-bit ones against the bf16 one.
    const matmulPeak = cell.dtype === "f32" ? peaks?.matmul_tflops_f32 : peaks?.matmul_tflops;
    cell.throughput = {
      tokens_per_s: (req.shape.B * req.shape.T) / seconds,
      tflops,
      gbps,
      ...(peaks?.copy_gbps ? { copy_fraction: gbps / peaks.copy_gbps } : {}),
      ...(matmulPeak ? { matmul_fraction: tflops / matmulPeak } : {}),
    };
    return finish(cell, "ok", note);
  } catch (e) {
    const msg = e instanceof Error ? e.message.split("\n")[0] : String(e);
    const status: CellStatus = e instanceof OutOfMemory
      ? "oom"
      : e instanceof Unsupported
      ? "skipped"
      : "error";
    return finish(cell, status, msg);
  } finally {
    for (const op of ops) op.dispose();
  }
}

/** The cell record before anything ran: its identity, request and declared work. */
export function newCell(planned: PlannedCell, spec: MatrixSpec): { cell: Cell; req: OpRequest } {
  const { variant, impl, dtype, mode, T } = planned;
  const shape = {
    B: spec.B,
    T,
    H: spec.H,
    K: spec.K,
    V: spec.V,
    M: variant === "rmt" ? spec.M : 0,
  };
  const params = defaultParams(variant, spec.K);
  if (CHUNKED.has(variant)) params.chunk_size = spec.chunk_size;
  const req: OpRequest = { variant, mode: mode === "fwd" ? "fwd" : "fwdbwd", params, shape };
  const cell: Cell = {
    id: planned.id,
    variant,
    backend: planned.backend,
    impl,
    dtype,
    mode,
    shape: variant === "rmt" ? shape : { B: shape.B, T, H: shape.H, K: shape.K, V: shape.V },
    params,
    timing: spec.timing,
    status: "error",
    message: "",
    samples_ms: [],
    stats: null,
    memory: null,
    throughput: null,
    work: opWork(req, dtype),
    correctness: null,
  };
  return { cell, req };
}

export function finish(cell: Cell, status: CellStatus, message: string): Cell {
  cell.status = status;
  cell.message = message;
  return cell;
}

/**
 * fwd: the timed op's own o on a prefix (all of it when T is small). fwdbwd adds a full
 * check of every output and gradient on a short sequence, since gradients are not causal.
 * Leaves the timed op prepared in `ops[0]`.
 */
async function checkCell(
  backend: Backend,
  req: OpRequest,
  planned: PlannedCell,
  spec: MatrixSpec,
  seed: number,
  ops: PreparedOp[],
): Promise<Correctness> {
  const { impl, dtype } = planned;
  const results: Correctness[] = [];
  if (req.mode === "fwdbwd") {
    const small: OpRequest = {
      ...req,
      shape: { ...req.shape, T: Math.min(req.shape.T, spec.check_tokens) },
    };
    const op = await backend.prepare(small, { random: { seed: seed ^ 0x9e3779b9 } }, {
      impl,
      dtype,
    });
    try {
      await op.poison();
      await op.run();
      const outputs = await op.read();
      results.push(checkOutputs(small, await op.inputs(small.shape.T), dtype, outputs));
      results[0].reference += " (all outputs and gradients)";
    } finally {
      op.dispose();
    }
  }
  ops.push(await backend.prepare(req, { random: { seed } }, { impl, dtype }));
  results.push(await checkPrefix(ops[0], req, dtype, spec.check_tokens));
  const failed = results.find((r) => !r.pass);
  const worst = failed ??
    results.reduce((a, b) => (b.rel_rms / b.threshold > a.rel_rms / a.threshold ? b : a));
  return { ...worst, reference: results.map((r) => r.reference).join("; ") };
}
