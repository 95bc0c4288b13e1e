/**
 * Lanes: the worker sets a run times cells on, one cell per lane at a time. Without --gpus there
 * is one lane on the default device; with it, one lane per GPU (bench/gpus.ts). Cells go to the
 * first free lane that has their backend, in plan order, except that a cell waits while a
 * smaller T of its series is still queued or running, so that the run-time predictor
 * (bench/predict.ts) has seen it.
 */
import type { BackendName } from "./backends/backend.ts";
import {
  type Gpu,
  landedOn,
  laneEnv,
  listGpus,
  memoryUsedMiB,
  normalizeBusId,
  selectGpus,
  settle,
} from "./gpus.ts";
import type { PlannedCell } from "./matrix.ts";
import { BackendWorker } from "./pool.ts";
import { seriesKey } from "./predict.ts";

export interface Lane {
  /** "" for the single default lane, else "gpu<index>". */
  label: string;
  gpu?: Gpu;
  workers: BackendWorker[];
}

export interface OpenedLanes {
  lanes: Lane[];
  /** Backends no lane could open, with the first reason. */
  unavailable: { backend: string; reason: string }[];
  /** How WebGPU workers were placed, and any worker opened but not used, with why: for the log. */
  warnings: string[];
}

export async function openLanes(
  requested: readonly BackendName[],
  cudaLibrary: string | undefined,
  gpusFlag: string | undefined,
): Promise<OpenedLanes> {
  const unavailable = new Map<string, string>();
  const warnings: string[] = [];
  const note = (name: string, w: BackendWorker | string): BackendWorker | undefined => {
    if (typeof w !== "string") return w;
    if (!unavailable.has(name)) unavailable.set(name, w);
    return undefined;
  };
  if (gpusFlag === undefined) {
    const workers: BackendWorker[] = [];
    for (const name of requested) {
      const w = note(name, await BackendWorker.start(name, cudaLibrary));
      if (w) workers.push(w);
    }
    return { lanes: [{ label: "", workers }], unavailable: listOf(unavailable), warnings };
  }
  const gpus = selectGpus(gpusFlag, await listGpus());
  const lanes: Lane[] = gpus.map((gpu) => ({ label: `gpu${gpu.index}`, gpu, workers: [] }));
  // WebGPU first and one at a time, each asked for one lane's GPU: a worker goes to the lane of
  // the GPU its memory appeared on, whichever was asked for, if that lane has none yet.
  if (requested.includes("webgpu")) {
    const open = new Map(lanes.map((l) => [l.gpu!.index, l]));
    for (const asked of lanes) {
      if (open.size === 0) break;
      const before = await memoryUsedMiB();
      const w = note(
        "webgpu",
        await BackendWorker.start("webgpu", cudaLibrary, laneEnv(asked.gpu!)),
      );
      if (!w) continue;
      const where = landedOn(before, await memoryUsedMiB());
      const lane = "gpu" in where ? open.get(where.gpu) : undefined;
      if (lane && "gpu" in where) {
        lane.workers.push(w);
        open.delete(where.gpu);
        if (lane !== asked) {
          warnings.push(
            `webgpu asked for ${asked.label} opened on ${lane.label} (+${where.mib} MiB): used there`,
          );
        }
        continue;
      }
      warnings.push(
        `webgpu asked for ${asked.label} not used: ${
          "why" in where ? where.why : `it opened on gpu${where.gpu}, which has one already`
        } (docs/bench.md, --gpus)`,
      );
      await w.close();
      await settle(before);
    }
    for (const lane of open.values()) warnings.push(`no webgpu worker on ${lane.label}`);
  }
  const others = requested.filter((n) => n !== "webgpu");
  await Promise.all(lanes.map(async (lane, i) => {
    // The cpu backend times the host by its wall clock: one lane, or its cells would share it.
    for (const name of others.filter((n) => n !== "cpu" || i === 0)) {
      const w = note(name, await BackendWorker.start(name, cudaLibrary, laneEnv(lane.gpu!)));
      if (!w) continue;
      const bus = w.info.pci_bus_id;
      if (typeof bus === "string" && normalizeBusId(bus) !== lane.gpu!.pci_bus_id) {
        warnings.push(`${name} not used on ${lane.label}: it opened on ${bus}`);
        await w.close();
      } else lane.workers.push(w);
    }
  }));
  // A backend that opened on some lane is not unavailable, only absent from the others.
  const opened = new Set(lanes.flatMap((l) => l.workers.map((w) => w.name)));
  for (const name of opened) unavailable.delete(name);
  if (!opened.has("webgpu") && requested.includes("webgpu") && !unavailable.has("webgpu")) {
    unavailable.set("webgpu", "no WebGPU worker could be placed on a GPU of its own");
  }
  return { lanes, unavailable: listOf(unavailable), warnings };
}

