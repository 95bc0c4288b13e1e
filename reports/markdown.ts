/**
 * summary.md: the classic comparison table of attention papers, one per variant, dtype and
 * mode: rows T, columns the naive and FlashAttention baselines and each kernel of the variant,
 * each entry "ms (peak GiB)". Written beside results.json; pastes into an issue as is.
 */
import type { Cell, Results } from "../bench/results.ts";
import { formatTokens } from "../bench/matrix.ts";
import { deviceName, driftEntries, fmtMs, opPeakBytes, shapeLabel } from "./common.ts";

const BASELINE_NAMES: Record<string, string> = { quadratic: "naive", flash: "FlashAttention" };

function isBaseline(c: Cell): boolean {
  return c.variant === "softmax" && c.impl in BASELINE_NAMES;
}

function entry(c: Cell | undefined): string {
  if (!c) return "–";
  if (c.status === "ok" && c.stats) {
    const bytes = opPeakBytes(c);
    const gib = bytes === undefined ? undefined : bytes / 2 ** 30;
    // Small runs (cpu, smoke) would all read 0.00 at a fixed two decimals.
    const mem = gib === undefined
      ? ""
      : ` (${gib >= 0.1 || gib === 0 ? gib.toFixed(2) : gib.toPrecision(2)})`;
    // † samples not steady when sampling stopped (stats.steady false): a change of regime.
    return `${fmtMs(c.stats.median_ms)}${c.stats.steady === false ? "†" : ""}${mem}`;
  }
  return c.status === "oom" ? "OOM" : c.status;
}

function column(c: Cell, withShape: boolean): string {
  const name = isBaseline(c)
    ? `${BASELINE_NAMES[c.impl]} (${c.backend})`
    : `${c.backend}/${c.impl}`;
  return withShape ? `${name} ${shapeLabel(c)}` : name;
}

function rank(col: string): number {
  if (col.startsWith("naive")) return 0;
  if (col.startsWith("FlashAttention")) return 1;
  return 2;
}

function table(variant: string, title: string, cells: Cell[], r: Results): string {
  const withShape = new Set(cells.map(shapeLabel)).size > 1;
  const cols = [...new Set(cells.map((c) => column(c, withShape)))]
    .sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  // Rows are the lengths the variant itself ran; baselines fill in beside them.
  const Ts = [...new Set(cells.filter((c) => c.variant === variant).map((c) => c.shape.T))]
    .sort((a, b) => a - b);
  const byKey = new Map(cells.map((c) => [`${column(c, withShape)}|${c.shape.T}`, c]));
  const devices = [...new Set(cells.map((c) => deviceName(r, c.backend)))].join(", ");
  const shape = withShape ? "" : `, ${shapeLabel(cells[0])}`;
  const lines = [
    `### ${title}`,
    "",
    `ms (peak GiB) on ${devices}${shape}`,
    "",
    `| T | ${cols.join(" | ")} |`,
    `|---:|${cols.map(() => "---:").join("|")}|`,
    ...Ts.map((T) =>
      `| ${formatTokens(T)} | ${cols.map((col) => entry(byKey.get(`${col}|${T}`))).join(" | ")} |`
    ),
  ];
  return lines.join("\n");
}

export function renderSummary(results: Results): string {
  const variants = [...new Set(results.cells.map((c) => c.variant))];
  // Softmax gets a table of its own only for impls that are not already every table's baselines.
  const shown = variants.filter((v) =>
    v !== "softmax" || results.cells.some((c) => c.variant === v && !isBaseline(c)) ||
    variants.length === 1
  );
  const sections: string[] = [];
  for (const variant of shown) {
    const own = results.cells.filter((c) => c.variant === variant);
    for (const dtype of [...new Set(own.map((c) => c.dtype))]) {
      for (const mode of [...new Set(own.map((c) => c.mode))]) {
        const group = results.cells.filter((c) =>
          c.dtype === dtype && c.mode === mode && (c.variant === variant || isBaseline(c))
        );
        if (group.some((c) => c.variant === variant)) {
          sections.push(table(variant, `${variant} · ${dtype} · ${mode}`, group, results));
        }
      }
    }
  }
  const failed = results.cells.filter((c) => !["ok", "skipped"].includes(c.status)).length;
  const drift = driftEntries(results);
  const header = [
    `## linattn-bench ${results.run.id}`,
    "",
    `Profile ${results.run.profile}, commit \`${results.provenance.git.commit.slice(0, 12)}\`${
      results.provenance.git.dirty ? " (dirty)" : ""
    }, ${results.cells.length} cells, ${failed} not ok` +
    (drift.length
      ? `, ${drift.filter((d) => !d.pass).length} of ${drift.length} drift checks failed`
      : "") +
    ". Median ms of device-timed samples; – not run" +
    (results.cells.some((c) => c.stats?.steady === false)
      ? "; † samples not steady when sampling stopped (a change of regime: docs/bench.md)."
      : "."),
    ...(results.run.unfinished
      ? [
        "",
        `**Unfinished run**: ${
          results.run.unfinished.cells_planned
            ? `${results.run.unfinished.cells_done} of ${results.run.unfinished.cells_planned} planned cells`
            : `${results.run.unfinished.cells_done} cells (the plan's size was not recorded)`
        } finished; continue it with \`deno task bench --resume ${results.run.unfinished.dir}\`.`,
      ]
      : []),
    ...(results.provenance.earlier?.length
      ? [
        "",
        `Resumed run: earlier stretches ${
          results.provenance.earlier.map((s) =>
            `from ${s.since} on ${
              [...new Set(s.devices.map((d) => d.name))].join(", ") || "no devices"
            }`
          ).join("; ")
        }; each cell's \`finished_at\` says which stretch timed it.`,
      ]
      : []),
  ];
  return [...header, "", ...sections.flatMap((s) => [s, ""])].join("\n");
}
