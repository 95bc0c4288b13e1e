/**
 * deno task drift: how far low-precision storage (bf16, f16) drifts from the fp32 fallback and
 * from fp64 along the sequence, per variant, backend and T. Inputs are shaped like what models
 * produce (elu+1 features and l2-normalized keys happen inside the ops; GLA gates
 * logsigmoid(x)/16, strong decay, zero gates).
 */
import { type Backend, type BackendName, type RandomSource } from "./backends/backend.ts";
import { openBackend, parseBackendName } from "./backends/registry.ts";
import { parseFlags, runCli } from "./cli/cli.ts";
import { randomTensor } from "./inputs.ts";
import { formatTokens, parseTokens } from "./matrix.ts";
import {
  defaultParams,
  InputError,
  type InputName,
  type Inputs,
  inputShape,
  type OpRequest,
  type Outputs,
  requiredInputs,
  type Variant,
  VARIANTS,
} from "./ops.ts";
import { type DriftEntry, provenance, writeJsonAtomic } from "./results.ts";
import { type Dtype, elementAt, type Tensor, toF64 } from "./tensor.ts";
import { oracle } from "../kernels/reference/index.ts";
import type { RefInputs } from "../kernels/reference/types.ts";

const HELP = `deno task drift: low-precision drift against the fp32 fallback and fp64

Usage: deno task drift [flags]

  --backend LIST     cuda,webgpu,torch (default cuda,webgpu: those available; the fp64
                     reference is the CPU oracle)
  --variant LIST     la,gla,deltanet,rmt,softmax            [all]
  --T LIST           sequence lengths, e.g. 4K,64K,1M       [4K,16K,64K,256K,1M with a GPU]
  --B N --H N --D N  batch, heads, head dim (K = V = D)     [1, 8, 64]
  --fp64-max-T N     longest T checked against the fp64 CPU oracle  [16K; softmax/rmt 4K];
                     longer T of la, gla, deltanet use the fp64 recurrent CUDA kernel
                     (recurrent impl, dtype f64) when liblak and a GPU are there
  --blocks N         blocks of positions in per_position     [32]
  --threshold X      rel_rms limit of each low-precision output against its reference
                     (default bf16 2e-2, f16 1e-2)
  --seed N           input seed                              [random, recorded]
  --out DIR          writes DIR/drift.json                   [out/drift-<time>]
  -h, --help         this text

Each entry compares o (and final_state) of a bf16/f16 run with the same op's f32 run on the
same inputs, and with fp64 (CPU oracle, or the CUDA fp64 recurrent kernel on the same inputs:
host-drawn ones, or cuda's own device draws); per_position is the error of o in each
block of positions along the sequence. GLA runs three gate scenarios up to T = 64K:
logsigmoid(x)/16, strong decay (g = -5) and zero gates (g = 0); above 64K inputs are drawn on
the device (model scenario only). Exit 1 when any entry exceeds its threshold or
any measurement fails to run, 2 when no backend is available.
`;

type Scenario = "model" | "strong-decay" | "zero-gates";

/** Above this T inputs are drawn on the device, where only the model scenario exists. */
const HOST_INPUTS_MAX_T = 65536;

function scenarios(variant: Variant, T: number): Scenario[] {
  return variant === "gla" && T <= HOST_INPUTS_MAX_T
    ? ["model", "strong-decay", "zero-gates"]
    : ["model"];
}

function makeInputs(req: OpRequest, scenario: Scenario, seed: number): Inputs {
  const inputs: Inputs = {};
  requiredInputs(req.variant, "fwd").forEach((name: InputName, i) => {
    const dist = name === "g" ? "gate" : name === "beta" ? "beta" : "normal";
    const t = randomTensor(inputShape(name, req.shape), "f32", dist, (seed + i * 7919) >>> 0);
    if (name === "g" && scenario !== "model") t.data.fill(scenario === "strong-decay" ? -5 : 0);
    inputs[name] = t;
  });
  return inputs;
}

/** ‖a − b‖/‖b‖ over all elements, and over `blocks` runs of positions of a [B,T,H,V] tensor. */
export function blockErrors(
  out: Tensor,
  ref: Float64Array,
  blocks: number,
): { rel: number; maxAbs: number; perBlock: number[]; block: number } {
  const [B, T, ...rest] = out.shape;
  const row = rest.reduce((a, b) => a * b, 1);
  const block = Math.max(1, Math.ceil(T / blocks));
  const nb = Math.ceil(T / block);
  const num = new Float64Array(nb), den = new Float64Array(nb);
  let maxAbs = 0;
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const k = Math.floor(t / block);
      for (let j = 0; j < row; j++) {
        const i = (b * T + t) * row + j;
        const d = elementAt(out, i) - ref[i];
        num[k] += d * d;
        den[k] += ref[i] * ref[i];
        if (!(Math.abs(d) <= maxAbs)) maxAbs = Math.abs(d);
      }
    }
  }
  const sum = (a: Float64Array) => a.reduce((x, y) => x + y, 0);
  const rel = (n: number, d: number) => (d > 0 ? Math.sqrt(n / d) : Math.sqrt(n));
  return {
    rel: rel(sum(num), sum(den)),
    maxAbs,
    perBlock: Array.from(num, (n, k) => rel(n, den[k])),
    block,
  };
}