function listOf(m: Map<string, string>) {
  return [...m].map(([backend, reason]) => ({ backend, reason }));
}

/**
 * Runs every queued cell on the lanes. run() times one cell on one lane (or finishes it without
 * timing); it is called with the cell's plan index so seeds do not depend on the lane. It returns
 * false to hand the cell back: its lane's worker was lost (it could not restart) while another
 * lane still has that backend, which then takes the cell and the rest of that backend's cells.
 */
export async function runOnLanes(
  lanes: Lane[],
  queue: { index: number; planned: PlannedCell }[],
  run: (lane: Lane, index: number, planned: PlannedCell) => Promise<boolean>,
): Promise<void> {
  const pending = [...queue];
  const running = new Set<PlannedCell>();
  let wake = () => {};
  let changed = new Promise<void>((r) => (wake = r));
  const signal = () => {
    wake();
    changed = new Promise<void>((r) => (wake = r));
  };
  const blocked = (c: PlannedCell) =>
    [...pending.map((p) => p.planned), ...running].some((o) =>
      o !== c && o.T < c.T && seriesKey(o) === seriesKey(c)
    );
  const live = (lane: Lane, backend: string) =>
    lane.workers.some((w) => w.name === backend && !w.lost);
  // A backend no lane has (an unavailable external one) is finished by whichever lane is free.
  const runnable = (lane: Lane, c: PlannedCell) =>
    live(lane, c.backend) || !lanes.some((l) => live(l, c.backend));
  await Promise.all(lanes.map(async (lane) => {
    while (true) {
      const mine = pending.filter((p) => runnable(lane, p.planned));
      if (mine.length === 0) return;
      const next = mine.find((p) => !blocked(p.planned));
      if (!next) {
        await changed;
        continue;
      }
      pending.splice(pending.indexOf(next), 1);
      running.add(next.planned);
      try {
        if (!await run(lane, next.index, next.planned)) pending.unshift(next);
      } finally {
        running.delete(next.planned);
        signal();
      }
    }
  }));
}

/**
 * Lanes compare cells timed on different cards, so cards that are not alike (a lower clock, a
 * throttled one) must be visible: a warning for each peak each backend measured on opening
 * (devices[].peaks) whose lanes differ by more than `tolerance` of the largest.
 */
export function peakSpread(lanes: Lane[], tolerance = 0.05): string[] {
  const out: string[] = [];
  const byName = new Map<string, { lane: string; peaks: Record<string, number> }[]>();
  for (const lane of lanes) {
    for (const w of lane.workers) {
      const peaks = (w.info as { peaks?: Record<string, number> }).peaks;
      if (!peaks) continue;
      byName.set(w.name, [...(byName.get(w.name) ?? []), { lane: lane.label, peaks }]);
    }
  }
  for (const [name, list] of byName) {
    if (list.length < 2) continue;
    for (const key of Object.keys(list[0].peaks)) {
      const xs = list.filter((x) => typeof x.peaks[key] === "number" && x.peaks[key] > 0);
      if (xs.length < 2) continue;
      const hi = Math.max(...xs.map((x) => x.peaks[key]));
      const lo = Math.min(...xs.map((x) => x.peaks[key]));
      if ((hi - lo) / hi <= tolerance) continue;
      const each = xs.map((x) => `${x.lane} ${x.peaks[key].toPrecision(4)}`).join(", ");
      out.push(
        `${name} ${key} differs across GPUs by ${(100 * (hi - lo) / hi).toFixed(0)}%: ${each}`,
      );
    }
  }
  return out;
}
