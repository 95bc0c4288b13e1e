/**
 * deno task bench: the benchmark matrix on every backend this machine has. Streams cells to
 * results.jsonl as they finish, then writes results.json and a self-contained report.html.
 */
import { BACKENDS } from "./backends/backend.ts";
import { parseBackendName } from "./backends/registry.ts";
import { openLanes, peakSpread, runOnLanes } from "./lanes.ts";
import { EXIT_BAD_INPUT, parseChoice, parseFlags, runCli } from "./cli/cli.ts";
import {
  applyOverrides,
  formatTokens,
  type MatrixFlags,
  planCells,
  type Profile,
  PROFILES,
  profileSpec,
} from "./matrix.ts";
import { InputError } from "./ops.ts";
import {
  type Cell,
  gitProvenance,
  provenance,
  type Results,
  SCHEMA,
  writeJsonAtomic,
} from "./results.ts";
import { RunTimePredictor } from "./predict.ts";
import { readRunFolder, stretches } from "./run_folder.ts";
import { Progress } from "./progress.ts";
import { finish, newCell } from "./runner.ts";
import { TORCH_IMPLS } from "./backends/torch_impls.ts";
import { writePages } from "../reports/render.ts";

const HELP = `deno task bench: run the benchmark matrix on the backends this machine has

Usage: deno task bench [flags]

Matrix (comma-separated lists; default: the profile's):
  --profile NAME     smoke | nightly | full   [nightly with a GPU backend, else smoke]
  --config FILE      JSON object of matrix fields (backends, variants, impls, T, dtypes,
                     modes, B, H, K, V, M, timing, ci_target, warmup, warmup_min_s, min_samples,
                     max_samples, time_cap_s, check_tokens, input_sets, chunk_size);
                     flags override it
  --backend LIST     cpu,cuda,webgpu,torch (torch: external references, docs/external.md)
  --variant LIST     la,gla,deltanet,rmt,softmax
  --impl LIST        implementation names (see: deno task run-op --backend X --list-impls)
  --T LIST           sequence lengths, e.g. 16K,64K,256K,1M
  --dtype LIST       f64,f32,bf16,f16 (each backend runs those it supports)
  --mode LIST        fwd,bwd,fwdbwd
  --B N --H N --K N --V N --M N   batch, heads, key dim, value dim, rmt memory rows
  --chunk-size N     tokens per chunk of la, gla, deltanet (a non-default size is part of
                     each cell id: .../C32)   [64]

Timing:
  --timing MODE      cold (L2 flushed before each sample) | hot   [cold]
  --ci-target F      stop when the median's 95% CI half-width is within F   [0.01]
  --warmup N         untimed runs per input set before sampling   [3]
  --warmup-time S    device seconds of warm-up at the least, in more runs   [1; smoke 0]
  --min-samples N    --max-samples N    --time-cap SECONDS (sampling per cell)
  --seed N           input seed (default: random, recorded in results.json)

Devices:
  --gpus LIST        spread the cells over these GPUs (nvidia-smi indices, or all), one cell
                     per GPU at a time, each backend's worker pinned to its lane's GPU; a
                     WebGPU worker is used only where it opened on its own GPU (docs/bench.md)
  --cuda-library P   CUDA kernel library (else $LAK_LIBRARY, else build/liblak.so)

Output:
  --out DIR          parent folder of the run folder   [out]
  --no-report        skip report.html
  --resume DIR       continue an interrupted run in DIR (its flags and seed are reused;
                     cells already in DIR/results.jsonl are kept); only at the commit
                     the run started with (LAB_GIT_COMMIT or the checkout's HEAD)
  --cell-timeout S   seconds a cell may take before its worker is killed; a cell predicted
                     (from the same series at a smaller T, scaled by declared FLOPs) to
                     need more than this for 3 runs is skipped with the prediction   [900]
  --dry-run          print the planned cells (one id per line) and exit
  -h, --help         this text

Each backend runs in its own worker process: a crash or a hang ends only its cell (status
error or timeout) and a fresh worker takes the next one. Writes DIR/<run-id>/run.json,
DIR/<run-id>/results.jsonl (one cell per line, as cells finish), results.json and
report.html, and prints both paths. Exit codes: 0 all cells ok or skipped, 1 bad flags or a
cell incorrect/error/oom/timeout, 2 no backend available.
`;

