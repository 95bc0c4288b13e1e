import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { blockErrors } from "../../bench/drift.ts";
import { tensor } from "../../bench/tensor.ts";
import { runScript } from "./cli_util.ts";

// In CI an adapter (lavapipe) must exist, so there the test runs and fails without one.
const hasAdapter = !!(await navigator.gpu?.requestAdapter());

describe("drift", () => {
  it("measures error per block of positions", () => {
    // B=1, T=4, one channel: error only in the last two positions.
    const out = tensor("f64", [1, 4, 1, 1], Float64Array.from([1, 1, 1.1, 1.2]));
    const e = blockErrors(out, Float64Array.from([1, 1, 1, 1]), 2);
    assert.equal(e.block, 2);
    assert.deepEqual(e.perBlock.map((x) => Math.round(x * 1e6) / 1e6), [
      0,
      Math.round(Math.sqrt(0.05 / 2) * 1e6) / 1e6,
    ]);
    assert.ok(Math.abs(e.maxAbs - 0.2) < 1e-12);
  });

  it("writes drift.json and fails when a threshold is exceeded", {
    skip: hasAdapter || Deno.env.get("CI") === "true" ? false : "no WebGPU adapter here",
  }, async () => {
    const out = await Deno.makeTempDir({ prefix: "drift-" });
    try {
      const args = [
        "--backend=webgpu",
        "--variant=la",
        "--T=64",
        "--H=1",
        "--D=16",
        `--out=${out}`,
      ];
      const ok = await runScript("bench/drift.ts", args, { XDG_RUNTIME_DIR: "/tmp" });
      assert.equal(ok.code, 0, ok.stderr);
      const doc = JSON.parse(await Deno.readTextFile(`${out}/drift.json`));
      assert.equal(doc.schema, "linattn-bench/drift/v1");
      assert.ok(doc.drift.length >= 4);
      for (const d of doc.drift) {
        assert.ok(d.pass && d.rel_rms > 0 && d.per_position.length >= 1, JSON.stringify(d));
      }
      const strict = await runScript("bench/drift.ts", [...args, "--threshold=1e-12"], {
        XDG_RUNTIME_DIR: "/tmp",
      });
      assert.equal(strict.code, 1, strict.stderr);
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  });
});
