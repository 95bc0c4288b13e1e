import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { oneLineError, runScript } from "./cli_util.ts";
import { parseSafetensors, serializeSafetensors } from "../../bench/safetensors.ts";
import { randomTensor } from "../../bench/inputs.ts";
import { type Tensor, tensor, toF64 } from "../../bench/tensor.ts";
import { oracle } from "../../kernels/reference/index.ts";

const SCRIPT = "bench/cli/run_op.ts";
let dir = "";
const seed = Math.floor(Math.random() * 1e9);

function laInputs(extra: Record<string, Tensor> = {}): Record<string, Tensor> {
  const q = randomTensor([1, 9, 2, 4], "f32", "normal", seed);
  const k = randomTensor([1, 9, 2, 4], "f32", "normal", seed + 1);
  const v = randomTensor([1, 9, 2, 3], "f32", "normal", seed + 2);
  return { q, k, v, ...extra };
}

async function writeInput(
  name: string,
  tensors: Record<string, Tensor>,
  meta: Record<string, string> = {},
) {
  const path = `${dir}/${name}.safetensors`;
  await Deno.writeFile(path, serializeSafetensors(tensors, meta));
  return path;
}

const base = (input: string, output: string) => [
  "--variant",
  "la",
  "--backend",
  "cpu",
  "--dtype",
  "f64",
  "--mode",
  "fwd",
  "--input",
  input,
  "--output",
  output,
];

describe(`run-op (seed ${seed})`, () => {
  before(async () => {
    dir = await Deno.makeTempDir({ prefix: "runop-" });
  });
  after(async () => {
    await Deno.remove(dir, { recursive: true });
  });

  it("runs la on cpu in f64 and writes outputs equal to the oracle's", async () => {
    const inputs = laInputs({ do: randomTensor([1, 9, 2, 3], "f32", "normal", seed + 3) });
    const input = await writeInput("la", inputs, { normalize: "false", scale: "0.7" });
    const output = `${dir}/la-out.safetensors`;
    const r = await runScript(SCRIPT, base(input, output).map((a) => (a === "fwd" ? "fwdbwd" : a)));
    assert.equal(r.code, 0, r.stderr);
    const out = parseSafetensors(await Deno.readFile(output)).tensors;
    assert.deepEqual(Object.keys(out).sort(), ["dk", "dq", "dv", "final_state", "o"]);
    assert.equal(out.o.dtype, "f64");
    const x = Object.fromEntries(Object.entries(inputs).map(([n, t]) => [n, toF64(t)]));
    const shape = { B: 1, T: 9, H: 2, K: 4, V: 3, M: 0 };
    const params = {
      scale: 0.7,
      normalize: false,
      qk_l2norm: false,
      segment_len: 512,
      chunk_size: 64,
    };
    const ref = oracle("la").backward(x, shape, params);
    for (const name of ["o", "final_state", "dq", "dk", "dv"] as const) {
      assert.deepEqual(Array.from(out[name].data), Array.from(ref[name]!), name);
    }
  });

  it("lets a flag override the file's metadata", async () => {
    const input = await writeInput("meta", laInputs(), { normalize: "false" });
    const a = `${dir}/a.safetensors`, b = `${dir}/b.safetensors`;
    assert.equal((await runScript(SCRIPT, base(input, a))).code, 0);
    assert.equal((await runScript(SCRIPT, [...base(input, b), "--normalize", "true"])).code, 0);
    const ta = parseSafetensors(await Deno.readFile(a)).tensors;
    const tb = parseSafetensors(await Deno.readFile(b)).tensors;
    assert.equal(ta.final_z, undefined);
    assert.ok(tb.final_z);
  });

  const bad: [
    string,
    (input: string, out: string) => string[] | Promise<string[]>,
    RegExp,
    number,
  ][] = [
    [
      "a missing input file",
      (_i, o) => base(`${dir}/nope.safetensors`, o),
      /cannot read --input/,
      1,
    ],
    [
      "a misnamed tensor",
      async (_i, o) => {
        const { q, k, v } = laInputs();
        return base(await writeInput("misnamed", { q, key: k, v }), o);
      },
      /unknown tensor 'key'/,
      1,
    ],
    [
      "a missing tensor",
      async (_i, o) => {
        const { q, v } = laInputs();
        return base(await writeInput("missing", { q, v }), o);
      },
      /missing input tensor 'k'/,
      1,
    ],
    [
      "a shape mismatch",
      async (_i, o) => {
        const { q, v } = laInputs();
        return base(await writeInput("shape", { q, k: tensor("f32", [1, 8, 2, 4]), v }), o);
      },
      /input 'k' has shape \[1,8,2,4\]/,
      1,
    ],
    [
      "an unknown variant",
      (i, o) => base(i, o).map((a) => (a === "la" ? "mamba" : a)),
      /unknown --variant 'mamba'/,
      1,
    ],
    [
      "an unknown backend",
      (i, o) => base(i, o).map((a) => (a === "cpu" ? "tpu" : a)),
      /unknown backend 'tpu'/,
      1,
    ],
    [
      "an unknown dtype",
      (i, o) => base(i, o).map((a) => (a === "f64" ? "f8" : a)),
      /unknown --dtype 'f8'/,
      1,
    ],
    ["an unknown impl", (i, o) => [...base(i, o), "--impl", "magic"], /unknown impl 'magic'/, 1],
    [
      "a dtype the backend lacks",
      (i, o) => base(i, o).map((a) => (a === "f64" ? "bf16" : a)),
      /does not support dtype bf16/,
      1,
    ],
    [
      "a bad parameter",
      (i, o) => [...base(i, o), "--chunk-size", "x"],
      /--chunk-size must be an integer/,
      1,
    ],
    ["an unknown flag", (i, o) => [...base(i, o), "--fast"], /--fast/, 1],
    [
      "a missing cuda library",
      (i, o) => [
        ...base(i, o).map((a) => (a === "cpu" ? "cuda" : a)),
        "--cuda-library",
        `${dir}/none.so`,
      ],
      /cuda backend unavailable/,
      2,
    ],
  ];
  for (const [what, args, pattern, code] of bad) {
    it(`rejects ${what} with one line and exit ${code}`, async () => {
      const input = await writeInput("ok", laInputs());
      const r = await runScript(SCRIPT, await args(input, `${dir}/x.safetensors`));
      assert.equal(r.code, code, r.stderr);
      assert.match(oneLineError(r), pattern);
      assert.match(r.stderr, /^run-op: error: /);
    });
  }

  it("prints help", async () => {
    const r = await runScript(SCRIPT, ["--help"]);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /--variant/);
  });
});
