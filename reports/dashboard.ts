/**
 * deno task dashboard --history DIR --out SITE: a static site over every results.json under
 * DIR. One trend chart per series (everything but T, plus the GPU), one line per T, with the
 * change points of each line's medians marked; the latest run's matrix; links to each run's
 * own report. Self-contained like report.html, so it works from disk and from gh-pages.
 */
import type { Cell, Results } from "../bench/results.ts";
import { formatTokens } from "../bench/matrix.ts";
import { parseFlags, runCli } from "../bench/cli/cli.ts";
import { InputError } from "../bench/ops.ts";
import { chartScripts, type ChartSpec, clean, CSP, type Dataset, STYLE } from "./charts.ts";
import {
  deviceName,
  esc,
  findResultsFiles,
  fmtMs,
  isFailure,
  loadResults,
  shapeLabel,
} from "./common.ts";
import { changePoints } from "./stats.ts";

export interface Run {
  results: Results;
  /** The run's report.html, when one sits beside its results.json. */
  reportPath?: string;
}

export interface ChangePoint {
  group: string;
  T: number;
  /** Index into the runs, where the new level starts. */
  run: number;
  before: number;
  after: number;
}

export interface Line {
  T: number;
  /** Median ms per run index, null where the run lacks the cell or has no time for it. */
  values: (number | null)[];
  changes: number[];
}

export interface Dashboard {
  runs: Run[];
  /** Series name (everything but T, plus the GPU) → one line per T. */
  groups: Map<string, Line[]>;
  changes: ChangePoint[];
}

export function groupName(r: Results, c: Cell): string {
  return `${c.variant} ${c.backend}/${c.impl} ${c.dtype} ${c.mode} ${shapeLabel(c)} ${c.timing}` +
    ` on ${deviceName(r, c.backend)}`;
}

export function safeId(id: string): string {
  return id.replace(/[^A-Za-z0-9._-]/g, "_");
}

export function buildDashboard(input: Run[]): Dashboard {
  const seen = new Set<string>();
  const runs = [...input]
    .sort((a, b) => a.results.run.started_at.localeCompare(b.results.run.started_at))
    .filter((r) => !seen.has(r.results.run.id) && seen.add(r.results.run.id));
  const lines = new Map<string, Map<number, (number | null)[]>>();
  runs.forEach((run, i) => {
    for (const c of run.results.cells) {
      const g = groupName(run.results, c);
      const byT = lines.get(g) ?? new Map<number, (number | null)[]>();
      lines.set(g, byT);
      const values = byT.get(c.shape.T) ?? new Array<number | null>(runs.length).fill(null);
      byT.set(c.shape.T, values);
      values[i] = c.status === "ok" && c.stats ? c.stats.median_ms : null;
    }
  });
  const groups = new Map<string, Line[]>();
  const changes: ChangePoint[] = [];
  for (const [g, byT] of [...lines].sort(([a], [b]) => a.localeCompare(b))) {
    const out: Line[] = [];
    for (const [T, values] of [...byT].sort(([a], [b]) => a - b)) {
      const present = values.flatMap((v, i) => (v === null ? [] : [{ v, i }]));
      const found = changePoints(present.map((p) => p.v));
      const at = found.map((k) => present[k].i);
      out.push({ T, values, changes: at });
      found.forEach((k, j) => {
        const prevStart = j === 0 ? 0 : found[j - 1];
        const nextEnd = j + 1 < found.length ? found[j + 1] : present.length;
        changes.push({
          group: g,
          T,
          run: present[k].i,
          before: medianOf(present.slice(prevStart, k).map((p) => p.v)),
          after: medianOf(present.slice(k, nextEnd).map((p) => p.v)),
        });
      });
    }
    groups.set(g, out);
  }
  return { runs, groups, changes };
}

