/**
 * deno task bench: the benchmark matrix on every backend this machine has. Streams cells to
 * results.jsonl as they finish, then writes results.json and a self-contained report.html.
 */
import { BACKENDS } from "./backends/backend.ts";
import { parseBackendName, probeBackends } from "./backends/registry.ts";
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
import { type Cell, provenance, type Results, SCHEMA, writeJsonAtomic } from "./results.ts";
import { runCell } from "./runner.ts";
import { Progress } from "./progress.ts";
import { renderReport } from "../reports/report.ts";

const HELP = `deno task bench: run the benchmark matrix on the backends this machine has

Usage: deno task bench [flags]

Matrix (comma-separated lists; default: the profile's):
  --profile NAME     smoke | nightly | full   [nightly with a GPU backend, else smoke]
  --config FILE      JSON object of matrix fields (backends, variants, impls, T, dtypes,
                     modes, B, H, K, V, M, timing, ci_target, warmup, min_samples,
                     max_samples, time_cap_s, check_tokens, input_sets); flags override it
  --backend LIST     cpu,cuda,webgpu
  --variant LIST     la,gla,deltanet,rmt,softmax
  --impl LIST        implementation names (see: deno task run-op --backend X --list-impls)
  --T LIST           sequence lengths, e.g. 16K,64K,256K,1M
  --dtype LIST       f64,f32,bf16,f16 (each backend runs those it supports)
  --mode LIST        fwd,fwdbwd
  --B N --H N --K N --V N --M N   batch, heads, key dim, value dim, rmt memory rows

Timing:
  --timing MODE      cold (L2 flushed before each sample) | hot   [cold]
  --ci-target F      stop when the median's 95% CI half-width is within F   [0.01]
  --min-samples N    --max-samples N    --time-cap SECONDS (sampling per cell)
  --seed N           input seed (default: random, recorded in results.json)

Output:
  --out DIR          parent folder of the run folder   [out]
  --cuda-library P   CUDA kernel library (else $LAK_LIBRARY, else build/liblak.so)
  --no-report        skip report.html
  -h, --help         this text

Writes DIR/<run-id>/results.jsonl (one cell per line, as cells finish), results.json and
report.html, and prints both paths. Exit codes: 0 all cells ok or skipped, 1 bad flags or a
cell incorrect/error/oom/timeout, 2 no backend available.
`;

async function main(args: string[]): Promise<number> {
  const { values } = parseFlags(args, {
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
    "max-samples": { type: "string" },
    "time-cap": { type: "string" },
    seed: { type: "string" },
    out: { type: "string" },
    "cuda-library": { type: "string" },
    "no-report": { type: "boolean" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const started = new Date();
  const config = values.config ? await readConfig(values.config) : undefined;
  const requested = values.backend
    ? values.backend.split(",").map((b) => parseBackendName(b.trim()))
    : BACKENDS;
  // Validate every flag before opening any device, so a typo costs nothing.
  const profileFlag = values.profile
    ? parseChoice("--profile", values.profile, PROFILES)
    : undefined;
  applyOverrides(profileSpec(profileFlag ?? "smoke", false), config, values as MatrixFlags);
  const seed = values.seed !== undefined
    ? Number(values.seed)
    : Math.floor(Math.random() * 2 ** 31);
  if (!Number.isInteger(seed)) {
    throw new InputError(`--seed must be an integer, got '${values.seed}'`);
  }

  const { open, unavailable } = await probeBackends(requested, {
    cudaLibrary: values["cuda-library"],
  });
  for (const u of unavailable) console.error(`bench: ${u.name}: ${u.reason}`);
  const gpu = open.some((b) =>
    b.name === "cuda" || (b.name === "webgpu" && !(b.info() as { fallback?: boolean }).fallback)
  );
  const profile: Profile = profileFlag ?? (gpu ? "nightly" : "smoke");
  const spec = applyOverrides(profileSpec(profile, gpu), config, values as MatrixFlags);
  const backends = open.filter((b) => spec.backends.includes(b.name));
  if (backends.length === 0) {
    console.error(
      `bench: error: none of the backends ${spec.backends.join(", ")} is available here`,
    );
    return 2;
  }
  const cells = planCells(spec, backends);
  if (cells.length === 0) {
    throw new InputError(
      "the matrix is empty: no backend implements the requested variants/impls/dtypes/modes",
    );
  }

  const id = `${started.toISOString().replace(/[:.]/g, "-")}`;
  const dir = `${values.out ?? "out"}/${id}`;
  await Deno.mkdir(dir, { recursive: true });
  console.error(
    `bench: profile ${profile}, ${cells.length} cells on ${
      backends.map((b) => b.name).join(", ")
    }, ` +
      `T ${
        spec.T.map(formatTokens).join(",")
      }, B${spec.B} H${spec.H} K${spec.K} V${spec.V}, seed ${seed}`,
  );
  const jsonl = await Deno.open(`${dir}/results.jsonl`, {
    write: true,
    create: true,
    append: true,
  });
  const progress = new Progress(cells.length);
  const done: Cell[] = [];
  for (const [i, planned] of cells.entries()) {
    progress.start(i, planned.id);
    const cell = await runCell(planned, spec, (seed + i * 1_000_003) >>> 0);
    done.push(cell);
    await jsonl.write(new TextEncoder().encode(JSON.stringify(cell) + "\n"));
    progress.finish(i, cell);
  }
  jsonl.close();

  const results: Results = {
    schema: SCHEMA,
    run: {
      id,
      started_at: started.toISOString(),
      finished_at: new Date().toISOString(),
      profile,
      argv: args,
      seed,
    },
    provenance: await provenance(
      backends.map((b) => b.info()),
      unavailable.map((u) => ({ backend: u.name, reason: u.reason })),
    ),
    cells: done,
    drift: [],
  };
  for (const b of backends) b.close();
  await writeJsonAtomic(`${dir}/results.json`, results);
  console.log(`results: ${dir}/results.json`);
  if (!values["no-report"]) {
    await Deno.writeTextFile(`${dir}/report.html`, await renderReport(results));
    console.log(`report:  ${dir}/report.html`);
  }
  const bad = done.filter((c) => !["ok", "skipped"].includes(c.status));
  if (bad.length) console.error(`bench: ${bad.length} of ${done.length} cells not ok`);
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
