/**
 * report.html: one self-contained file per run. chart.js is inlined from its npm package and
 * the results are embedded as JSON, so the page opens from disk and requests nothing.
 */
import type { Cell, Results } from "../bench/results.ts";
import { formatTokens } from "../bench/matrix.ts";

export async function chartJsSource(): Promise<string> {
  const entry = import.meta.resolve("chart.js");
  const src = await Deno.readTextFile(new URL("./chart.umd.min.js", entry));
  // The source map it names is not shipped inside the report.
  return src.replace(/\n?\/\/# sourceMappingURL=\S+\s*$/, "");
}

function esc(s: unknown): string {
  return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function fmtBytes(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return "";
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  return `${(n / 1024).toFixed(0)} KiB`;
}

function cellRow(c: Cell): string {
  const s = c.stats;
  const ci = s ? `${s.ci95_ms[0].toPrecision(4)} – ${s.ci95_ms[1].toPrecision(4)}` : "";
  const status = `<span class="st ${esc(c.status)}">${esc(c.status)}</span>`;
  return `<tr><td>${esc(c.variant)}</td><td>${esc(c.backend)}</td><td>${esc(c.impl)}</td>` +
    `<td>${esc(c.dtype)}</td><td>${esc(c.mode)}</td><td class="n">${formatTokens(c.shape.T)}</td>` +
    `<td>${status}</td><td class="n">${
      s ? s.median_ms.toPrecision(4) : ""
    }</td><td class="n">${ci}</td>` +
    `<td class="n">${s ? s.n : ""}</td><td>${s ? esc(s.stop_reason) : ""}</td>` +
    `<td class="n">${c.throughput ? (c.throughput.tokens_per_s / 1e6).toPrecision(4) : ""}</td>` +
    `<td class="n">${c.throughput ? c.throughput.tflops.toPrecision(3) : ""}</td>` +
    `<td class="n">${c.throughput ? c.throughput.gbps.toPrecision(4) : ""}</td>` +
    `<td class="n">${fmtBytes(c.memory?.peak_bytes)}</td>` +
    `<td class="n">${c.correctness ? c.correctness.rel_rms.toExponential(2) : ""}</td>` +
    `<td>${esc(c.message)}</td></tr>`;
}

export async function renderReport(results: Results): Promise<string> {
  const chart = await chartJsSource();
  const data = JSON.stringify({
    cells: results.cells.map((c) => ({
      variant: c.variant,
      series: `${c.backend}/${c.impl} ${c.dtype} ${c.mode}`,
      T: c.shape.T,
      status: c.status,
      median: c.stats?.median_ms ?? null,
      lo: c.stats?.ci95_ms[0] ?? null,
      hi: c.stats?.ci95_ms[1] ?? null,
    })),
  }).replace(/</g, "\\u003c");
  const p = results.provenance;
  const devices = p.devices.map((d) => `<li><b>${esc(d.backend)}</b>: ${esc(d.name)}</li>`).join(
    "",
  );
  const unavailable = p.unavailable.map((u) => `<li>${esc(u.backend)}: ${esc(u.reason)}</li>`).join(
    "",
  );
  const counts = Object.entries(
    results.cells.reduce<Record<string, number>>(
      (a, c) => ((a[c.status] = (a[c.status] ?? 0) + 1), a),
      {},
    ),
  ).map(([k, v]) => `${v} ${k}`).join(", ");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">
<title>linattn-bench ${esc(results.run.id)}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}
table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ddd;padding:3px 6px;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.st{padding:1px 5px;border-radius:3px}.ok{background:#d7f5dd}.incorrect,.error{background:#f8d0d0}
.oom,.timeout{background:#fde8c4}.skipped{background:#eee}
.charts{display:flex;flex-wrap:wrap;gap:16px}.chart{width:560px;height:360px}
.note{color:#555;max-width:900px}
</style></head><body>
<h1>linattn-bench run ${esc(results.run.id)}</h1>
<p>Profile <b>${esc(results.run.profile)}</b>, ${results.cells.length} cells (${
    esc(counts)
  }), seed ${results.run.seed},
commit <code>${esc(p.git.commit.slice(0, 12))}</code>${p.git.dirty ? " (dirty)" : ""}.</p>
<p class="note">Each time is the median of device-timed samples (CUDA events, WebGPU timestamp queries;
the cpu backend uses the wall clock) of one op launch, ${
    results.cells[0]?.timing === "hot"
      ? "back to back"
      : "with the L2 cache flushed before each sample"
  }, after warm-up. Shaded bands are bootstrap 95% confidence intervals of the median. Every cell
was checked against the fp64 oracle before it was timed; cells that failed show as <i>incorrect</i>
and have no time.</p>
<h2>Latency against sequence length</h2>
<div class="charts" id="charts"></div>
<h2>All cells</h2>
<table><thead><tr><th>variant</th><th>backend</th><th>impl</th><th>dtype</th><th>mode</th><th>T</th>
<th>status</th><th>median ms</th><th>95% CI ms</th><th>n</th><th>stop</th><th>Mtok/s</th><th>TFLOP/s</th>
<th>GB/s</th><th>peak mem</th><th>rel err</th><th>message</th></tr></thead>
<tbody>${results.cells.map(cellRow).join("\n")}</tbody></table>
<h2>Provenance</h2>
<ul><li>Deno ${esc(p.deno)}, V8 ${esc(p.v8)}, TypeScript ${esc(p.typescript)}</li>
<li>${esc(p.os)}; CPU ${esc(p.cpu.model)} (${p.cpu.cores} threads, ${
    esc(p.cpu.arch)
  })</li>${devices}</ul>
${unavailable ? `<p>Backends not available on this machine:</p><ul>${unavailable}</ul>` : ""}
<details><summary>Device details</summary><pre>${
    esc(JSON.stringify(p.devices, null, 1))
  }</pre></details>
<script type="application/json" id="data">${data}</script>
<script>${chart}</script>
<script>
(function () {
  var data = JSON.parse(document.getElementById("data").textContent);
  var palette = ["#1f77b4","#d62728","#2ca02c","#ff7f0e","#9467bd","#8c564b","#e377c2","#17becf","#bcbd22","#7f7f7f"];
  var variants = Array.from(new Set(data.cells.map(function (c) { return c.variant; })));
  variants.forEach(function (variant) {
    var cells = data.cells.filter(function (c) { return c.variant === variant && c.median !== null; });
    if (!cells.length) return;
    var names = Array.from(new Set(cells.map(function (c) { return c.series; })));
    var datasets = [];
    names.forEach(function (name, i) {
      var color = palette[i % palette.length];
      var pts = cells.filter(function (c) { return c.series === name; }).sort(function (a, b) { return a.T - b.T; });
      datasets.push({ label: name, data: pts.map(function (c) { return { x: c.T, y: c.median }; }),
        borderColor: color, backgroundColor: color, showLine: true, pointRadius: 3 });
      datasets.push({ label: name + " CI lo", data: pts.map(function (c) { return { x: c.T, y: c.lo }; }),
        borderColor: "transparent", pointRadius: 0, showLine: true, fill: false, band: true });
      datasets.push({ label: name + " CI hi", data: pts.map(function (c) { return { x: c.T, y: c.hi }; }),
        borderColor: "transparent", backgroundColor: color + "33", pointRadius: 0, showLine: true, fill: "-1", band: true });
    });
    var box = document.createElement("div"); box.className = "chart";
    var canvas = document.createElement("canvas"); box.appendChild(canvas);
    document.getElementById("charts").appendChild(box);
    new Chart(canvas, { type: "scatter", data: { datasets: datasets }, options: {
      animation: false, maintainAspectRatio: false,
      plugins: { title: { display: true, text: variant + ": latency (ms) vs T" },
        legend: { labels: { filter: function (item, d) { return !d.datasets[item.datasetIndex].band; } } } },
      scales: { x: { type: "logarithmic", title: { display: true, text: "T (tokens)" } },
                y: { type: "logarithmic", title: { display: true, text: "ms" } } } } });
  });
})();
</script>
</body></html>
`;
}
