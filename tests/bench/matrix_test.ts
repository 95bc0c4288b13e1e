import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  applyOverrides,
  formatTokens,
  parseTokens,
  planCells,
  profileSpec,
} from "../../bench/matrix.ts";
import { CpuBackend } from "../../bench/backends/cpu.ts";
import { InputError } from "../../bench/ops.ts";

describe("matrix", () => {
  it("parses and formats token counts", () => {
    assert.equal(parseTokens("16K"), 16384);
    assert.equal(parseTokens("1M"), 1048576);
    assert.equal(parseTokens("100"), 100);
    assert.equal(formatTokens(262144), "256K");
    assert.equal(formatTokens(1000), "1000");
    assert.throws(() => parseTokens("1.5M"), InputError);
  });

  it("times f64 on a GPU only when asked (it is the drift oracle there)", () => {
    for (const p of ["nightly", "full"] as const) {
      assert.deepEqual(profileSpec(p, true).dtypes, ["bf16", "f32", "f16"]);
      const asked = applyOverrides(profileSpec(p, true), undefined, { dtype: "f64" });
      assert.deepEqual(asked.dtypes, ["f64"]);
    }
    assert.ok(profileSpec("smoke", false).dtypes.includes("f64"), "the cpu backend is f64 only");
  });

  it("applies config then flags, and names bad values", () => {
    const base = profileSpec("nightly", true);
    const s = applyOverrides(base, { T: ["1K", 2048], H: 2 }, { H: "4", variant: "la,gla" });
    assert.deepEqual(s.T, [1024, 2048]);
    assert.deepEqual(applyOverrides(base, undefined, { T: "1K,1K,2K" }).T, [1024, 2048]);
    assert.equal(s.H, 4);
    assert.deepEqual(s.variants, ["la", "gla"]);
    assert.throws(() => applyOverrides(base, { nope: 1 }, {}), /unknown field 'nope'/);
    assert.throws(
      () => applyOverrides(base, undefined, { dtype: "f8" }),
      /unknown --dtype value 'f8'/,
    );
    assert.throws(
      () => applyOverrides(base, undefined, { B: "0" }),
      /--B must be a positive integer/,
    );
  });

  it("plans only cells a backend implements", () => {
    const spec = applyOverrides(profileSpec("smoke", false), undefined, {
      variant: "la",
      T: "64,128",
      dtype: "f64,bf16",
      mode: "fwd",
    });
    const cells = planCells(spec, [{ name: "cpu", impls: new CpuBackend().impls() }]);
    assert.ok(cells.length >= 2);
    assert.ok(cells.every((c) => c.dtype === "f64" && c.variant === "la" && c.mode === "fwd"));
    assert.equal(new Set(cells.map((c) => c.id)).size, cells.length);
  });
});
