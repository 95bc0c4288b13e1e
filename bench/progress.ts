/**
 * Progress of a long run: on a terminal one live line (cell i of N, which cell, elapsed,
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

  constructor(readonly total: number) {}

  #prefix(i: number): string {
    const elapsed = (performance.now() - this.#t0) / 1000;
    const eta = i > 0 ? (elapsed / i) * (this.total - i) : NaN;
    return `[${i + 1}/${this.total} ${formatDuration(elapsed)} eta ${formatDuration(eta)}]`;
  }

  start(i: number, id: string): void {
    if (this.#tty) Deno.stderr.writeSync(enc.encode(`\r\x1b[K${this.#prefix(i)} ${id} ...`));
  }

  finish(i: number, cell: Cell): void {
    const line = `${this.#prefix(i)} ${cell.id}: ${describeCell(cell)}`;
    Deno.stderr.writeSync(enc.encode(this.#tty ? `\r\x1b[K${line}\n` : `${line}\n`));
  }
}
