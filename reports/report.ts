/**
 * report.html: one self-contained file per run. chart.js is inlined from its npm package and
 * the chart data embedded as JSON, so the page opens from disk and requests nothing.
 */
import type { Cell, Results } from "../bench/results.ts";
import { formatTokens } from "../bench/matrix.ts";
import { chartScripts, type ChartSpec, clean, CSP, type Dataset, STYLE } from "./charts.ts";
import {
  driftEntries,
  type DriftEntry,
  esc,
  fmtBytes,
  isFailure,
  opPeakBytes,
  peaksOf,
  seriesLabel,
  shapeLabel,
} from "./common.ts";

function groupBy<T>(xs: readonly T[], key: (x: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const x of xs) {
    const k = key(x);
    m.set(k, [...(m.get(k) ?? []), x]);
  }
  return m;
}

const ok = (c: Cell): c is Cell & { stats: NonNullable<Cell["stats"]> } =>
  c.status === "ok" && c.stats !== null;

/** A variant's series need the shape in their name only when the variant ran several shapes. */
function labeller(cells: Cell[]): (c: Cell) => string {
  const shapes = new Set(cells.map(shapeLabel));
  return shapes.size > 1 ? (c) => `${seriesLabel(c)} ${shapeLabel(c)}` : seriesLabel;
}

export function latencyCharts(r: Results): ChartSpec[] {
  return [...groupBy(r.cells.filter(ok), (c) => c.variant)].map(([variant, cells]) => {
    const label = labeller(cells);
    const datasets: Dataset[] = [...groupBy(cells, label)].map(([name, cs]) => {
      const sorted = cs.sort((a, b) => a.shape.T - b.shape.T);
      return {
        label: name,
        points: sorted.map((c) => [c.shape.T, c.stats.median_ms]),
        band: sorted.map((c) => [c.shape.T, c.stats.ci95_ms[0], c.stats.ci95_ms[1]]),
      };
    });
    return clean({
      target: "latency",
      title: `${variant}: latency vs T (median, 95% CI)`,
      x: { type: "log", title: "T (tokens)" },
      y: { type: "log", title: "ms" },
      datasets,
    });
  });
}

export interface Baseline {
  key: string;
  impl: string;
  label: string;
  /** Only the cell's own variant may serve (a recurrent scan is per variant). */
  sameVariant: boolean;
}

export const BASELINES: readonly Baseline[] = [
  { key: "naive", impl: "quadratic", label: "naive attention (quadratic)", sameVariant: false },
  { key: "flash", impl: "flash", label: "FlashAttention (flash)", sameVariant: false },
  { key: "recurrent", impl: "recurrent", label: "recurrent scan", sameVariant: true },
];

export interface Speedup {
  cell: Cell;
  baseline: Cell;
  /** baseline median / cell median: above 1 the cell is faster. */
  speedup: number;
  /** From the two medians' CIs, taken at their least favourable ends. */
  lo: number;
  hi: number;
}

/** Where a timing may be set beside another: everything but the variant and impl agrees. */
function pairingKey(c: Cell): string {
  const s = c.shape;
  return [c.backend, c.dtype, c.mode, c.timing, s.B, s.T, s.H, s.K, s.V].join("|");
}

/**
 * Speedups of every timed cell over one baseline. The naive and flash baselines are softmax
 * attention, but a variant's own impl of that name serves when no softmax one ran.
 */
export function speedups(r: Results, b: Baseline): { present: boolean; pairs: Speedup[] } {
  const timed = r.cells.filter(ok);
  const candidates = timed.filter((c) => c.impl === b.impl);
  const pairs: Speedup[] = [];
  for (const cell of timed) {
    if (cell.impl === b.impl) continue;
    const matches = candidates.filter((x) =>
      pairingKey(x) === pairingKey(cell) &&
      (x.variant === cell.variant || (!b.sameVariant && x.variant === "softmax"))
    );
    const base = matches.find((x) => x.variant === "softmax") ?? matches[0];
    if (!base) continue;
    pairs.push({
      cell,
      baseline: base,
      speedup: base.stats.median_ms / cell.stats.median_ms,
      lo: base.stats.ci95_ms[0] / cell.stats.ci95_ms[1],
      hi: base.stats.ci95_ms[1] / cell.stats.ci95_ms[0],
    });
  }
  return { present: r.cells.some((c) => c.impl === b.impl), pairs };
}