async function runOnce(
  backend: Backend,
  req: OpRequest,
  source: Inputs | RandomSource,
  dtype: Dtype,
  readInputs: boolean,
  implName?: string,
): Promise<{ outputs: Outputs; inputs?: Inputs }> {
  const impl = implName ??
    backend.impls().find((i) => i.variant === req.variant && i.default)?.impl;
  if (!impl) throw new InputError(`${backend.name} has no default ${req.variant} impl`);
  const op = await backend.prepare(req, source, { impl, dtype });
  try {
    await op.poison();
    await op.run();
    const outputs = await op.read();
    return { outputs, inputs: readInputs ? await op.inputs(req.shape.T) : undefined };
  } finally {
    op.dispose();
  }
}

function relError(a: Tensor, b: Float64Array): number {
  let n = 0, d = 0;
  for (let i = 0; i < b.length; i++) {
    const e = elementAt(a, i) - b[i];
    n += e * e;
    d += b[i] * b[i];
  }
  return d > 0 ? Math.sqrt(n / d) : Math.sqrt(n);
}

async function main(args: string[]): Promise<number> {
  const { values } = parseFlags(args, {
    backend: { type: "string" },
    variant: { type: "string" },
    T: { type: "string" },
    B: { type: "string" },
    H: { type: "string" },
    D: { type: "string" },
    "fp64-max-T": { type: "string" },
    blocks: { type: "string" },
    threshold: { type: "string" },
    seed: { type: "string" },
    out: { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const int = (flag: string, v: string | undefined, d: number) => {
    if (v === undefined) return d;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) {
      throw new InputError(`--${flag} must be a positive integer, got '${v}'`);
    }
    return n;
  };
  const B = int("B", values.B, 1), H = int("H", values.H, 8), D = int("D", values.D, 64);
  const blocks = int("blocks", values.blocks, 32);
  const fp64Max = values["fp64-max-T"] ? parseTokens(values["fp64-max-T"]) : 16384;
  const thresholdFlag = values.threshold !== undefined ? Number(values.threshold) : undefined;
  if (thresholdFlag !== undefined && !(thresholdFlag > 0)) {
    throw new InputError(`--threshold must be a positive number, got '${values.threshold}'`);
  }
  const variants = values.variant
    ? values.variant.split(",").map((v) => {
      if (!(VARIANTS as readonly string[]).includes(v)) {
        throw new InputError(`unknown --variant value '${v}' (choose from ${VARIANTS.join(", ")})`);
      }
      return v as Variant;
    })
    : [...VARIANTS];
  const Ts = values.T ? values.T.split(",").map(parseTokens) : undefined;
  const seed = values.seed !== undefined
    ? Number(values.seed)
    : Math.floor(Math.random() * 2 ** 31);
  if (!Number.isInteger(seed)) {
    throw new InputError(`--seed must be an integer, got '${values.seed}'`);
  }
  const names: BackendName[] = values.backend
    ? values.backend.split(",").map((b) => parseBackendName(b.trim()))
    : ["cuda", "webgpu"];

  const backends: Backend[] = [];
  for (const name of names) {
    try {
      backends.push(await openBackend(name));
    } catch (e) {
      console.error(`drift: ${name}: ${(e as Error).message.split("\n")[0]}`);
    }
  }
  const lowp = backends.filter((b) =>
    b.impls().some((i) => i.dtypes.includes("bf16") || i.dtypes.includes("f16"))
  );
  if (lowp.length === 0) {
    console.error("drift: error: no backend with low-precision storage is available here");
    for (const b of backends) b.close();
    return 2;
  }
  const gpu = lowp.some((b) =>
    b.name === "cuda" || !(b.info() as { isFallbackAdapter?: boolean }).isFallbackAdapter
  );
  const lengths = Ts ?? (gpu ? [4096, 16384, 65536, 262144, 1048576] : [256, 1024]);
  // Above --fp64-max-T the fp64 reference is the CUDA recurrent impl at dtype f64 (an fp64
  // kernel sharing nothing with the chunk kernels), on the same inputs: host-drawn ones for
  // any backend, device-drawn ones only for cuda (lak_fill_random draws f64 as the f32 values).
  let gpuOracle = backends.find((b) => b.name === "cuda");
  if (!gpuOracle && lengths.some((T) => T > fp64Max)) {
    try {
      gpuOracle = await openBackend("cuda");
      backends.push(gpuOracle);
    } catch {
      // No CUDA here: fp64 entries stop at --fp64-max-T.
    }
  }
  const hasGpuOracle = (variant: Variant) =>
    gpuOracle?.impls().some((i) =>
      i.variant === variant && i.impl === "recurrent" && i.dtypes.includes("f64")
    ) ?? false;
  const entries: DriftEntry[] = [];
  let errors = 0;
  const started = new Date();
  for (const backend of lowp) {
    for (const variant of variants) {
      const impl = backend.impls().find((i) => i.variant === variant && i.default);
      if (!impl || !impl.modes.includes("fwd")) continue;
      const low = impl.dtypes.filter((d): d is "bf16" | "f16" => d === "bf16" || d === "f16");
      if (!low.length || !impl.dtypes.includes("f32")) continue;
      for (const T of lengths) {
        const shape = { B, T, H, K: D, V: D, M: variant === "rmt" ? 16 : 0 };
        const req: OpRequest = { variant, mode: "fwd", shape, params: defaultParams(variant, D) };
        const maxT = variant === "softmax" || variant === "rmt" ? Math.min(fp64Max, 4096) : fp64Max;
        for (const scenario of scenarios(variant, T)) {
          const label = `${variant}/${backend.name}/${impl.impl} T=${formatTokens(T)} ${scenario}`;
          try {
            // Both runs see the same f32 draws; the low-precision run stores them rounded.
            const source: Inputs | RandomSource = T > HOST_INPUTS_MAX_T
              ? { random: { seed } }
              : makeInputs(req, scenario, seed);
            const { outputs: f32, inputs } = await runOnce(backend, req, source, "f32", T <= maxT);
            let fp64: Record<string, Float64Array> | undefined;
            let fp64Label = `fp64 ${variant} oracle (CPU)`;
            if (inputs) {
              const x: RefInputs = {};
              for (const [n, t] of Object.entries(inputs)) x[n as InputName] = toF64(t!);
              fp64 = oracle(variant).forward(x, shape, req.params) as Record<string, Float64Array>;
            } else if (
              gpuOracle && hasGpuOracle(variant) &&
              (!("random" in source) || backend === gpuOracle)
            ) {
              const r = (await runOnce(gpuOracle, req, source, "f64", false, "recurrent")).outputs;
              fp64 = { o: toF64(r.o!), final_state: toF64(r.final_state!) };
              fp64Label = `fp64 ${variant} recurrent kernel (cuda, dtype f64)`;
            }
            for (const dtype of low) {
              const out = (await runOnce(backend, req, source, dtype, false)).outputs;
              const refs: [string, string, Record<string, Float64Array>][] = [
                [`${dtype}/fp32`, `${backend.name} ${impl.impl} f32 on the same inputs`, {
                  o: toF64(f32.o!),
                  ...(f32.final_state ? { final_state: toF64(f32.final_state) } : {}),
                }],
              ];
              if (fp64) refs.push([`${dtype}/fp64`, fp64Label, fp64]);
              for (const [pair, reference, ref] of refs) {
                const e = blockErrors(out.o!, ref.o, blocks);
                const threshold = thresholdFlag ?? (dtype === "bf16" ? 2e-2 : 1e-2);
                const entry: DriftEntry = {
                  variant,
                  backend: backend.name,
                  impl: impl.impl,
                  T,
                  dtypes: pair,
                  scenario,
                  reference,
                  rel_rms: e.rel,
                  max_abs: e.maxAbs,
                  per_position: e.perBlock,
                  block: e.block,
                  final_state_rel: out.final_state && ref.final_state
                    ? relError(out.final_state, ref.final_state)
                    : null,
                  threshold,
                  pass: e.rel <= threshold,
                };
                entries.push(entry);
                console.error(
                  `${entry.pass ? "ok  " : "FAIL"} ${label} ${pair}: rel_rms ${
                    e.rel.toExponential(2)
                  } ` +
                    `(first block ${e.perBlock[0].toExponential(2)}, last ${
                      e.perBlock[e.perBlock.length - 1].toExponential(2)
                    })${
                      entry.final_state_rel !== null
                        ? `, final state ${entry.final_state_rel.toExponential(2)}`
                        : ""
                    }`,
                );
              }
            }
          } catch (err) {
            errors++;
            console.error(`ERR  ${label}: ${(err as Error).message.split("\n")[0]}`);
          }
        }
      }
    }
  }
  const dir = values.out ?? `out/drift-${started.toISOString().replace(/[:.]/g, "-")}`;
  await Deno.mkdir(dir, { recursive: true });
  await writeJsonAtomic(`${dir}/drift.json`, {
    schema: "linattn-bench/drift/v1",
    run: {
      started_at: started.toISOString(),
      finished_at: new Date().toISOString(),
      argv: args,
      seed,
    },
    provenance: await provenance(backends.map((b) => b.info()), []),
    drift: entries,
  });
  for (const b of backends) b.close();
  console.log(`drift: ${dir}/drift.json`);
  const failed = entries.filter((e) => !e.pass).length;
  if (failed) console.error(`drift: ${failed} of ${entries.length} entries over their threshold`);
  if (errors) console.error(`drift: ${errors} measurements failed to run`);
  return failed || errors ? 1 : 0;
}

if (import.meta.main) runCli("drift", () => main(Deno.args));
