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
  return `${s.median_ms.toPrecision(4)} ms ±${half.toFixed(1)}% (n=${s.n}, ${s.stop_reason}${
    s.steady === false ? ", unsteady" : ""
  })`;
}

/** What a cell's wall time is guessed from: cells of one backend at one T cost alike (the same
 * gate, warm-up and time cap), whichever op they time, while T moves them by orders of magnitude. */
export interface EtaKey {
  backend: string;
  T: number;
}

type Tally = [cells: number, seconds: number];

/**
 * Seconds a run has left: each unfinished cell costs the mean wall time of the finished cells of
 * its backend and T, else of its T, else of all finished cells; lanes run side by side. A mean
 * over the whole run would let a few seconds-long 1M cells, or a run of 16K ones, swing the
 * estimate by hours.
 */
export class EtaEstimator {
  readonly #left = new Map<string, { T: number; cells: number }>();
  readonly #byKey = new Map<string, Tally>();
  readonly #byT = new Map<number, Tally>();
  readonly #all: Tally = [0, 0];

  constructor(pending: readonly EtaKey[], readonly lanes = 1) {
    for (const c of pending) {
      const k = keyOf(c);
      const e = this.#left.get(k) ?? { T: c.T, cells: 0 };
      e.cells++;
      this.#left.set(k, e);
    }
  }

  finished(c: EtaKey, seconds: number): void {
    const e = this.#left.get(keyOf(c));
    if (e && e.cells > 0) e.cells--;
    add(this.#byKey, keyOf(c), seconds);
    add(this.#byT, c.T, seconds);
    this.#all[0]++;
    this.#all[1] += seconds;
  }

  /** NaN until a cell has finished. */
  seconds(): number {
    if (this.#all[0] === 0) return NaN;
    let sum = 0;
    for (const [k, { T, cells }] of this.#left) {
      sum += cells * (mean(this.#byKey.get(k)) ?? mean(this.#byT.get(T)) ?? mean(this.#all)!);
    }
    return sum / Math.max(1, this.lanes);
  }
}

function keyOf(c: EtaKey): string {
  return `${c.backend}/${c.T}`;
}

function add<K>(m: Map<K, Tally>, k: K, seconds: number): void {
  const t = m.get(k) ?? [0, 0];
  t[0]++;
  t[1] += seconds;
  m.set(k, t);
}

function mean(t: Tally | undefined): number | undefined {
  return t && t[0] > 0 ? t[1] / t[0] : undefined;
}

export class Progress {
  readonly #t0 = performance.now();
  readonly #tty = Deno.stderr.isTerminal();
  #finished = 0;
  readonly #running = new Map<string, string>();
  readonly #startedAt = new Map<string, number>();
  readonly #eta: EtaEstimator;

  /**
   * total: cells in the run; already: those a resumed run finished before; pending: the cells
   * still to run, in any order, for the ETA; lanes: how many run at once.
   */
  constructor(
    readonly total: number,
    readonly already = 0,
    pending: readonly EtaKey[] = [],
    lanes = 1,
  ) {
    this.#eta = new EtaEstimator(pending, lanes);
  }

  #prefix(): string {
    const elapsed = (performance.now() - this.#t0) / 1000;
    return `[${this.already + this.#finished}/${this.total} ${formatDuration(elapsed)} eta ${
      formatDuration(this.#eta.seconds())
    }]`;
  }

  /** lane: where the cell runs ("gpu2") when a run has several lanes, else "". */
  start(id: string, lane = ""): void {
    this.#running.set(lane, id);
    this.#startedAt.set(lane, performance.now());
    this.#live();
  }

  /** A started cell handed back unfinished (its lane lost its worker). */
  drop(lane = ""): void {
    this.#running.delete(lane);
    this.#startedAt.delete(lane);
  }

  finish(cell: Cell, lane = ""): void {
    const t = this.#startedAt.get(lane);
    if (t !== undefined) this.#eta.finished(etaKey(cell), (performance.now() - t) / 1000);
    this.#running.delete(lane);
    this.#startedAt.delete(lane);
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

function etaKey(c: Cell): EtaKey {
  return { backend: c.backend, T: c.shape.T };
}
