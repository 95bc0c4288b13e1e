/**
 * deno task compare BASE.json HEAD.json: the regression gate. Every cell both runs timed gets
 * a verdict from its raw samples (bootstrap CI of the ratio of medians, Mann–Whitney U with
 * Holm–Bonferroni across cells, a practical threshold); correctness and drift regressions
 * count too. Exit 1 on any regression. docs/reports.md states the method.
 */
import type { Cell, Results } from "../bench/results.ts";
import { parseFlags, parseNumber, runCli } from "../bench/cli/cli.ts";
import { InputError } from "../bench/ops.ts";
import {
  deviceName,
  driftEntries,
  type DriftEntry,
  driftKey,
  fmtMs,
  isFailure,
  loadResults,
} from "./common.ts";
import { bootstrapRatioCI, hashSeed, holm, mannWhitney } from "./stats.ts";

export interface CompareOptions {
  /** |ratio − 1| a change must exceed to count, e.g. 0.05 for 5%. */
  threshold: number;
  /** Family-wise error rate across all cells (Holm). */
  alpha: number;
  resamples: number;
  seed: number;
}

export const DEFAULTS: CompareOptions = {
  threshold: 0.05,
  alpha: 0.05,
  resamples: 2000,
  seed: 0x5eed,
};

/** Fewer samples than this per side cannot reach significance with the normal approximation. */
const MIN_SAMPLES = 5;

export type Verdict = "broken" | "slower" | "ambiguous" | "faster" | "fixed" | "untimed" | "same";
const ORDER: Verdict[] = ["broken", "slower", "ambiguous", "faster", "fixed", "untimed", "same"];

export interface Row {
  id: string;
  verdict: Verdict;
  regression: boolean;
  base: Cell;
  head: Cell;
  /** median(head) / median(base) */
  ratio?: number;
  ci?: [number, number];
  p?: number;
  pAdjusted?: number;
  note: string;
}

export interface DriftRow {
  key: string;
  base: DriftEntry;
  head: DriftEntry;
  verdict: "broken" | "fixed" | "pass" | "fail";
  regression: boolean;
}

export interface Comparison {
  base: Results;
  head: Results;
  options: CompareOptions;
  rows: Row[];
  onlyBase: string[];
  onlyHead: string[];
  drift: DriftRow[];
  driftOnlyBase: string[];
  driftOnlyHead: string[];
  notes: string[];
  regressions: number;
  /** Geometric mean of head/base over the cells with a statistical verdict. */
  geomean: number | null;
}

function correctnessBroke(base: Cell, head: Cell): string | undefined {
  if (base.status === "ok" && isFailure(head.status)) {
    return `ok → ${head.status}${head.message ? `: ${head.message}` : ""}`;
  }
  if (base.correctness?.pass === true && head.correctness?.pass === false) {
    return `correctness pass → fail (rel_rms ${head.correctness.rel_rms.toExponential(2)} > ` +
      `${head.correctness.threshold})`;
  }
}

function timedVerdict(row: Row, opts: CompareOptions): Verdict {
  const [lo, hi] = row.ci!;
  const significant = row.pAdjusted! < opts.alpha;
  if (lo > 1 + opts.threshold && significant) return "slower";
  if (hi < 1 - opts.threshold && significant) return "faster";
  if (lo >= 1 - opts.threshold && hi <= 1 + opts.threshold) return "same";
  return "ambiguous";
}