const FLAGS = {
  profile: { type: "string" },
  config: { type: "string" },
  backend: { type: "string" },
  variant: { type: "string" },
  impl: { type: "string" },
  T: { type: "string" },
  dtype: { type: "string" },
  mode: { type: "string" },
  B: { type: "string" },
  H: { type: "string" },
  K: { type: "string" },
  V: { type: "string" },
  M: { type: "string" },
  timing: { type: "string" },
  "ci-target": { type: "string" },
  "min-samples": { type: "string" },
  warmup: { type: "string" },
  "max-samples": { type: "string" },
  "time-cap": { type: "string" },
  "chunk-size": { type: "string" },
  "warmup-time": { type: "string" },
  seed: { type: "string" },
  out: { type: "string" },
  "cuda-library": { type: "string" },
  "no-report": { type: "boolean" },
  resume: { type: "string" },
  "cell-timeout": { type: "string" },
  "dry-run": { type: "boolean" },
  gpus: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

async function main(args: string[]): Promise<number> {
  const { values } = parseFlags(args, FLAGS);
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const resume = values.resume ? await readRunFolder(values.resume, "--resume") : undefined;
  const args_ = resume ? resume.argv : args;
  const git = await gitProvenance();
  if (resume) {
    // One run, one code version: cells timed by two commits must not share a results.json.
    if (resume.git && resume.git.commit !== git.commit) {
      throw new InputError(
        `--resume '${resume.dir}': that run started at commit ${resume.git.commit}, this tree ` +
          `is at ${git.commit}; start a new run (or check out ${resume.git.commit})`,
      );
    }
    if (git.dirty || resume.git?.dirty) {
      console.error(
        `bench: warning: uncommitted changes; cannot tell whether ${resume.dir} ran this code`,
      );
    }
    console.error(`bench: resuming ${resume.dir} (${resume.done.length} cells already done)`);
  }
  const v = resume ? parseFlags(args_, FLAGS).values : values;
  const started = resume ? new Date(resume.started_at) : new Date();
  const config = v.config ? await readConfig(v.config) : undefined;
  const requested = v.backend
    ? v.backend.split(",").map((b) => parseBackendName(b.trim()))
    : BACKENDS;
  // Validate every flag before opening any device, so a typo costs nothing.
  const profileFlag = v.profile ? parseChoice("--profile", v.profile, PROFILES) : undefined;
  applyOverrides(profileSpec(profileFlag ?? "smoke", false), config, v as MatrixFlags);
  const seed = resume?.seed ??
    (v.seed !== undefined ? Number(v.seed) : Math.floor(Math.random() * 2 ** 31));
  if (!Number.isInteger(seed)) throw new InputError(`--seed must be an integer, got '${v.seed}'`);
  const cellTimeout = v["cell-timeout"] !== undefined ? Number(v["cell-timeout"]) : 900;
  if (!(cellTimeout > 0)) {
    throw new InputError(`--cell-timeout must be positive seconds, got '${v["cell-timeout"]}'`);
  }

  const opened = await openLanes(requested, v["cuda-library"], v.gpus);
  const { lanes, unavailable } = opened;
  for (const u of unavailable) console.error(`bench: ${u.backend}: ${u.reason}`);
  for (const w of [...opened.warnings, ...peakSpread(lanes)]) {
    console.error(`bench: warning: ${w}`);
  }
  const workers = lanes.flatMap((l) => l.workers);
  const closeAll = () => Promise.all(workers.map((w) => w.close()));
  // torch only opens with a CUDA device (torch_worker.py), so it marks a GPU machine too.
  const gpu = workers.some((w) =>
    w.name === "cuda" || w.name === "torch" ||
    (w.name === "webgpu" && !(w.info as { isFallbackAdapter?: boolean }).isFallbackAdapter)
  );
  const profile: Profile = profileFlag ?? (gpu ? "nightly" : "smoke");
  const spec = applyOverrides(profileSpec(profile, gpu), config, v as MatrixFlags);
  const active = workers.filter((w) => spec.backends.includes(w.name));
  // One catalog entry per backend: every lane's worker of a backend has the same impls.
  const catalog = active.filter((w, i) => active.findIndex((x) => x.name === w.name) === i);
  if (active.length === 0) {
    await closeAll();
    console.error(
      `bench: error: none of the backends ${spec.backends.join(", ")} is available here`,
    );
    return 2;
  }
  // External references (torch) that could not open still get their cells, as skipped.
  const external = unavailable.filter((u) =>
    u.backend === "torch" && spec.backends.includes("torch")
  ).map((u) => ({ name: "torch" as const, impls: [...TORCH_IMPLS], reason: u.reason }));
  const cells = planCells(spec, [...catalog, ...external]);
  if (cells.length === 0) {
    await closeAll();
    throw new InputError(
      "the matrix is empty: no backend implements the requested variants/impls/dtypes/modes",
    );
  }

  if (v["dry-run"]) {
    // The plan only: which cells, in order, and why external ones would be skipped.
    for (const c of cells) {
      const why = external.find((x) => x.name === c.backend)?.reason;
      console.log(why ? `${c.id}  (skipped: ${why})` : c.id);
    }
    console.error(`bench: profile ${profile}, ${cells.length} cells (dry run: nothing timed)`);
    await closeAll();
    return 0;
  }

  const prov = await provenance(
    lanes.flatMap((l) =>
      l.workers.filter((w) => active.includes(w)).map((w) =>
        l.gpu && w.name !== "cpu" ? { ...w.info, gpu: l.gpu } : w.info
      )
    ),
    unavailable,
    git,
  );
  // results.json carries this machine's provenance; say so when the run began on other devices.
  const names = (p: { devices: { backend: string; name: string }[] }) =>
    [...new Set(p.devices.map((d) => `${d.backend}: ${d.name}`))].sort().join(", ");
  if (resume?.provenance && names(resume.provenance) !== names(prov)) {
    console.error(
      `bench: warning: this run began on ${names(resume.provenance) || "no devices"} and ` +
        `resumes on ${names(prov) || "no devices"}`,
    );
  }
  const id = resume?.id ?? started.toISOString().replace(/[:.]/g, "-");
  const dir = resume?.dir ?? `${v.out ?? "out"}/${id}`;
  await Deno.mkdir(dir, { recursive: true });
  if (!resume) {
    await writeJsonAtomic(`${dir}/run.json`, {
      id,
      started_at: started.toISOString(),
      profile,
      argv: args,
      seed,
      git,
      // So an unfinished run can be reported (deno task report) with its plan and devices.
      cells_planned: cells.length,
      provenance: prov,
    });
  } else {
    // Each stretch of a resumed run keeps its machine: results.json lists the earlier ones.
    const { dir: _d, done: _c, ...runJson } = resume;
    await writeJsonAtomic(`${dir}/run.json`, {
      ...runJson,
      resumes: [...resume.resumes ?? [], { since: new Date().toISOString(), ...prov }],
    });
  }
  console.error(
    `bench: profile ${profile}, ${cells.length} cells on ${catalog.map((b) => b.name).join(", ")}${
      lanes.length > 1 ? ` over ${lanes.length} GPUs (${lanes.map((l) => l.label).join(", ")})` : ""
    }, ` +
      `T ${
        spec.T.map(formatTokens).join(",")
      }, B${spec.B} H${spec.H} K${spec.K} V${spec.V}, seed ${seed}`,
  );
  const previous = new Map((resume?.done ?? []).map((c) => [c.id, c]));
  const jsonl = await Deno.open(`${dir}/results.jsonl`, {
    write: true,
    create: true,
    append: true,
  });
  const done = new Map<number, Cell>();
  const predictor = new RunTimePredictor();
  for (const [i, planned] of cells.entries()) {
    const before = previous.get(planned.id);
    if (before) {
      done.set(i, before);
      predictor.record(before);
    }
  }
  // Lanes finish cells concurrently: one line at a time, each written whole.
  let writing = Promise.resolve();
  const appendLine = (line: string) =>
    writing = writing.then(async () => {
      const bytes = new TextEncoder().encode(line + "\n");
      for (let off = 0; off < bytes.length;) off += await jsonl.write(bytes.subarray(off));
    });
  const queue = cells.map((planned, index) => ({ index, planned })).filter((c) =>
    !done.has(c.index)
  );
  const progress = new Progress(
    cells.length,
    done.size,
    queue.map(({ planned }) => ({ backend: planned.backend, T: planned.T })),
    lanes.length,
  );
  await runOnLanes(lanes, queue, async (lane, i, planned) => {
    progress.start(planned.id, lane.label);
    const worker = lane.workers.find((w) => w.name === planned.backend && active.includes(w));
    const fresh = newCell(planned, spec).cell;
    const tooSlow = predictor.skipReason(planned, fresh.work.flops, cellTimeout);
    const cell = !worker
      ? finish(
        fresh,
        "skipped",
        external.find((x) => x.name === planned.backend)?.reason ?? "backend unavailable",
      )
      : tooSlow
      ? finish(fresh, "skipped", tooSlow)
      : await worker.run(planned, spec, (seed + i * 1_000_003) >>> 0, cellTimeout * 1000);
    const heir = worker?.lost &&
      lanes.some((l) => l.workers.some((w) => w.name === worker.name && !w.lost));
    if (heir) {
      // The cell never ran: its lane's device is gone, not the cell at fault.
      console.error(
        `bench: warning: ${lane.label}: the ${worker.name} worker could not restart ` +
          `(${worker.lost}); its cells go to the other lanes`,
      );
      progress.drop(lane.label);
      return false;
    }
    if (worker && lane.gpu && worker.name !== "cpu") cell.gpu = { ...lane.gpu };
    cell.finished_at = new Date().toISOString();
    done.set(i, cell);
    predictor.record(cell);
    await appendLine(JSON.stringify(cell));
    progress.finish(cell, lane.label);
    return true;
  });
  jsonl.close();
  await closeAll();

  const results: Results = {
    schema: SCHEMA,
    run: {
      id,
      started_at: started.toISOString(),
      finished_at: new Date().toISOString(),
      profile,
      argv: args_,
      seed,
    },
    provenance: resume ? { ...prov, earlier: stretches(resume) } : prov,
    cells: [...done].sort(([a], [b]) => a - b).map(([, c]) => c),
    drift: [],
  };
  await writeJsonAtomic(`${dir}/results.json`, results);
  console.log(`results: ${dir}/results.json`);
  if (!v["no-report"]) {
    await writePages(results, dir);
    console.log(`report:  ${dir}/report.html`);
    console.log(`summary: ${dir}/summary.md`);
  }
  const bad = results.cells.filter((c) => !["ok", "skipped"].includes(c.status));
  if (bad.length) console.error(`bench: ${bad.length} of ${results.cells.length} cells not ok`);
  return bad.length ? EXIT_BAD_INPUT : 0;
}

async function readConfig(path: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new InputError(`cannot read --config '${path}': ${(e as Error).message}`);
  }
  try {
    const v = JSON.parse(text);
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error("not an object");
    return v;
  } catch (e) {
    throw new InputError(`--config '${path}' is not a JSON object: ${(e as Error).message}`);
  }
}

if (import.meta.main) runCli("bench", () => main(Deno.args));