function speedupSection(r: Results): { html: string; charts: ChartSpec[] } {
  const charts: ChartSpec[] = [];
  const notes: string[] = [];
  for (const b of BASELINES) {
    const { present, pairs } = speedups(r, b);
    if (!pairs.length) {
      notes.push(
        present
          ? `<p class="absent">Cells of ${esc(b.label)} ran, but none was timed beside a cell ` +
            `of the same backend, dtype, mode and shape: no speedup over it is shown.</p>`
          : `<p class="absent">No ${esc(b.label)} baseline (impl <code>${esc(b.impl)}</code>) ` +
            `in this run: no speedup over it is shown.</p>`,
      );
      continue;
    }
    const label = (s: Speedup) => `${s.cell.variant} ${seriesLabel(s.cell)}`;
    const datasets: Dataset[] = [...groupBy(pairs, label)].map(([name, ps]) => {
      const sorted = ps.sort((a, b) => a.cell.shape.T - b.cell.shape.T);
      return {
        label: name,
        points: sorted.map((s) => [s.cell.shape.T, s.speedup]),
        band: sorted.map((s) => [s.cell.shape.T, s.lo, s.hi]),
      };
    });
    const xs = pairs.map((s) => s.cell.shape.T);
    datasets.push({
      label: "parity",
      points: [[Math.min(...xs), 1], [Math.max(...xs), 1]],
      color: "#999999",
      dashed: true,
      radius: 0,
    });
    charts.push(clean({
      target: "speedup",
      title: `speedup over ${b.label} (× faster)`,
      x: { type: "log", title: "T (tokens)" },
      y: { type: "log", title: "baseline ms / ms" },
      datasets,
    }));
  }
  return {
    html: `<p class="note">Each point is the baseline's median over the cell's median, for the ` +
      `same backend, dtype, mode and shape; bands combine the two medians' 95% CIs at their ` +
      `least favourable ends.</p>${notes.join("\n")}<div class="charts" id="speedup"></div>`,
    charts,
  };
}

export function memoryCharts(r: Results): ChartSpec[] {
  const withMem = r.cells.filter((c) => (opPeakBytes(c) ?? 0) > 0);
  return [...groupBy(withMem, (c) => c.variant)].map(([variant, cells]) => {
    const label = labeller(cells);
    return clean({
      target: "memory",
      title: `${variant}: peak device memory vs T`,
      x: { type: "log", title: "T (tokens)" },
      y: { type: "log", title: "GiB" },
      datasets: [...groupBy(cells, label)].map(([name, cs]) => ({
        label: name,
        points: cs.sort((a, b) => a.shape.T - b.shape.T).map((c) => [
          c.shape.T,
          opPeakBytes(c)! / 2 ** 30,
        ]),
      })),
    });
  });
}

function achievedTflops(c: Cell): number {
  if (c.throughput && c.throughput.tflops > 0) return c.throughput.tflops;
  return c.stats ? c.work.flops / (c.stats.median_ms * 1e-3) / 1e12 : NaN;
}

