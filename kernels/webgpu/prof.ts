/**
 * Per-pass device times of the WebGPU chunk kernels (and softmax flash) at B1 H8 D64 (hot, median of 5), to see
 * which pass a change should target, and tile sweeps: the bench times the same passes as one
 * span, with the default tiles.
 *
 *   deno run -A kernels/webgpu/prof.ts [flags] [T ...]      (default T: 65536 1048576)
 */
import { parseArgs } from "node:util";
import { openWebGpu, passTimes } from "../../bench/backends/webgpu.ts";
import { defaultParams, type Mode, type OpRequest, type Variant } from "../../bench/ops.ts";
import type { Dtype } from "../../bench/tensor.ts";

const HELP = `kernels/webgpu/prof.ts: per-pass device times of the WebGPU chunk kernels

Usage: deno run -A kernels/webgpu/prof.ts [flags] [T ...]   (default T: 65536 1048576)

  --variant LIST   la,gla,deltanet,rmt,softmax  [la,gla,deltanet,rmt]; softmax is its flash
                   impl, O(T²): keep T ≤ 64K
  --dtype LIST     f32,f16,bf16                 [bf16]
  --mode LIST      fwd,fwdbwd                   [fwd]
  --chunk N        chunk_size                   [64]
  --grid JSON      tile sweep: an object of LAB_WEBGPU_TUNE keys to lists of values, e.g.
                   '{"la.cps":[16,32,64],"la.sub":[16,32]}'; every combination is timed
                   (a combination that does not fit falls back or says why); each variant
                   takes only its own keys ("rmt.tok" for rmt), so
                   '{"softmax.tok":[1,2],"rmt.tok":[1,2]}' times each variant twice
  -h, --help       this text

One line per (T, variant, dtype, mode, tile combination): the whole request's median and each
pass's, from timestamp queries (the backend refuses without them).`;

/** Every combination of a grid's values: {"a":[1,2],"b":[3]} → [{a:1,b:3},{a:2,b:3}]. */
export function gridCombos(json: string): Record<string, number>[] {
  let obj: unknown;
  try {
    obj = JSON.parse(json);
  } catch {
    throw new Error(`--grid is not JSON: ${json}`);
  }
  if (typeof obj !== "object" || obj === null || Array.isArray(obj)) {
    throw new Error(`--grid must be a JSON object of key → list of integers, got ${json}`);
  }
  let combos: Record<string, number>[] = [{}];
  for (const [key, raw] of Object.entries(obj)) {
    const list = Array.isArray(raw) ? raw : [raw];
    if (list.length === 0 || !list.every((v) => Number.isInteger(v) && v > 0)) {
      throw new Error(`--grid ${key} must list positive integers, got ${JSON.stringify(raw)}`);
    }
    combos = combos.flatMap((c) => list.map((v: number) => ({ ...c, [key]: v })));
  }
  return combos;
}

/**
 * The grid's combinations that concern `variant`: each restricted to its `<variant>.` keys,
 * duplicates dropped, so that '{"softmax.tok":[1,2],"rmt.tok":[1,2]}' times softmax and rmt
 * twice each rather than four times; a variant that no key names runs once, on its defaults ({}).
 */
export function combosFor(
  combos: Record<string, number>[],
  variant: string,
): Record<string, number>[] {
  const seen = new Map<string, Record<string, number>>();
  for (const c of combos) {
    const own = Object.fromEntries(Object.entries(c).filter(([k]) => k.startsWith(`${variant}.`)));
    seen.set(JSON.stringify(own), own);
  }
  return [...seen.values()];
}

async function main(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      variant: { type: "string", default: "la,gla,deltanet,rmt" },
      dtype: { type: "string", default: "bf16" },
      mode: { type: "string", default: "fwd" },
      chunk: { type: "string" },
      grid: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const Ts = positionals.length > 0 ? positionals.map(Number) : [65536, 1048576];
  if (!Ts.every((t) => Number.isInteger(t) && t > 0)) {
    throw new Error(`sequence lengths must be positive integers, got ${positionals.join(" ")}`);
  }
  const variants = values.variant.split(",") as Variant[];
  const combos = values.grid ? gridCombos(values.grid) : undefined;
  const stray = Object.keys(combos?.[0] ?? {}).filter((k) =>
    !variants.some((v) => k.startsWith(`${v}.`))
  );
  if (stray.length > 0) {
    throw new Error(`--grid ${stray.join(", ")}: no variant of --variant ${values.variant}`);
  }
  const backend = await openWebGpu();
  try {
    for (const T of Ts) {
      for (const variant of variants) {
        for (const dtype of values.dtype.split(",") as Dtype[]) {
          for (const mode of values.mode.split(",") as Mode[]) {
            if (mode === "fwdbwd" && (variant === "rmt" || variant === "softmax")) continue;
            for (const tune of combos ? combosFor(combos, variant) : [undefined]) {
              if (tune) Deno.env.set("LAB_WEBGPU_TUNE", JSON.stringify(tune));
              const tag = `${variant} ${dtype} ${mode} T=${T}${
                tune && Object.keys(tune).length > 0 ? ` ${JSON.stringify(tune)}` : ""
              }`;
              console.log(await profile(backend, variant, dtype, mode, T, values.chunk, tag));
            }
          }
        }
      }
    }
  } finally {
    backend.close();
  }
  return 0;
}

async function profile(
  backend: Awaited<ReturnType<typeof openWebGpu>>,
  variant: Variant,
  dtype: Dtype,
  mode: Mode,
  T: number,
  chunk: string | undefined,
  tag: string,
): Promise<string> {
  const params = defaultParams(variant, 64);
  if (chunk) params.chunk_size = Number(chunk);
  const req: OpRequest = {
    variant,
    mode,
    params,
    shape: { B: 1, T, H: 8, K: 64, V: 64, M: variant === "rmt" ? 16 : 0 },
  };
  try {
    const impl = variant === "softmax" ? "flash" : "chunk";
    const op = await backend.prepare(req, { random: { seed: 1 } }, { impl, dtype });
    try {
      await op.run();
      const passes = await passTimes(op, 5);
      const total = (await op.time({ cold: false, samples: 5 })).sort((a, b) => a - b)[2];
      const parts = passes.map((p) => `${p.label} ${p.ms.toFixed(3)}`).join(", ");
      return `${tag}: ${total.toFixed(3)} ms (${parts})`;
    } finally {
      op.dispose();
    }
  } catch (e) {
    return `${tag}: ${(e as Error).message.split("\n")[0]}`;
  }
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (e) {
    console.error(`prof: error: ${(e as Error).message.split("\n")[0]}`);
    Deno.exit(2);
  }
}
