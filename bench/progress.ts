/**
 * Progress of a long run: on a terminal one live line (cells done of N, which cell, elapsed,
 * ETA) rewritten in place; otherwise one plain line per finished cell, for CI logs.
 */
import type { Cell } from "./results.ts";

const enc = new TextEncoder();

export function formatDuration(s: number): string {
  if (!Number.isFinite(s)) return "?";
  if (s < 60) return `${s.toFixed(0)}s`;
  const m = Math.floor(s / 60);
  return m < 60
    ? `${m}m${String(Math.round(s % 60)).padStart(2, "0")}s`
    : `${Math.floor(m / 60)}h${m % 60}m`;
}

export function describeCell(c: Cell): string {
  if (c.status !== "ok" || !c.stats) return `${c.status}${c.message ? `: ${c.message}` : ""}`;
  const s = c.stats;
  const half = ((s.ci95_ms[1] - s.ci95_ms[0]) / 2 / s.median_ms) * 100;
  return `${s.median_ms.toPrecision(4)} ms ±${half.toFixed(1)}% (n=${s.n}, ${s.stop_reason})`;
}

export class Progress {
  readonly #t0 = performance.now();
  readonly #tty = Deno.stderr.isTerminal();
  #finished = 0;
  readonly #running = new Map<string, string>();

  /** total: cells in the run; already: those a resumed run finished before (no ETA weight). */
  constructor(readonly total: number, readonly already = 0) {}

  #prefix(): string {
    const elapsed = (performance.now() - this.#t0) / 1000;
    const left = this.total - this.already - this.#finished;
    const eta = this.#finished > 0 ? (elapsed / this.#finished) * left : NaN;
    return `[${this.already + this.#finished}/${this.total} ${formatDuration(elapsed)} eta ${
      formatDuration(eta)
    }]`;
  }

  /** lane: where the cell runs ("gpu2") when a run has several lanes, else "". */
  start(id: string, lane = ""): void {
    this.#running.set(lane, id);
    this.#live();
  }

  /** A started cell handed back unfinished (its lane lost its worker). */
  drop(lane = ""): void {
    this.#running.delete(lane);
  }

  finish(cell: Cell, lane = ""): void {
    this.#running.delete(lane);
    this.#finished++;
    const line = `${this.#prefix()} ${lane ? `${lane} ` : ""}${cell.id}: ${describeCell(cell)}`;
    Deno.stderr.writeSync(enc.encode(this.#tty ? `\r\x1b[K${line}\n` : `${line}\n`));
    this.#live();
  }

  #live(): void {
    if (!this.#tty || this.#running.size === 0) return;
    const [lane, id] = [...this.#running][this.#running.size - 1];
    const more = this.#running.size > 1 ? ` (+${this.#running.size - 1} running)` : "";
    Deno.stderr.writeSync(
      enc.encode(`\r\x1b[K${this.#prefix()} ${lane ? `${lane} ` : ""}${id} ...${more}`),
    );
  }
}