export function compareResults(
  base: Results,
  head: Results,
  options: Partial<CompareOptions> = {},
): Comparison {
  const opts = { ...DEFAULTS, ...options };
  const baseCells = new Map(base.cells.map((c) => [c.id, c]));
  const headCells = new Map(head.cells.map((c) => [c.id, c]));
  const rows: Row[] = [];
  const tested: Row[] = [];
  for (const [id, b] of baseCells) {
    const h = headCells.get(id);
    if (!h) continue;
    const row: Row = { id, base: b, head: h, verdict: "untimed", regression: false, note: "" };
    rows.push(row);
    const broke = correctnessBroke(b, h);
    if (broke) {
      Object.assign(row, { verdict: "broken", regression: true, note: broke });
    } else if (b.status === "ok" && h.status === "ok") {
      if (b.samples_ms.length < MIN_SAMPLES || h.samples_ms.length < MIN_SAMPLES) {
        Object.assign(row, {
          verdict: "ambiguous",
          note: `too few samples (${b.samples_ms.length}, ${h.samples_ms.length})`,
        });
      } else {
        row.ratio = h.stats!.median_ms / b.stats!.median_ms;
        row.ci = bootstrapRatioCI(
          b.samples_ms,
          h.samples_ms,
          1 - opts.alpha,
          opts.resamples,
          (opts.seed ^ hashSeed(id)) >>> 0,
        );
        row.p = mannWhitney(h.samples_ms, b.samples_ms).p;
        // A change of regime inside a cell's samples (bench's steadiness test) makes its
        // median a mixture: the verdict stands, but says so.
        const unsteady = [b.stats!.steady === false && "base", h.stats!.steady === false && "head"]
          .filter(Boolean);
        row.note = [
          b.timing !== h.timing ? `timing ${b.timing} → ${h.timing}` : "",
          unsteady.length ? `unsteady samples in ${unsteady.join(" and ")}` : "",
        ].filter(Boolean).join("; ");
        tested.push(row);
      }
    } else if (h.status === "ok") {
      Object.assign(row, { verdict: "fixed", note: `${b.status} → ok` });
    } else {
      row.note = b.status === h.status ? b.status : `${b.status} → ${h.status}`;
    }
  }
  const adjusted = holm(tested.map((r) => r.p!));
  tested.forEach((r, i) => {
    r.pAdjusted = adjusted[i];
    r.verdict = timedVerdict(r, opts);
    r.regression = r.verdict === "slower";
  });

  const baseDrift = new Map(driftEntries(base).map((d) => [driftKey(d), d]));
  const headDrift = new Map(driftEntries(head).map((d) => [driftKey(d), d]));
  const drift: DriftRow[] = [];
  for (const [key, b] of baseDrift) {
    const h = headDrift.get(key);
    if (!h) continue;
    const verdict = b.pass && !h.pass
      ? "broken"
      : !b.pass && h.pass
      ? "fixed"
      : h.pass
      ? "pass"
      : "fail";
    drift.push({ key, base: b, head: h, verdict, regression: verdict === "broken" });
  }

  const notes: string[] = [];
  const backends = new Set(head.cells.map((c) => c.backend));
  for (const backend of new Set(base.cells.map((c) => c.backend))) {
    if (!backends.has(backend)) continue;
    const [bn, hn] = [deviceName(base, backend), deviceName(head, backend)];
    if (bn !== hn) notes.push(`${backend}: base ran on ${bn}, head on ${hn}; timings may differ`);
  }
  const logs = tested.map((r) => Math.log(r.ratio!));
  rows.sort((a, b) =>
    ORDER.indexOf(a.verdict) - ORDER.indexOf(b.verdict) || a.id.localeCompare(b.id)
  );
  return {
    base,
    head,
    options: opts,
    rows,
    onlyBase: [...baseCells.keys()].filter((id) => !headCells.has(id)).sort(),
    onlyHead: [...headCells.keys()].filter((id) => !baseCells.has(id)).sort(),
    drift,
    driftOnlyBase: [...baseDrift.keys()].filter((k) => !headDrift.has(k)).sort(),
    driftOnlyHead: [...headDrift.keys()].filter((k) => !baseDrift.has(k)).sort(),
    notes,
    regressions: rows.filter((r) => r.regression).length + drift.filter((d) => d.regression).length,
    geomean: logs.length ? Math.exp(logs.reduce((a, b) => a + b, 0) / logs.length) : null,
  };
}

