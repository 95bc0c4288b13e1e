/**
 * run-op: replay one op on a user's activations. Reads named tensors from a safetensors
 * file, runs the op forward (and backward) on the chosen backend, writes the outputs.
 */
import { findImpl } from "../backends/backend.ts";
import { openBackend, parseBackendName } from "../backends/registry.ts";
import {
  checkParams,
  defaultParams,
  inferShape,
  InputError,
  type InputName,
  type Inputs,
  MODES,
  type OpParams,
  type OpRequest,
  type Variant,
  VARIANTS,
} from "../ops.ts";
import { parseSafetensors, serializeSafetensors } from "../safetensors.ts";
import { cast, DTYPES, type Tensor } from "../tensor.ts";
import { parseBool, parseChoice, parseFlags, parseNumber, runCli } from "./cli.ts";

const HELP = `deno task run-op: run one op on tensors from a safetensors file

Usage:
  deno task run-op --variant <la|gla|deltanet|rmt|softmax> --backend <cpu|cuda|webgpu|torch>
                   [--impl NAME] --dtype <f64|f32|bf16|f16> --mode <fwd|fwdbwd>
                   --input IN.safetensors --output OUT.safetensors [parameters]

Inputs (by tensor name; F64, F32, BF16 or F16):
  q, k [B,T,H,K]   v [B,T,H,V]   g [B,T,H,K] (gla)   beta [B,T,H] (deltanet)
  mem [B,M,H,D] (rmt)   h0 [B,H,K,V], z0 [B,H,K] (optional; z0 la only)   do [B,T,H,V] (fwdbwd)

Parameters (read from the file's __metadata__ as strings; a flag overrides):
  --scale X          score/output scale              [1/sqrt(K)]
  --normalize B      la: divide by φ(q)ᵀz + 1e-6      [true]
  --qk-l2norm B      deltanet: l2-normalize q and k  [true]
  --segment-len N    rmt tokens per segment          [512]
  --chunk-size N     tokens per chunk                [64]

Other flags:
  --impl NAME        implementation (default: the backend's main kernel for the variant;
                     run with --list-impls to see them)
  --list-impls       print the backend's implementations and exit
  --cuda-library P   CUDA kernel library (else $LAK_LIBRARY, else build/liblak.so)
  -h, --help         this text

Outputs: o, final_state (la/gla/deltanet [B,H,K,V]; rmt: final memory [B,M,H,D]), final_z
(normalized la); with fwdbwd also dq, dk, dv, dg, dbeta, dmem, dh0, dz0 where they apply.
Written as F32, or F64 with --dtype f64. Exit codes: 0 ok, 1 bad input or unsupported
request, 2 backend unavailable, 3 internal error.
`;

