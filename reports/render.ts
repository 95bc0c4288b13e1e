/**
 * deno task report RUN_DIR: report.html and summary.md of one run folder. A finished run is
 * rendered from its results.json; an unfinished one (cut short, or still running) from run.json
 * and results.jsonl, marked as such on both pages. No results.json is written for it: that file
 * stays the bench's statement that the run finished.
 */
import { parseFlags, runCli } from "../bench/cli/cli.ts";
import { InputError } from "../bench/ops.ts";
import { type Provenance, type Results, SCHEMA } from "../bench/results.ts";
import { readRunFolder, stretches } from "../bench/run_folder.ts";
import { loadResults } from "./common.ts";
import { renderReport } from "./report.ts";
import { renderSummary } from "./markdown.ts";

const HELP = `deno task report: report.html and summary.md of a bench run folder

Usage: deno task report RUN_DIR [--out DIR]

  RUN_DIR      a folder deno task bench made (out/<run-id>)
  --out DIR    where to write both files   [RUN_DIR]
  -h, --help   this text

From RUN_DIR/results.json when the run finished. Otherwise from run.json and
results.jsonl: the pages say the run is unfinished, how many of its planned cells are
done, and how to continue it (deno task bench --resume RUN_DIR).
`;

/** report.html and summary.md of a run, into dir. */
export async function writePages(results: Results, dir: string): Promise<void> {
  await Deno.writeTextFile(`${dir}/report.html`, await renderReport(results));
  await Deno.writeTextFile(`${dir}/summary.md`, renderSummary(results));
}

/** The run so far, as a Results document marked unfinished. */
export async function unfinishedResults(dir: string): Promise<Results> {
  const run = await readRunFolder(dir, "report");
  if (run.done.length === 0) throw new InputError(`'${dir}' has no finished cells yet`);
  const devices = new Map<string, Provenance["devices"][number]>();
  for (const c of run.done) {
    if (c.gpu) {
      devices.set(`${c.backend}/${c.gpu.index}`, {
        backend: c.backend as Provenance["devices"][number]["backend"],
        name: c.gpu.name,
        gpu: c.gpu,
      });
    }
  }
  // The latest stretch is the run's provenance so far; the ones before it are `earlier`.
  const all = stretches(run);
  const latest = all.at(-1);
  const stretched: Provenance | undefined = latest
    ? (({ since: _since, ...p }) => p)(latest)
    : undefined;
  if (stretched && all.length > 1) stretched.earlier = all.slice(0, -1);
  const provenance: Provenance = stretched ?? {
    git: run.git ?? { commit: "unknown", dirty: false, source: "unknown" },
    deno: "unknown",
    v8: "unknown",
    typescript: "unknown",
    os: "unknown",
    cpu: { arch: "unknown", cores: 0, model: "unknown" },
    // Older run folders recorded no provenance; the cells of a --gpus run name their GPU.
    devices: [...devices.values()],
    unavailable: [],
  };
  return {
    schema: SCHEMA,
    run: {
      id: run.id,
      started_at: run.started_at,
      finished_at: "",
      profile: run.profile,
      argv: run.argv,
      seed: run.seed,
      unfinished: { cells_done: run.done.length, cells_planned: run.cells_planned, dir },
    },
    provenance,
    cells: run.done,
    drift: [],
  };
}

async function main(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, {
    out: { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (positionals.length !== 1) {
    throw new InputError("give one run folder (deno task report RUN_DIR; --help)");
  }
  const dir = positionals[0].replace(/\/+$/, "");
  const finished = await Deno.stat(`${dir}/results.json`).then(() => true, () => false);
  const results = finished
    ? await loadResults(`${dir}/results.json`)
    : await unfinishedResults(dir);
  const out = values.out ?? dir;
  await Deno.mkdir(out, { recursive: true });
  await writePages(results, out);
  const u = results.run.unfinished;
  if (u) {
    console.error(
      `report: unfinished run: ${u.cells_done}${u.cells_planned ? ` of ${u.cells_planned}` : ""} ` +
        `cells done`,
    );
  }
  console.log(`report:  ${out}/report.html`);
  console.log(`summary: ${out}/summary.md`);
  return 0;
}

if (import.meta.main) runCli("report", () => main(Deno.args));