function counts(c: Comparison): string {
  const n = (v: Verdict) => c.rows.filter((r) => r.verdict === v).length;
  const parts = ORDER.filter((v) => n(v) > 0).map((v) => `${n(v)} ${v}`);
  const broken = c.drift.filter((d) => d.regression).length;
  if (c.drift.length) parts.push(`${broken} of ${c.drift.length} drift checks broken`);
  return parts.join(", ") || "no common cells";
}

export function headline(c: Comparison): string {
  const verdict = c.regressions
    ? `${c.regressions} regression${c.regressions === 1 ? "" : "s"}`
    : "no regressions";
  const geo = c.geomean !== null ? `; geomean head/base ${c.geomean.toFixed(3)}` : "";
  return `${verdict} (${counts(c)})${geo}`;
}

function columns(r: Row): string[] {
  return [
    r.verdict,
    r.id,
    fmtMs(r.base.stats?.median_ms),
    fmtMs(r.head.stats?.median_ms),
    r.ratio !== undefined ? r.ratio.toFixed(3) : "",
    r.ci ? `${r.ci[0].toFixed(3)}–${r.ci[1].toFixed(3)}` : "",
    r.pAdjusted !== undefined ? r.pAdjusted.toPrecision(2) : "",
    r.note,
  ];
}

const HEADER = ["verdict", "cell", "base ms", "head ms", "head/base", "CI", "p (Holm)", "note"];

function runLine(label: string, r: Results): string {
  const devices = [...new Set(r.provenance.devices.map((d) => d.name))].join(", ");
  return `${label}: ${r.run.id} commit ${r.provenance.git.commit.slice(0, 12)}` +
    `${r.provenance.git.dirty ? " (dirty)" : ""} on ${devices || "no devices"}`;
}

export function terminalReport(c: Comparison): string {
  const table = [HEADER, ...c.rows.map(columns)];
  const widths = HEADER.map((_, i) => Math.max(...table.map((row) => row[i].length)));
  const lines = [
    runLine("base", c.base),
    runLine("head", c.head),
    ...c.notes.map((n) => `note: ${n}`),
    "",
  ];
  for (const row of table) {
    lines.push(
      row.map((s, i) => (i >= 2 && i <= 6 ? s.padStart(widths[i]) : s.padEnd(widths[i])))
        .join("  ").trimEnd(),
    );
  }
  for (const d of c.drift) {
    lines.push(
      `drift ${d.verdict.padEnd(6)} ${d.key}  rel_rms ${d.base.rel_rms.toExponential(2)} → ` +
        `${d.head.rel_rms.toExponential(2)} (threshold ${d.head.threshold})`,
    );
  }
  if (c.onlyBase.length) lines.push(`only in base: ${c.onlyBase.join(", ")}`);
  if (c.onlyHead.length) lines.push(`only in head: ${c.onlyHead.join(", ")}`);
  if (c.driftOnlyBase.length) lines.push(`drift only in base: ${c.driftOnlyBase.join(", ")}`);
  if (c.driftOnlyHead.length) lines.push(`drift only in head: ${c.driftOnlyHead.join(", ")}`);
  lines.push("", `compare: ${headline(c)}`);
  return lines.join("\n");
}

function mdTable(rows: Row[]): string[] {
  const cell = (s: string) => s.replace(/\|/g, "\\|");
  return [
    `| ${HEADER.join(" | ")} |`,
    `|${HEADER.map((_, i) => (i >= 2 && i <= 6 ? "---:" : "---")).join("|")}|`,
    ...rows.map((r) => {
      const cols = columns(r).map(cell);
      cols[0] = r.regression ? `**${cols[0]}**` : cols[0];
      cols[1] = `\`${cols[1]}\``;
      return `| ${cols.join(" | ")} |`;
    }),
  ];
}

