/**
 * deno task export RESULTS.json --format gab|bmf|junit --out FILE: the cells in the formats
 * other tools read: github-action-benchmark (customSmallerIsBetter), Bencher Metric Format,
 * and JUnit XML for CI test views.
 */
import type { Cell, Results } from "../bench/results.ts";
import { parseChoice, parseFlags, runCli } from "../bench/cli/cli.ts";
import { InputError } from "../bench/ops.ts";
import { deviceName, driftEntries, driftKey, isFailure, loadResults } from "./common.ts";

export const FORMATS = ["gab", "bmf", "junit"] as const;
export type Format = typeof FORMATS[number];

type Timed = Cell & { stats: NonNullable<Cell["stats"]> };
const timed = (r: Results) => r.cells.filter((c): c is Timed => c.status === "ok" && !!c.stats);

export interface GabEntry {
  name: string;
  unit: "ms";
  value: number;
  range?: string;
  extra: string;
}

/** github-action-benchmark's customSmallerIsBetter: one entry per timed cell. */
export function toGab(r: Results): GabEntry[] {
  return timed(r).map((c) => {
    const [lo, hi] = c.stats.ci95_ms;
    return {
      name: c.id,
      unit: "ms",
      value: c.stats.median_ms,
      range: `± ${((hi - lo) / 2).toPrecision(3)}`,
      extra:
        `median of ${c.stats.n} samples, 95% CI ${lo.toPrecision(4)}–${hi.toPrecision(4)} ms, ` +
        `${c.timing}, stop ${c.stats.stop_reason}, ${deviceName(r, c.backend)}, ` +
        `commit ${r.provenance.git.commit.slice(0, 12)}`,
    };
  });
}

export type Bmf = Record<
  string,
  Record<string, { value: number; lower_value?: number; upper_value?: number }>
>;

/** Bencher's built-in latency measure is in nanoseconds, so milliseconds are scaled by 1e6. */
export function toBmf(r: Results): Bmf {
  const out: Bmf = {};
  for (const c of timed(r)) {
    const ns = (ms: number) => ms * 1e6;
    out[c.id] = {
      latency: {
        value: ns(c.stats.median_ms),
        lower_value: ns(c.stats.ci95_ms[0]),
        upper_value: ns(c.stats.ci95_ms[1]),
      },
    };
  }
  return out;
}

const XML_ENTITIES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&apos;",
};

function xml(s: unknown): string {
  // XML 1.0 forbids control characters other than tab and newlines even when escaped.
  const clean = [...String(s)].filter((ch) => {
    const code = ch.charCodeAt(0);
    return code >= 0x20 || code === 0x09 || code === 0x0a || code === 0x0d;
  }).join("");
  return clean.replace(/[&<>"']/g, (c) => XML_ENTITIES[c]);
}

/**
 * JUnit XML: a testcase per cell (a failure when bench counts it as not ok: incorrect, error,
 * oom, timeout; skipped stays skipped) and per drift check (a failure when it did not pass).
 */
export function toJunit(r: Results): string {
  const cases = r.cells.map((c) => {
    const time = c.stats ? (c.stats.median_ms / 1000).toFixed(6) : "0";
    const open = `<testcase classname="${xml(`${c.variant}.${c.backend}.${c.impl}`)}" ` +
      `name="${xml(c.id)}" time="${time}"`;
    if (c.status === "skipped") return `${open}><skipped message="${xml(c.message)}"/></testcase>`;
    if (isFailure(c.status)) {
      return `${open}><failure type="${xml(c.status)}" message="${
        xml(`${c.status}: ${c.message}`)
      }"/>` +
        `</testcase>`;
    }
    return `${open}/>`;
  });
  const drift = driftEntries(r).map((d) => {
    const open = `<testcase classname="drift.${xml(d.variant)}.${xml(d.backend)}" ` +
      `name="${xml(driftKey(d))}" time="0"`;
    return d.pass
      ? `${open}/>`
      : `${open}><failure type="drift" message="${
        xml(`rel_rms ${d.rel_rms} > ${d.threshold}`)
      }"/></testcase>`;
  });
  const failures = r.cells.filter((c) => isFailure(c.status)).length +
    driftEntries(r).filter((d) => !d.pass).length;
  const skipped = r.cells.filter((c) => c.status === "skipped").length;
  const total = cases.length + drift.length;
  const suite = `<testsuite name="linattn-bench ${xml(r.run.id)}" tests="${total}" ` +
    `failures="${failures}" errors="0" skipped="${skipped}" timestamp="${xml(r.run.started_at)}">`;
  return `<?xml version="1.0" encoding="UTF-8"?>\n<testsuites>\n${suite}\n` +
    [...cases, ...drift].map((c) => `  ${c}`).join("\n") + `\n</testsuite>\n</testsuites>\n`;
}

export function exportAs(r: Results, format: Format): string {
  switch (format) {
    case "gab":
      return JSON.stringify(toGab(r), null, 1) + "\n";
    case "bmf":
      return JSON.stringify(toBmf(r), null, 1) + "\n";
    case "junit":
      return toJunit(r);
  }
}

const HELP = `deno task export: results.json in other tools' formats

Usage: deno task export RESULTS.json --format gab|bmf|junit --out FILE

  --format gab     github-action-benchmark customSmallerIsBetter JSON: median ms per timed cell,
                   range ± half the 95% CI
  --format bmf     Bencher Metric Format: measure "latency" in nanoseconds (Bencher's unit),
                   lower/upper the 95% CI of the median
  --format junit   JUnit XML: a testcase per cell and per drift check; incorrect, error, oom
                   and timeout cells and failed drift checks are failures, skipped cells skipped
  --out FILE       where to write ("-" for standard output)
  -h, --help       this text

Exit codes: 0 written, 1 bad flags or input.
`;

async function main(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, {
    format: { type: "string" },
    out: { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (positionals.length !== 1) {
    throw new InputError(`expected one RESULTS.json, got ${positionals.length} (see --help)`);
  }
  if (!values.format || !values.out) throw new InputError("--format and --out are required");
  const format = parseChoice("--format", values.format, FORMATS);
  const text = exportAs(await loadResults(positionals[0]), format);
  if (values.out === "-") console.log(text.trimEnd());
  else await Deno.writeTextFile(values.out, text);
  return 0;
}

if (import.meta.main) runCli("export", () => main(Deno.args));