/** One roofline per backend, since each has its own device and peaks. */
export function rooflineCharts(r: Results): { charts: ChartSpec[]; notes: string[] } {
  const timed = r.cells.filter((c) => ok(c) && c.work.bytes > 0 && c.work.flops > 0);
  const charts: ChartSpec[] = [];
  const notes: string[] = [];
  for (const [backend, cells] of groupBy(timed, (c) => c.backend)) {
    const datasets: Dataset[] = [
      ...groupBy(cells, (c) => `${c.variant} ${c.impl} ${c.dtype} ${c.mode}`),
    ]
      .map(([name, cs]) => ({
        label: name,
        scatter: true,
        points: cs.map((c) => [c.work.flops / c.work.bytes, achievedTflops(c)]),
      }));
    const ai = cells.map((c) => c.work.flops / c.work.bytes);
    const [lo, hi] = [Math.min(...ai) / 4, Math.max(...ai) * 4];
    const peaks = peaksOf(r, backend);
    if (peaks) {
      const bw = peaks.copy_gbps, mm = peaks.matmul_tflops;
      const roof = (x: number) => Math.min(mm ?? Infinity, bw ? (x * bw) / 1000 : Infinity);
      const ridge = bw && mm ? (mm * 1000) / bw : undefined;
      const xs = [lo, ...(ridge && ridge > lo && ridge < hi ? [ridge] : []), hi];
      datasets.push({
        label: `roof (${bw ? `${bw} GB/s` : ""}${bw && mm ? ", " : ""}${
          mm ? `${mm} TFLOP/s` : ""
        })`,
        points: xs.map((x) => [x, roof(x)]),
        color: "#555555",
        dashed: true,
        radius: 0,
      });
    } else {
      notes.push(
        `<p class="absent">${esc(backend)}: no device peaks in provenance ` +
          `(devices[].peaks); its roofline is drawn without ceilings.</p>`,
      );
    }
    charts.push(clean({
      target: "roofline",
      title: `${backend}: roofline (achieved TFLOP/s vs FLOPs/byte)`,
      x: { type: "log", title: "arithmetic intensity (FLOPs / byte)" },
      y: { type: "log", title: "TFLOP/s" },
      datasets,
    }));
  }
  return { charts, notes };
}

function driftLabel(d: DriftEntry): string {
  return `${d.backend}${d.impl ? `/${d.impl}` : ""} ${d.dtypes}`;
}

export function driftCharts(entries: DriftEntry[]): ChartSpec[] {
  const charts: ChartSpec[] = [];
  for (const [variant, es] of groupBy(entries, (d) => d.variant)) {
    const along = es.filter((d) => Array.isArray(d.per_position) && d.per_position.length);
    if (along.length) {
      const thresholds = [...new Set(along.map((d) => d.threshold))];
      const maxX = Math.max(...along.map((d) => d.per_position.length * d.block));
      charts.push(clean({
        target: "drift",
        title: `${variant}: error along the sequence`,
        x: { type: "log", title: "position (end of block)" },
        y: { type: "log", title: "relative error of the block" },
        datasets: [
          ...along.map((d): Dataset => ({
            label: `${driftLabel(d)} T=${formatTokens(d.T)}`,
            points: d.per_position.map((e, i) => [(i + 1) * d.block, e]),
            radius: 0,
          })),
          ...thresholds.map((t): Dataset => ({
            label: `threshold ${t}`,
            points: [[along[0].block, t], [maxX, t]],
            color: "#d62728",
            dashed: true,
            radius: 0,
          })),
        ],
      }));
    }
    const datasets: Dataset[] = [...groupBy(es, driftLabel)].map(([name, ds]) => ({
      label: `${name} rel_rms`,
      points: ds.sort((a, b) => a.T - b.T).map((d) => [d.T, d.rel_rms]),
    }));
    for (const [name, ds] of groupBy(es.filter((d) => d.final_state_rel !== null), driftLabel)) {
      datasets.push({
        label: `${name} final state`,
        dashed: true,
        points: ds.sort((a, b) => a.T - b.T).map((d) => [d.T, d.final_state_rel!]),
      });
    }
    charts.push(clean({
      target: "drift",
      title: `${variant}: error vs T`,
      x: { type: "log", title: "T (tokens)" },
      y: { type: "log", title: "relative error" },
      datasets,
    }));
  }
  return charts;
}

function num(x: number | null | undefined, digits = 2): string {
  return x === null || x === undefined || !Number.isFinite(x) ? "" : x.toExponential(digits);
}

function driftTable(entries: DriftEntry[]): string {
  const rows = entries.map((d) =>
    `<tr><td>${esc(d.variant)}</td><td>${esc(d.backend)}${d.impl ? `/${esc(d.impl)}` : ""}</td>` +
    `<td>${esc(d.dtypes)}</td><td class="n">${formatTokens(d.T)}</td>` +
    `<td class="n">${num(d.rel_rms)}</td><td class="n">${num(d.max_abs)}</td>` +
    `<td class="n">${num(d.final_state_rel)}</td><td class="n">${num(d.threshold)}</td>` +
    `<td><span class="st ${d.pass ? "pass" : "fail"}">${d.pass ? "pass" : "FAIL"}</span></td>` +
    `<td>${esc(d.reference ?? "")}</td></tr>`
  );
  return `<table><thead><tr><th>variant</th><th>backend</th><th>dtypes</th><th>T</th>` +
    `<th>rel_rms</th><th>max_abs</th><th>final state rel</th><th>threshold</th><th>pass</th>` +
    `<th>reference</th></tr></thead><tbody>${rows.join("\n")}</tbody></table>`;
}