/** For a pull-request comment: the changes up front, every cell folded away. */
export function markdownReport(c: Comparison): string {
  const o = c.options;
  const lines = [
    `### linattn-bench compare: ${headline(c)}`,
    "",
    `- ${runLine("base", c.base)}`,
    `- ${runLine("head", c.head)}`,
    ...c.notes.map((n) => `- note: ${n}`),
    "",
    `Verdicts from raw samples: ${Math.round((1 - o.alpha) * 100)}% bootstrap CI of the ratio of ` +
    `medians, Mann–Whitney U with Holm–Bonferroni at α ${o.alpha}, threshold ±${
      o.threshold * 100
    }%.`,
    "",
  ];
  const changed = c.rows.filter((r) => r.verdict !== "same");
  if (changed.length) lines.push(...mdTable(changed), "");
  const driftChanged = c.drift.filter((d) => d.verdict !== "pass");
  if (driftChanged.length) {
    lines.push(
      "| drift | check | base rel_rms | head rel_rms | threshold |",
      "|---|---|---:|---:|---:|",
    );
    for (const d of driftChanged) {
      lines.push(
        `| ${d.regression ? "**broken**" : d.verdict} | \`${d.key}\` | ` +
          `${d.base.rel_rms.toExponential(2)} | ${
            d.head.rel_rms.toExponential(2)
          } | ${d.head.threshold} |`,
      );
    }
    lines.push("");
  }
  for (
    const [label, ids] of [
      ["Only in base", c.onlyBase],
      ["Only in head", c.onlyHead],
      ["Drift only in base", c.driftOnlyBase],
      ["Drift only in head", c.driftOnlyHead],
    ] as const
  ) {
    if (ids.length) lines.push(`${label}: ${ids.map((id) => `\`${id}\``).join(", ")}`, "");
  }
  lines.push(
    `<details><summary>All ${c.rows.length} common cells</summary>`,
    "",
    ...mdTable(c.rows),
    "",
    "</details>",
    "",
  );
  return lines.join("\n");
}

const HELP = `deno task compare: the regression gate between two results.json files

Usage: deno task compare BASE.json HEAD.json [flags]

  --threshold F    a change must exceed ±F of the base median to count   [0.05]
  --alpha F        family-wise error rate across all cells (Holm–Bonferroni); the ratio's
                   bootstrap CI is at level 1 − F   [0.05]
  --markdown FILE  also write the comparison as markdown (for a pull-request comment)
  -h, --help       this text

Per cell in both files: slower (CI of median(head)/median(base) entirely above 1 + F and
adjusted p < alpha), faster (symmetric), same (CI within 1 ± F), else ambiguous. A cell ok in
BASE and incorrect/error/oom/timeout in HEAD, a correctness pass turned fail, or a drift check
pass turned fail is a regression too. Exit codes: 0 no regression, 1 a regression or bad input.
`;

async function main(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, {
    threshold: { type: "string" },
    alpha: { type: "string" },
    markdown: { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (positionals.length !== 2) {
    throw new InputError(
      `expected BASE.json HEAD.json, got ${positionals.length} paths (see --help)`,
    );
  }
  const threshold = values.threshold !== undefined
    ? parseNumber("--threshold", values.threshold)
    : DEFAULTS.threshold;
  const alpha = values.alpha !== undefined ? parseNumber("--alpha", values.alpha) : DEFAULTS.alpha;
  if (threshold < 0 || threshold >= 1) {
    throw new InputError(`--threshold must be in [0, 1), got ${threshold}`);
  }
  if (alpha <= 0 || alpha >= 1) throw new InputError(`--alpha must be in (0, 1), got ${alpha}`);
  const [base, head] = [await loadResults(positionals[0]), await loadResults(positionals[1])];
  const c = compareResults(base, head, { threshold, alpha });
  console.log(terminalReport(c));
  if (values.markdown) await Deno.writeTextFile(values.markdown, markdownReport(c));
  return c.regressions ? 1 : 0;
}

if (import.meta.main) runCli("compare", () => main(Deno.args));