export async function runOp(args: string[]): Promise<number> {
  const { values } = parseFlags(args, {
    variant: { type: "string" },
    backend: { type: "string" },
    impl: { type: "string" },
    dtype: { type: "string" },
    mode: { type: "string" },
    input: { type: "string" },
    output: { type: "string" },
    scale: { type: "string" },
    normalize: { type: "string" },
    "qk-l2norm": { type: "string" },
    "segment-len": { type: "string" },
    "chunk-size": { type: "string" },
    "cuda-library": { type: "string" },
    "list-impls": { type: "boolean" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const need = (flag: string, v: string | undefined) => {
    if (v === undefined) throw new InputError(`missing --${flag} (see --help)`);
    return v;
  };
  const backendName = parseBackendName(need("backend", values.backend));
  if (values["list-impls"]) {
    const backend = await openBackend(backendName, { cudaLibrary: values["cuda-library"] });
    for (const i of backend.impls()) {
      console.log(
        `${i.variant.padEnd(9)} ${i.impl.padEnd(10)}${i.default ? "*" : " "} ` +
          `${i.dtypes.join(",").padEnd(16)} ${i.modes.join(",").padEnd(11)} ${i.description}`,
      );
    }
    backend.close();
    return 0;
  }
  const variant = parseChoice("--variant", need("variant", values.variant), VARIANTS);
  const dtype = parseChoice("--dtype", need("dtype", values.dtype), DTYPES);
  const mode = parseChoice("--mode", need("mode", values.mode), MODES);
  const inputPath = need("input", values.input);
  const outputPath = need("output", values.output);

  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(inputPath);
  } catch (e) {
    throw new InputError(`cannot read --input '${inputPath}': ${(e as Error).message}`);
  }
  const file = parseSafetensors(bytes, inputPath);
  const inputs = pickInputs(file.tensors);
  const shape = inferShape(variant, mode, inputs);
  const params = resolveParams(variant, shape.K, file.metadata, values);
  checkParams(variant, params);
  const req: OpRequest = { variant, mode, params, shape };

  const backend = await openBackend(backendName, { cudaLibrary: values["cuda-library"] });
  try {
    const impl = findImpl(backend, variant, values.impl, dtype, mode);
    const op = await backend.prepare(req, inputs, { impl: impl.impl, dtype });
    try {
      await op.poison();
      await op.run();
      const out = await op.read();
      const outDtype = dtype === "f64" ? "f64" : "f32";
      const tensors: Record<string, Tensor> = {};
      for (const [name, t] of Object.entries(out)) if (t) tensors[name] = cast(t, outDtype);
      await Deno.writeFile(
        outputPath,
        serializeSafetensors(tensors, {
          variant,
          backend: backendName,
          impl: impl.impl,
          dtype,
          mode,
          ...Object.fromEntries(Object.entries(params).map(([k, v]) => [k, String(v)])),
        }),
      );
      const { B, T, H, K, V } = shape;
      console.error(
        `run-op: ${variant}/${impl.impl} ${mode} on ${backendName} ${dtype}, B=${B} T=${T} H=${H} ` +
          `K=${K} V=${V}: wrote ${Object.keys(tensors).join(", ")} to ${outputPath}`,
      );
    } finally {
      op.dispose();
    }
  } finally {
    backend.close();
  }
  return 0;
}

const INPUT_NAMES: readonly InputName[] = ["q", "k", "v", "g", "beta", "mem", "h0", "z0", "do"];

function pickInputs(tensors: Record<string, Tensor>): Inputs {
  const inputs: Inputs = {};
  for (const [name, t] of Object.entries(tensors)) {
    if (!(INPUT_NAMES as readonly string[]).includes(name)) {
      throw new InputError(
        `unknown tensor '${name}' in the input file (expected names: ${INPUT_NAMES.join(", ")})`,
      );
    }
    inputs[name as InputName] = t;
  }
  return inputs;
}

type ParamFlags = {
  scale?: string;
  normalize?: string;
  "qk-l2norm"?: string;
  "segment-len"?: string;
  "chunk-size"?: string;
};

function resolveParams(
  variant: Variant,
  K: number,
  metadata: Record<string, string>,
  flags: ParamFlags,
): OpParams {
  const p = defaultParams(variant, K);
  const pick = (key: string, flag: keyof ParamFlags) =>
    flags[flag] !== undefined
      ? { src: `--${flag}`, v: flags[flag]! }
      : metadata[key] !== undefined
      ? { src: `metadata '${key}'`, v: String(metadata[key]) }
      : undefined;
  const scale = pick("scale", "scale");
  if (scale) p.scale = parseNumber(scale.src, scale.v);
  const normalize = pick("normalize", "normalize");
  if (normalize) p.normalize = parseBool(normalize.src, normalize.v);
  const l2 = pick("qk_l2norm", "qk-l2norm");
  if (l2) p.qk_l2norm = parseBool(l2.src, l2.v);
  const seg = pick("segment_len", "segment-len");
  if (seg) p.segment_len = parseNumber(seg.src, seg.v, true);
  const chunk = pick("chunk_size", "chunk-size");
  if (chunk) p.chunk_size = parseNumber(chunk.src, chunk.v, true);
  return p;
}

if (import.meta.main) runCli("run-op", () => runOp(Deno.args));
