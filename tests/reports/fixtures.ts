/** Synthetic results.json documents for the report, compare, dashboard and export tests. */
import { type Cell, type CellStatus, type Results, SCHEMA } from "../../bench/results.ts";
import { mulberry32, summarize } from "../../bench/stats.ts";
import type { Mode, Variant } from "../../bench/ops.ts";
import type { DriftEntry } from "../../reports/common.ts";

/** Normal noise by Box–Muller, from a seeded generator so every test is reproducible. */
export function noisy(seed: number, n: number, median: number, cv: number): number[] {
  const rand = mulberry32(seed);
  return Array.from({ length: n }, () => {
    const z = Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
    return median * (1 + cv * z);
  });
}

export interface CellSpec {
  variant?: Variant;
  backend?: string;
  impl?: string;
  dtype?: string;
  mode?: Mode;
  T?: number;
  H?: number;
  status?: CellStatus;
  samples?: number[];
  message?: string;
  pass?: boolean;
}

export function cell(s: CellSpec): Cell {
  const variant = s.variant ?? "la";
  const backend = s.backend ?? "cuda";
  const impl = s.impl ?? "chunk";
  const dtype = s.dtype ?? "bf16";
  const mode = s.mode ?? "fwd";
  const T = s.T ?? 4096;
  const H = s.H ?? 8;
  const status = s.status ?? "ok";
  const timed = status === "ok";
  const samples = timed ? (s.samples ?? noisy(T, 20, T / 1000, 0.02)) : [];
  const stats = timed ? { ...summarize(samples), stop_reason: "ci_target" } : null;
  const flops = 4 * T * H * 64 * 64;
  const bytes = 4 * T * H * 64 * 2;
  return {
    id: `${variant}/${backend}/${impl}/${dtype}/${mode}/B1/T${T}/H${H}/K64/V64`,
    variant,
    backend,
    impl,
    dtype,
    mode,
    shape: { B: 1, T, H, K: 64, V: 64 },
    params: { scale: 0.125, normalize: true, qk_l2norm: false, segment_len: 512, chunk_size: 64 },
    timing: "cold",
    status,
    message: s.message ?? (timed ? "" : `${status} at T=${T}`),
    samples_ms: samples,
    stats,
    memory: timed ? { peak_bytes: T * 4096, workspace_bytes: T * 64 } : null,
    throughput: stats
      ? {
        tokens_per_s: T / (stats.median_ms * 1e-3),
        tflops: flops / (stats.median_ms * 1e-3) / 1e12,
        gbps: bytes / (stats.median_ms * 1e-3) / 1e9,
      }
      : null,
    work: { flops, bytes },
    correctness: status === "error" || status === "oom" ? null : {
      reference: "fp64 oracle",
      rel_rms: status === "incorrect" || s.pass === false ? 0.5 : 1e-3,
      max_abs: 1e-2,
      worst: "o",
      threshold: 1e-2,
      pass: status !== "incorrect" && s.pass !== false,
    },
  };
}

export function drift(s: Partial<DriftEntry> = {}): DriftEntry {
  const T = s.T ?? 65536;
  const block = s.block ?? 4096;
  return {
    variant: "la",
    backend: "cuda",
    T,
    dtypes: "bf16/fp64",
    reference: "fp64 recurrent oracle",
    rel_rms: 3e-3 * Math.log2(T / 1024),
    max_abs: 0.02,
    per_position: Array.from({ length: T / block }, (_, i) => 1e-3 * Math.sqrt(i + 1)),
    block,
    final_state_rel: 2e-3,
    threshold: 0.05,
    pass: true,
    ...s,
  };
}

export function results(cells: Cell[], extra: Partial<Results> = {}, gpu = "NVIDIA H100"): Results {
  return {
    schema: SCHEMA,
    run: {
      id: "2026-01-01T00-00-00-000Z",
      started_at: "2026-01-01T00:00:00.000Z",
      finished_at: "2026-01-01T00:10:00.000Z",
      profile: "nightly",
      argv: ["--profile", "nightly"],
      seed: 7,
    },
    provenance: {
      git: { commit: "0123456789abcdef", dirty: false },
      deno: "2.9.6",
      v8: "14",
      typescript: "5.9",
      os: "linux 6.1",
      cpu: { arch: "x86_64", cores: 16, model: "test cpu" },
      devices: [
        { backend: "cuda", name: gpu, peaks: { copy_gbps: 3000, matmul_tflops: 700 } },
        { backend: "webgpu", name: "lavapipe" },
      ],
      unavailable: [],
    },
    cells,
    drift: [],
    ...extra,
  };
}

/** A run with everything a report must show: several T, baselines, every failure kind, drift. */
export function fullRun(): Results {
  const cells: Cell[] = [];
  for (const T of [4096, 16384, 65536]) {
    cells.push(cell({ T, impl: "chunk" }));
    cells.push(cell({ T, impl: "recurrent", samples: noisy(T + 1, 20, T / 200, 0.02) }));
    cells.push(
      cell({ T, variant: "gla", impl: "chunk", samples: noisy(T + 2, 20, T / 800, 0.02) }),
    );
    cells.push(
      cell({ T, variant: "softmax", impl: "flash", samples: noisy(T + 3, 20, T * T / 4e6, 0.02) }),
    );
    cells.push(
      T === 65536 ? cell({ T, variant: "softmax", impl: "quadratic", status: "oom" }) : cell({
        T,
        variant: "softmax",
        impl: "quadratic",
        samples: noisy(T + 4, 20, T * T / 1e6, 0.02),
      }),
    );
    cells.push(
      cell({ T, backend: "webgpu", dtype: "f32", samples: noisy(T + 5, 20, T / 300, 0.03) }),
    );
  }
  cells.push(cell({ T: 65536, variant: "deltanet", status: "error", message: "launch failed" }));
  cells.push(cell({ T: 65536, variant: "gla", impl: "chunk", dtype: "f32", status: "incorrect" }));
  cells.push(cell({ T: 4096, variant: "rmt", status: "skipped", message: "not implemented" }));
  return results(cells, {
    drift: [
      drift({ T: 16384 }),
      drift({ T: 65536 }),
      drift({ T: 262144, pass: false, rel_rms: 0.08 }),
      drift({ backend: "webgpu", dtypes: "f16/fp64", T: 65536, final_state_rel: null }),
    ],
  });
}

/** Nightly runs of two cells; from run `stepAt` on, the 16K cell is 25% slower. */
export function history(n: number, stepAt: number): Results[] {
  const meds = noisy(99, n, 1, 0.01);
  return meds.map((m, i) => {
    const slow = i >= stepAt ? 1.25 : 1;
    const r = results([
      cell({ T: 4096, samples: noisy(i * 2, 10, 4 * m, 0.01) }),
      cell({ T: 16384, samples: noisy(i * 2 + 1, 10, 16 * m * slow, 0.01) }),
      cell({ T: 65536, status: i === n - 1 ? "oom" : "ok" }),
    ]);
    const day = String(i + 1).padStart(2, "0");
    r.run = {
      ...r.run,
      id: `2026-01-${day}T03-00-00-000Z`,
      started_at: `2026-01-${day}T03:00:00.000Z`,
    };
    r.provenance.git.commit = `c0ffee${day}`.padEnd(40, "0");
    return r;
  });
}