/** gpu: a --gpus run, whose cells each name the card they ran on (a column then). */
function cellRow(c: Cell, gpu: boolean): string {
  const s = c.stats;
  const ci = s ? `${s.ci95_ms[0].toPrecision(4)} – ${s.ci95_ms[1].toPrecision(4)}` : "";
  const status = `<span class="st ${esc(c.status)}">${esc(c.status)}</span>`;
  const t = c.throughput;
  return `<tr><td>${esc(c.variant)}</td><td>${esc(c.backend)}</td><td>${esc(c.impl)}</td>` +
    `<td>${esc(c.dtype)}</td><td>${esc(c.mode)}</td><td>${esc(shapeLabel(c))}</td>` +
    `<td class="n">${formatTokens(c.shape.T)}</td>` +
    (gpu ? `<td class="n">${c.gpu ? c.gpu.index : ""}</td>` : "") + `<td>${status}</td>` +
    `<td class="n">${s ? s.median_ms.toPrecision(4) : ""}</td><td class="n">${ci}</td>` +
    `<td class="n">${s ? s.n : ""}</td><td>${
      s ? esc(s.stop_reason + (s.steady === false ? ", unsteady" : "")) : ""
    }</td>` +
    `<td class="n">${t ? (t.tokens_per_s / 1e6).toPrecision(4) : ""}</td>` +
    `<td class="n">${t ? t.tflops.toPrecision(3) : ""}</td>` +
    `<td class="n">${t ? t.gbps.toPrecision(4) : ""}</td>` +
    `<td class="n">${fmtBytes(opPeakBytes(c))}</td>` +
    `<td class="n">${c.correctness ? num(c.correctness.rel_rms) : ""}</td>` +
    `<td>${esc(c.message)}</td></tr>`;
}

function untimedNote(r: Results): string {
  const failed = r.cells.filter((c) => isFailure(c.status));
  if (!failed.length) return "";
  const counts = [...groupBy(failed, (c) => c.status)].map(([s, cs]) => `${cs.length} ${s}`);
  return `<p class="absent">Not plotted, having no time: ${esc(counts.join(", "))} ` +
    `(see the table below).</p>`;
}

