/**
 * A run folder as the bench leaves it while running or after an interruption: run.json (the
 * run's identity, written first) and results.jsonl (one line per finished cell). --resume
 * continues it; deno task report renders it before results.json exists.
 */
import { InputError } from "./ops.ts";
import type { Cell, Provenance, Stretch } from "./results.ts";

export interface RunFolder {
  dir: string;
  id: string;
  started_at: string;
  profile: string;
  argv: string[];
  seed: number;
  /** The code the run started with (absent in run folders older than this check). */
  git?: { commit: string; dirty: boolean; source?: Provenance["git"]["source"] };
  /** Cells in the plan, and the provenance at the start (absent in older run folders). */
  cells_planned?: number;
  provenance?: Provenance;
  /** Each resume's start and provenance, in order (absent before the first resume). */
  resumes?: Stretch[];
  /** Finished cells, in the order they finished; a cell listed twice keeps its last line. */
  done: Cell[];
}

export async function readRunFolder(dir: string, what: string): Promise<RunFolder> {
  let run: Omit<RunFolder, "dir" | "done">;
  try {
    run = JSON.parse(await Deno.readTextFile(`${dir}/run.json`));
  } catch (e) {
    throw new InputError(
      `${what} '${dir}': cannot read run.json (${(e as Error).message.split("\n")[0]})`,
    );
  }
  let text = "";
  try {
    text = await Deno.readTextFile(`${dir}/results.jsonl`);
  } catch {
    // nothing finished before the interruption
  }
  const byId = new Map<string, Cell>();
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    try {
      const cell = JSON.parse(line) as Cell;
      byId.delete(cell.id);
      byId.set(cell.id, cell);
    } catch {
      // a line cut short by the interruption: that cell runs again
    }
  }
  return { dir, ...run, done: [...byId.values()] };
}

/** The run's stretches so far, oldest first: its start, then each resume (older folders: fewer). */
export function stretches(run: RunFolder): Stretch[] {
  const first = run.provenance ? [{ since: run.started_at, ...run.provenance }] : [];
  return [...first, ...run.resumes ?? []];
}
