/**
 * The nightly's file work, kept out of shell so it is tested like the rest:
 *   render RUN_DIR              (re)write RUN_DIR/report.html and summary.md from results.json
 *   merge-drift RUN_DIR DIR     add the drift entries of every JSON file under DIR to the run
 *   copy RUN_DIR HISTORY        copy a run into HISTORY/<run-id>/ (the gh-pages layout)
 *   latest HISTORY [--except ID]  print the newest results.json in HISTORY, or nothing
 */
import { parseFlags, runCli } from "../bench/cli/cli.ts";
import { InputError } from "../bench/ops.ts";
import { type DriftEntry, type Results, writeJsonAtomic } from "../bench/results.ts";
import { findResultsFiles, loadResults } from "../reports/common.ts";
import { writePages } from "../reports/render.ts";
import { safeId } from "../reports/dashboard.ts";

/** What a run folder may hold besides results.json; whatever exists is published. */
const RUN_FILES = ["report.html", "summary.md", "compare.md", "compare.txt"];

export async function render(runDir: string): Promise<Results> {
  const r = await loadResults(`${runDir}/results.json`);
  await writePages(r, runDir);
  return r;
}

async function jsonFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory) out.push(...await jsonFiles(p));
    else if (e.isFile && e.name.endsWith(".json")) out.push(p);
  }
  return out.sort();
}

/**
 * `deno task drift` writes its own files; the nightly folds their entries into the bench run
 * so one results.json carries both and compare sees drift. Accepts a document with a `drift`
 * array or a bare array of entries.
 */
export async function mergeDrift(runDir: string, driftDir: string): Promise<number> {
  const r = await loadResults(`${runDir}/results.json`);
  const added: DriftEntry[] = [];
  for (const f of await jsonFiles(driftDir)) {
    let doc: unknown;
    try {
      doc = JSON.parse(await Deno.readTextFile(f));
    } catch (e) {
      throw new InputError(`'${f}' is not JSON: ${(e as Error).message}`);
    }
    const entries = Array.isArray(doc) ? doc : (doc as { drift?: unknown })?.drift;
    if (Array.isArray(entries)) added.push(...(entries as DriftEntry[]));
  }
  r.drift = [...r.drift, ...added];
  await writeJsonAtomic(`${runDir}/results.json`, r);
  await render(runDir);
  return added.length;
}

export async function copyRun(runDir: string, history: string): Promise<string> {
  const r = await loadResults(`${runDir}/results.json`);
  const dest = `${history}/${safeId(r.run.id)}`;
  await Deno.mkdir(dest, { recursive: true });
  for (const name of ["results.json", ...RUN_FILES]) {
    try {
      await Deno.copyFile(`${runDir}/${name}`, `${dest}/${name}`);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
  return dest;
}

export async function latest(history: string, except?: string): Promise<string | undefined> {
  let files: string[];
  try {
    files = await findResultsFiles(history);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
  let best: { path: string; started: string } | undefined;
  for (const path of files) {
    const r = await loadResults(path).catch(() => undefined);
    if (!r || r.run.id === except) continue;
    if (!best || r.run.started_at > best.started) best = { path, started: r.run.started_at };
  }
  return best?.path;
}

const HELP = `ci/publish.ts: the nightly's file steps

Usage:
  deno run -A ci/publish.ts render RUN_DIR
  deno run -A ci/publish.ts merge-drift RUN_DIR DRIFT_DIR
  deno run -A ci/publish.ts copy RUN_DIR HISTORY_DIR
  deno run -A ci/publish.ts latest HISTORY_DIR [--except RUN_ID]
`;

async function main(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, {
    except: { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const [cmd, ...rest] = positionals;
  const need = (n: number) => {
    if (rest.length !== n) throw new InputError(`${cmd} takes ${n} paths, got ${rest.length}`);
  };
  switch (cmd) {
    case "render":
      need(1);
      await render(rest[0]);
      break;
    case "merge-drift":
      need(2);
      console.log(`merged ${await mergeDrift(rest[0], rest[1])} drift entries`);
      break;
    case "copy":
      need(2);
      console.log(await copyRun(rest[0], rest[1]));
      break;
    case "latest": {
      need(1);
      const found = await latest(rest[0], values.except);
      if (found) console.log(found);
      break;
    }
    default:
      throw new InputError(`unknown command '${cmd ?? ""}' (render, merge-drift, copy, latest)`);
  }
  return 0;
}

if (import.meta.main) runCli("publish", () => main(Deno.args));