/** The banner of a report rendered from an unfinished run folder (deno task report). */
function unfinishedNote(results: Results): string {
  const u = results.run.unfinished;
  if (!u) return "";
  return `<p class="warn"><b>Unfinished run:</b> ${
    u.cells_planned
      ? `${u.cells_done} of ${u.cells_planned} planned cells`
      : `${u.cells_done} cells (the plan's size was not recorded)`
  } finished; the rest are missing below, not failed. Continue it with
<code>deno task bench --resume ${esc(u.dir)}</code> (at commit <code>${
    esc(results.provenance.git.commit.slice(0, 12))
  }</code>).</p>
`;
}

/** A resumed run's earlier machines: each cell's finished_at places it in one stretch. */
function earlierStretches(p: Results["provenance"]): string {
  if (!p.earlier?.length) return "";
  const items = p.earlier.map((s) =>
    `<li>from ${esc(s.since)}: ${
      esc([...new Set(s.devices.map((d) => `${d.backend}: ${d.name}`))].join(", ") || "no devices")
    }; ${esc(s.os)}</li>`
  ).join("");
  return `<p>Resumed run: the devices above finished it; earlier stretches ran on (a cell's
<code>finished_at</code> says which stretch timed it):</p><ul>${items}</ul>
`;
}

export async function renderReport(results: Results): Promise<string> {
  const p = results.provenance;
  const drift = driftEntries(results);
  const speedup = speedupSection(results);
  const roofline = rooflineCharts(results);
  const specs = [
    ...latencyCharts(results),
    ...speedup.charts,
    ...memoryCharts(results),
    ...roofline.charts,
    ...driftCharts(drift),
  ];
  const devices = p.devices.map((d) => `<li><b>${esc(d.backend)}</b>: ${esc(d.name)}</li>`)
    .join("");
  const unavailable = p.unavailable.map((u) => `<li>${esc(u.backend)}: ${esc(u.reason)}</li>`)
    .join("");
  const counts = [...groupBy(results.cells, (c) => c.status)].map(([s, cs]) => `${cs.length} ${s}`)
    .join(", ");
  const driftFailed = drift.filter((d) => !d.pass).length;
  const gpuColumn = results.cells.some((c) => c.gpu);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
${CSP}
<title>linattn-bench ${esc(results.run.id)}</title>
${STYLE}</head><body>
<h1>linattn-bench run ${esc(results.run.id)}</h1>
${unfinishedNote(results)}<p>Profile <b>${
    esc(results.run.profile)
  }</b>, ${results.cells.length} cells (${esc(counts)}),
seed ${esc(results.run.seed)}, commit <code>${esc(p.git.commit.slice(0, 12))}</code>${
    p.git.dirty ? " (dirty)" : ""
  }${drift.length ? `, ${drift.length} drift checks (${driftFailed} failed)` : ""}.</p>
<p class="note">Each time is the median of device-timed samples (CUDA events, WebGPU timestamp
queries; the cpu backend uses the wall clock) of one op launch, ${
    results.cells[0]?.timing === "hot"
      ? "back to back"
      : "with the L2 cache flushed before each sample"
  }, after warm-up. Shaded bands are bootstrap 95% confidence intervals of the median. Every cell
was checked against the fp64 oracle before it was timed; cells that failed show as <i>incorrect</i>
and have no time.</p>
<h2>Latency against sequence length</h2>
${untimedNote(results)}
<div class="charts" id="latency"></div>
<h2>Speedup over the baselines</h2>
${speedup.html}
<h2>Peak memory against sequence length</h2>
<p class="note">Device memory of one op: its inputs, outputs and workspace at their peak
(<code>memory.op_peak_bytes</code>; the cell's own peak also counts the rotated input sets).</p>
<div class="charts" id="memory"></div>
<h2>Roofline</h2>
<p class="note">Achieved TFLOP/s (the op's declared FLOPs over the median time) against
arithmetic intensity (declared FLOPs over declared bytes).</p>
${roofline.notes.join("\n")}
<div class="charts" id="roofline"></div>
<h2>Numerical drift along the sequence</h2>
${
    drift.length
      ? `<div class="charts" id="drift"></div>${driftTable(drift)}`
      : `<p class="absent">No drift entries in this run (<code>deno task drift</code> adds them).</p>`
  }
<h2>All cells</h2>
<table><thead><tr><th>variant</th><th>backend</th><th>impl</th><th>dtype</th><th>mode</th>
<th>shape</th><th>T</th>${
    gpuColumn ? "<th>GPU</th>" : ""
  }<th>status</th><th>median ms</th><th>95% CI ms</th><th>n</th><th>stop</th>
<th>Mtok/s</th><th>TFLOP/s</th><th>GB/s</th><th>peak mem</th><th>rel err</th><th>message</th></tr></thead>
<tbody>${results.cells.map((c) => cellRow(c, gpuColumn)).join("\n")}</tbody></table>
<h2>Provenance</h2>
<ul><li>Run ${esc(results.run.started_at)} – ${esc(results.run.finished_at)}, argv
<code>${esc(results.run.argv.join(" "))}</code></li>
<li>Deno ${esc(p.deno)}, V8 ${esc(p.v8)}, TypeScript ${esc(p.typescript)}</li>
<li>${esc(p.os)}; CPU ${esc(p.cpu.model)} (${esc(p.cpu.cores)} threads, ${esc(p.cpu.arch)})</li>
${devices}</ul>
${earlierStretches(p)}${
    unavailable ? `<p>Backends not available on this machine:</p><ul>${unavailable}</ul>` : ""
  }
<details><summary>Device details</summary><pre>${
    esc(JSON.stringify(p.devices, null, 1))
  }</pre></details>
${await chartScripts(specs)}
</body></html>
`;
}
