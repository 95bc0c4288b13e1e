/**
 * Skips a cell that cannot finish in time, judged before it runs: from the same series (backend,
 * variant, impl, dtype, mode) at the largest smaller T that ran, its median run time scaled by the
 * ratio of declared FLOPs (at least the ratio of T). A cell needs about three full runs (the
 * correctness gate, one warm-up, one sample), so a flash forward of minutes per run at 1M is
 * recorded as skipped with the prediction instead of holding the run until --cell-timeout.
 */
import type { PlannedCell } from "./matrix.ts";
import type { Cell } from "./results.ts";
import { formatTokens } from "./matrix.ts";

/** Full runs a timed cell needs at the least: the gate, one warm-up run, one sample. */
export const RUNS_PER_CELL = 3;

/** A series: the cells that differ only in T. */
export function seriesKey(
  c: Record<"backend" | "variant" | "impl" | "dtype" | "mode", string>,
): string {
  return `${c.backend}/${c.variant}/${c.impl}/${c.dtype}/${c.mode}`;
}

export class RunTimePredictor {
  readonly #timed = new Map<string, Cell[]>();

  /** Remembers a finished cell; only timed ones (ok, with a median) predict. */
  record(cell: Cell): void {
    if (cell.status !== "ok" || !cell.stats) return;
    const list = this.#timed.get(seriesKey(cell)) ?? [];
    list.push(cell);
    this.#timed.set(seriesKey(cell), list);
  }

  /** The predicted ms of one run, and from what; undefined without a smaller timed T. */
  predict(planned: PlannedCell, flops: number): { ms: number; basis: string } | undefined {
    const below = (this.#timed.get(seriesKey(planned)) ?? []).filter((c) => c.shape.T < planned.T);
    if (below.length === 0) return undefined;
    const from = below.reduce((a, b) => (b.shape.T > a.shape.T ? b : a));
    const ratio = Math.max(flops / from.work.flops, planned.T / from.shape.T);
    const ms = from.stats!.median_ms * ratio;
    return {
      ms,
      basis: `T=${formatTokens(from.shape.T)} ran in ${fmtMs(from.stats!.median_ms)} × ${
        ratio.toPrecision(3)
      } (declared FLOPs)`,
    };
  }

  /** Why a cell should be skipped under this timeout, or "" when it may run. */
  skipReason(planned: PlannedCell, flops: number, timeoutS: number): string {
    const p = this.predict(planned, flops);
    if (!p || RUNS_PER_CELL * p.ms <= timeoutS * 1000) return "";
    return `predicted ${fmtMs(p.ms)} a run (${p.basis}); ${RUNS_PER_CELL} runs exceed ` +
      `--cell-timeout ${timeoutS} s`;
  }
}

function fmtMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toPrecision(3)} s` : `${ms.toPrecision(3)} ms`;
}
