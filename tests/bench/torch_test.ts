/**
 * The torch backend without a GPU: its unavailable paths (one line, skipped cells in the
 * bench), its JSON-lines protocol against the worker's --fake engine (no torch needed), and
 * the worker's python unit tests (safetensors reader/writer, generator, naive ops).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  BackendUnavailable,
  type ImplInfo,
  OutOfMemory,
  Unsupported,
} from "../../bench/backends/backend.ts";
import { openTorch } from "../../bench/backends/torch.ts";
import { TORCH_IMPLS } from "../../bench/backends/torch_impls.ts";
import { defaultParams, type OpRequest } from "../../bench/ops.ts";
import { serializeSafetensors } from "../../bench/safetensors.ts";
import { cast, tensor } from "../../bench/tensor.ts";
import type { Results } from "../../bench/results.ts";
import { ROOT, runScript } from "./cli_util.ts";

const hasPython = await new Deno.Command("python3", { args: ["--version"], stdout: "null" })
  .output().then((o) => o.success).catch(() => false);

const FAKE: ImplInfo[] = [
  {
    variant: "la",
    impl: "fake-echo",
    default: true,
    dtypes: ["f32", "bf16"],
    modes: ["fwd", "fwdbwd"],
    description: "fake",
  },
  {
    variant: "la",
    impl: "fake-missing",
    default: false,
    dtypes: ["f32"],
    modes: ["fwd"],
    description: "reported missing by the worker",
  },
];

function request(T: number): OpRequest {
  return {
    variant: "la",
    mode: "fwd",
    params: defaultParams("la", 2),
    shape: { B: 1, T, H: 1, K: 2, V: 2, M: 0 },
  };
}

describe("torch backend", () => {
  it("is unavailable with one line when the interpreter is missing", async () => {
    await assert.rejects(openTorch({ python: "/nonexistent/python3" }), (e: unknown) => {
      assert.ok(e instanceof BackendUnavailable);
      assert.match(e.message, /^torch backend unavailable: \/nonexistent\/python3 is not/);
      assert.equal(e.message.split("\n").length, 1);
      return true;
    });
  });

  it("is unavailable with one line when torch or CUDA is missing", {
    skip: !hasPython,
  }, async () => {
    let backend;
    try {
      backend = await openTorch();
    } catch (e) {
      assert.ok(e instanceof BackendUnavailable, String(e));
      assert.match(e.message, /^torch backend unavailable: .*(torch|CUDA)/);
      assert.equal(e.message.split("\n").length, 1);
      return;
    }
    // A machine with torch and a GPU: the catalog it reports is a subset of ours.
    const names = new Set(TORCH_IMPLS.map((i) => `${i.variant}/${i.impl}`));
    for (const i of backend.impls()) assert.ok(names.has(`${i.variant}/${i.impl}`));
    backend.close();
  });

  it("speaks the JSON-lines protocol (fake engine)", { skip: !hasPython }, async () => {
    const b = await openTorch({ args: ["--fake"], catalog: FAKE });
    try {
      assert.equal(b.name, "torch");
      assert.equal(b.info().backend, "torch");
      assert.match(b.info().name, /fake/);
      assert.deepEqual(b.impls().map((i) => i.impl), ["fake-echo"]);
      assert.deepEqual(b.info().impls_missing, { "fake-missing": "not built in this engine" });
      await assert.rejects(
        b.prepare(request(3), { random: { seed: 1 } }, { impl: "fake-missing", dtype: "f32" }),
        Unsupported,
      );

      // Given inputs travel through a safetensors file, cast to the storage dtype.
      const v = tensor("f32", [1, 3, 1, 2], new Float32Array([1, 2, 3, 4, 5, 6]));
      const q = tensor("f32", [1, 3, 1, 2]);
      const op = await b.prepare(request(3), { q, k: q, v }, { impl: "fake-echo", dtype: "f32" });
      await op.poison();
      const poisoned = await op.read();
      assert.ok(Number.isNaN(poisoned.o!.data[0]));
      assert.deepEqual(poisoned.o!.shape, [1, 3, 1, 2]);
      assert.deepEqual(poisoned.final_state!.shape, [1, 1, 2, 2]);
      assert.deepEqual(poisoned.final_z!.shape, [1, 1, 2]);
      await op.run();
      const out = await op.read();
      assert.deepEqual([...out.o!.data], [1, 2, 3, 4, 5, 6]);
      const prefix = await op.inputs(2);
      assert.deepEqual([...prefix.v!.data], [1, 2, 3, 4]);
      assert.deepEqual(await op.time({ cold: true, samples: 3 }), [0.001, 0.002, 0.003]);
      op.dispose();
      await assert.rejects(op.run(), /after dispose/);

      // Drawn inputs: python draws, inputs(tokens) reads the prefix back through a file.
      const drawn = await b.prepare(request(5), { random: { seed: 7 } }, {
        impl: "fake-echo",
        dtype: "bf16",
      });
      const x = await drawn.inputs(2);
      assert.deepEqual(Object.keys(x).sort(), ["k", "q", "v"]);
      assert.deepEqual(x.q!.shape, [1, 2, 1, 2]);
      assert.ok([...x.q!.data].some((e) => e !== 0));
      drawn.dispose();

      await assert.rejects(
        b.prepare(request(13), { random: { seed: 1 } }, { impl: "fake-echo", dtype: "f32" }),
        OutOfMemory,
      );
      const mem = b.memory();
      assert.equal(typeof mem.peak_bytes, "number");
      b.resetPeak();
    } finally {
      b.close();
    }
    await assert.rejects(b.prepare(request(3), { random: { seed: 1 } }, {
      impl: "fake-echo",
      dtype: "f32",
    }));
  });

  it("bench records the requested torch cells as skipped with the reason", async () => {
    const out = await Deno.makeTempDir({ prefix: "bench-torch-" });
    try {
      const r = await runScript("bench/main.ts", [
        "--backend=cpu,torch",
        "--variant=la,softmax",
        "--T=64",
        "--H=1",
        "--K=8",
        "--V=8",
        "--mode=fwd",
        "--dtype=f64,bf16",
        "--max-samples=2",
        "--no-report",
        `--out=${out}`,
      ], { LAK_PYTHON: "/nonexistent/python3" });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /torch: torch backend unavailable: \/nonexistent\/python3 is not/);
      const json = r.stdout.match(/results: (\S+)/)?.[1];
      const res: Results = JSON.parse(await Deno.readTextFile(json!));
      const torch = res.cells.filter((c) => c.backend === "torch");
      const want = TORCH_IMPLS.filter((i) =>
        (i.variant === "la" || i.variant === "softmax") && i.dtypes.includes("bf16")
      );
      assert.equal(torch.length, want.length);
      for (const c of torch) {
        assert.equal(c.status, "skipped");
        assert.match(c.message, /torch backend unavailable/);
      }
      assert.ok(res.cells.some((c) => c.backend === "cpu" && c.status === "ok"));
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  });

  it("python unit tests of the worker", { skip: !hasPython }, async () => {
    const dir = await Deno.makeTempDir({ prefix: "torch-py-" });
    try {
      const file = `${dir}/ts.safetensors`;
      const q = tensor("f32", [1, 3, 1, 2], new Float32Array([0, 1, 2, 3, 4, 5]));
      const v = cast(tensor("f32", [1, 3, 1, 1], new Float32Array([1.5, -2, 0.25])), "bf16");
      await Deno.writeFile(
        file,
        serializeSafetensors({ q, v }, { writer: "bench/safetensors.ts" }),
      );
      const r = await new Deno.Command("python3", {
        args: ["-m", "unittest", "discover", "-s", "tests/bench", "-p", "test_torch_worker.py"],
        cwd: ROOT,
        env: { LAK_TS_SAFETENSORS: file },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(r.stderr);
      assert.equal(r.code, 0, text);
      assert.match(text, /^OK/m);
      console.log(text.trim().split("\n").slice(-3).join(" | "));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});