function medianOf(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** Numbered, since two runs of one commit in one minute would share a category otherwise. */
function runLabel(r: Results, i: number): string {
  return `#${i + 1} ${r.run.started_at.slice(0, 16).replace("T", " ")} ` +
    r.provenance.git.commit.slice(0, 7);
}

export function trendCharts(d: Dashboard): ChartSpec[] {
  const labels = d.runs.map((r, i) => runLabel(r.results, i));
  return [...d.groups].map(([g, lines]) => {
    const datasets: Dataset[] = lines.map((l) => ({
      label: `T=${formatTokens(l.T)}`,
      points: l.values.flatMap((v, i): [string, number][] => (v === null ? [] : [[labels[i], v]])),
    }));
    const marks = lines.flatMap((l) =>
      l.changes.map((i): [string, number] => [labels[i], l.values[i]!])
    );
    if (marks.length) {
      datasets.push({
        label: "change point",
        points: marks,
        scatter: true,
        pointStyle: "triangle",
        radius: 9,
        color: "#000000",
      });
    }
    return clean({
      target: "trends",
      title: g,
      x: { type: "category", title: "run", labels },
      y: { type: "log", title: "median ms" },
      datasets,
    });
  });
}

function latestTable(d: Dashboard): string {
  const last = d.runs.at(-1)!.results;
  const prev = d.runs.at(-2)?.results;
  const prevCells = new Map(prev?.cells.map((c) => [c.id, c]) ?? []);
  const rows = last.cells.map((c) => {
    const p = prevCells.get(c.id);
    const ratio = c.stats && p?.stats ? c.stats.median_ms / p.stats.median_ms : undefined;
    return `<tr><td>${esc(c.variant)}</td><td>${esc(c.backend)}/${esc(c.impl)}</td>` +
      `<td>${esc(c.dtype)}</td><td>${esc(c.mode)}</td><td>${esc(shapeLabel(c))}</td>` +
      `<td class="n">${formatTokens(c.shape.T)}</td>` +
      `<td><span class="st ${esc(c.status)}">${esc(c.status)}</span></td>` +
      `<td class="n">${fmtMs(c.stats?.median_ms)}</td><td class="n">${
        fmtMs(p?.stats?.median_ms)
      }</td>` +
      `<td class="n">${ratio ? ratio.toFixed(3) : ""}</td><td>${esc(c.message)}</td></tr>`;
  });
  return `<table><thead><tr><th>variant</th><th>impl</th><th>dtype</th><th>mode</th><th>shape</th>` +
    `<th>T</th><th>status</th><th>median ms</th><th>previous ms</th><th>ratio</th><th>message</th>` +
    `</tr></thead><tbody>${rows.join("\n")}</tbody></table>`;
}

function changeTable(d: Dashboard): string {
  if (!d.changes.length) return `<p>No change points in this history.</p>`;
  const rows = [...d.changes].sort((a, b) => b.run - a.run).map((c) => {
    const r = d.runs[c.run].results;
    return `<tr><td>${esc(c.group)}</td><td class="n">${formatTokens(c.T)}</td>` +
      `<td>${esc(r.run.id)}</td><td><code>${
        esc(r.provenance.git.commit.slice(0, 12))
      }</code></td>` +
      `<td class="n">${fmtMs(c.before)}</td><td class="n">${fmtMs(c.after)}</td>` +
      `<td class="n ${c.after > c.before ? "fail" : "pass"}">${
        (c.after / c.before).toFixed(3)
      }</td></tr>`;
  });
  return `<table><thead><tr><th>series</th><th>T</th><th>first run of the new level</th>` +
    `<th>commit</th><th>before ms</th><th>after ms</th><th>after/before</th></tr></thead>` +
    `<tbody>${rows.join("\n")}</tbody></table>`;
}

function runsTable(d: Dashboard): string {
  const rows = [...d.runs].reverse().map((run) => {
    const r = run.results;
    const bad = r.cells.filter((c) => isFailure(c.status)).length;
    const gpus = [...new Set(r.provenance.devices.map((x) => x.name))].join(", ");
    const link = run.reportPath
      ? `<a href="runs/${esc(safeId(r.run.id))}.html">${esc(r.run.id)}</a>`
      : esc(r.run.id);
    return `<tr><td>${link}</td><td>${esc(r.run.profile)}</td>` +
      `<td><code>${esc(r.provenance.git.commit.slice(0, 12))}</code>${
        r.provenance.git.dirty ? " (dirty)" : ""
      }</td>` +
      `<td>${esc(gpus)}</td><td class="n">${r.cells.length}</td><td class="n">${bad}</td></tr>`;
  });
  return `<table><thead><tr><th>run</th><th>profile</th><th>commit</th><th>devices</th>` +
    `<th>cells</th><th>not ok</th></tr></thead><tbody>${rows.join("\n")}</tbody></table>`;
}

export async function renderDashboard(d: Dashboard): Promise<string> {
  const last = d.runs.at(-1)!.results;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
${CSP}
<title>linattn-bench dashboard</title>
${STYLE}</head><body>
<h1>linattn-bench: ${d.runs.length} runs</h1>
<p class="note">Each line is one cell's median over the runs. Black triangles mark change points:
the first run of a new level, found by binary segmentation of the log-medians (a level must
differ by at least 5% and by four standard errors, with noise estimated from run-to-run
differences, and last at least two runs). Method: docs/reports.md.</p>
<h2>Change points</h2>
${changeTable(d)}
<h2>Trends</h2>
<div class="charts" id="trends"></div>
<h2>Latest run: ${esc(last.run.id)}</h2>
${latestTable(d)}
<h2>Runs</h2>
${runsTable(d)}
${await chartScripts(trendCharts(d))}
</body></html>
`;
}

export async function loadHistory(dir: string): Promise<{ runs: Run[]; skipped: string[] }> {
  let files: string[];
  try {
    files = await findResultsFiles(dir);
  } catch (e) {
    throw new InputError(`cannot read --history '${dir}': ${(e as Error).message}`);
  }
  const runs: Run[] = [];
  const skipped: string[] = [];
  for (const f of files) {
    try {
      const results = await loadResults(f);
      const report = f.replace(/results\.json$/, "report.html");
      const hasReport = await Deno.stat(report).then((s) => s.isFile, () => false);
      runs.push({ results, reportPath: hasReport ? report : undefined });
    } catch (e) {
      // One corrupt run must not take the whole history's dashboard down.
      skipped.push(`${f}: ${(e as Error).message}`);
    }
  }
  return { runs, skipped };
}

export async function writeSite(d: Dashboard, out: string): Promise<void> {
  await Deno.mkdir(`${out}/runs`, { recursive: true });
  for (const run of d.runs) {
    if (run.reportPath) {
      await Deno.copyFile(run.reportPath, `${out}/runs/${safeId(run.results.run.id)}.html`);
    }
  }
  await Deno.writeTextFile(`${out}/index.html`, await renderDashboard(d));
}

const HELP = `deno task dashboard: a static site of trends over a history of runs

Usage: deno task dashboard --history DIR --out SITE

  --history DIR   folder searched recursively for results.json files
  --out SITE      folder to write index.html and runs/<run-id>.html into
  -h, --help      this text

Files that are not linattn-bench results are skipped with a warning. Exit codes: 0 written,
1 bad flags or no results under DIR.
`;

async function main(args: string[]): Promise<number> {
  const { values } = parseFlags(args, {
    history: { type: "string" },
    out: { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (!values.history || !values.out) throw new InputError("--history and --out are required");
  const { runs, skipped } = await loadHistory(values.history);
  for (const s of skipped) console.error(`dashboard: skipping ${s}`);
  if (!runs.length) throw new InputError(`no results.json under '${values.history}'`);
  const d = buildDashboard(runs);
  await writeSite(d, values.out);
  console.log(
    `dashboard: ${d.runs.length} runs, ${d.groups.size} series, ${d.changes.length} change points` +
      ` → ${values.out}/index.html`,
  );
  return 0;
}

if (import.meta.main) runCli("dashboard", () => main(Deno.args));
