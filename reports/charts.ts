/**
 * Charts are computed in TypeScript (so tests can check what is plotted without a browser) and
 * embedded as JSON specs; a small inline script turns each spec into a Chart.js chart.
 */
import { chartJsSource, scriptJson } from "./common.ts";

export type Axis = "log" | "linear" | "category";

export interface Dataset {
  label: string;
  points: [number | string, number][];
  /** Confidence band: [x, lo, hi] per point. */
  band?: [number | string, number, number][];
  color?: string;
  dashed?: boolean;
  /** Points only, no line: change points, roofline measurements. */
  scatter?: boolean;
  pointStyle?: "circle" | "triangle" | "crossRot" | "rectRot";
  radius?: number;
}

export interface ChartSpec {
  /** id of the element the chart is appended to. */
  target: string;
  title: string;
  x: { type: Axis; title: string; labels?: string[] };
  y: { type: Axis; title: string };
  datasets: Dataset[];
}

/** Drops points a log axis cannot show, and datasets left empty. */
export function clean(spec: ChartSpec): ChartSpec {
  const keep = (x: number | string, y: number) =>
    Number.isFinite(y) && (spec.y.type !== "log" || y > 0) &&
    (spec.x.type !== "log" || (typeof x === "number" && x > 0));
  const datasets = spec.datasets
    .map((d) => ({
      ...d,
      points: d.points.filter(([x, y]) => keep(x, y)),
      band: d.band?.filter(([x, lo, hi]) => keep(x, lo) && keep(x, hi)),
    }))
    .filter((d) => d.points.length > 0);
  return { ...spec, datasets };
}

const CLIENT = `
(function () {
  var specs = JSON.parse(document.getElementById("data").textContent);
  var palette = ["#1f77b4","#d62728","#2ca02c","#ff7f0e","#9467bd","#8c564b","#e377c2",
    "#17becf","#bcbd22","#7f7f7f","#393b79","#637939","#8c6d31","#843c39","#7b4173"];
  var axisType = { log: "logarithmic", linear: "linear", category: "category" };
  function xy(p) { return { x: p[0], y: p[1] }; }
  // Log axes label only 1, 2 and 5 times a power of ten (Chart.js labels every minor tick).
  function logTicks(suffixes) {
    return { autoSkip: true, maxRotation: 0, callback: function (v) {
      var m = v / Math.pow(10, Math.floor(Math.log10(v) + 1e-9));
      if (Math.abs(m - 1) > 1e-6 && Math.abs(m - 2) > 1e-6 && Math.abs(m - 5) > 1e-6) return "";
      if (suffixes && v >= 1e6) return v / 1e6 + "M";
      if (suffixes && v >= 1e3) return v / 1e3 + "K";
      return String(+v.toPrecision(3));
    } };
  }
  function axis(a, tokens) {
    var o = { type: axisType[a.type], title: { display: true, text: a.title } };
    if (a.type === "log") o.ticks = logTicks(tokens);
    return o;
  }
  specs.forEach(function (spec, n) {
    var host = document.getElementById(spec.target);
    if (!host) return;
    var box = document.createElement("div");
    box.className = "chart";
    var canvas = document.createElement("canvas");
    canvas.id = "chart-" + n;
    box.appendChild(canvas);
    host.appendChild(box);
    var datasets = [];
    spec.datasets.forEach(function (d, i) {
      var color = d.color || palette[i % palette.length];
      datasets.push({ label: d.label, data: d.points.map(xy), borderColor: color,
        backgroundColor: color, showLine: !d.scatter, spanGaps: true,
        borderDash: d.dashed ? [6, 4] : [], pointStyle: d.pointStyle || "circle",
        pointRadius: d.radius === undefined ? 3 : d.radius });
      if (d.band && d.band.length) {
        datasets.push({ label: d.label + " (CI)", band: true, data: d.band.map(function (b) {
          return { x: b[0], y: b[1] }; }), borderColor: "transparent", pointRadius: 0, fill: false });
        datasets.push({ label: d.label + " (CI)", band: true, data: d.band.map(function (b) {
          return { x: b[0], y: b[2] }; }), borderColor: "transparent", backgroundColor: color + "33",
          pointRadius: 0, fill: "-1" });
      }
    });
    new Chart(canvas, { type: "line", data: { labels: spec.x.labels, datasets: datasets },
      options: { animation: false, maintainAspectRatio: false,
        plugins: { title: { display: true, text: spec.title },
          legend: { labels: { filter: function (item, data) {
            return !data.datasets[item.datasetIndex].band; } } },
          tooltip: { filter: function (item) { return !item.dataset.band; } } },
        scales: { x: axis(spec.x, true), y: axis(spec.y, false) } } });
  });
})();
`;

/** The script elements that draw `specs`: data, Chart.js itself, then the client. */
export async function chartScripts(specs: ChartSpec[]): Promise<string> {
  return `<script type="application/json" id="data">${scriptJson(specs)}</script>\n` +
    `<script>${await chartJsSource()}</script>\n<script>${CLIENT}</script>`;
}

/** Blocks every request, so a page that works from disk provably needs nothing else. */
export const CSP = `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; ` +
  `script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">`;

export const STYLE = `<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}h3{font-size:14px}
table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ddd;padding:3px 6px;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.st{padding:1px 5px;border-radius:3px}.ok,.pass{background:#d7f5dd}
.incorrect,.error,.fail{background:#f8d0d0}.oom,.timeout{background:#fde8c4}.skipped{background:#eee}
.charts{display:flex;flex-wrap:wrap;gap:16px}.chart{width:560px;height:360px}
.note{color:#555;max-width:900px}.absent{color:#8a4b00}
.warn{background:#fff4e0;border-left:4px solid #c77700;padding:6px 10px;max-width:900px}
</style>`;
