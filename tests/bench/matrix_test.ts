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
import { newCell } from "../../bench/runner.ts";

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

  it("sets the chunked variants' chunk size, named in the cell id only when not 64", () => {
    const base = applyOverrides(profileSpec("smoke", false), undefined, {
      variant: "la,rmt",
      T: "256",
      dtype: "f64",
      mode: "fwd",
    });
    const catalog = [{ name: "cpu" as const, impls: new CpuBackend().impls() }];
    const plain = planCells(base, catalog);
    assert.ok(plain.every((c) => !/\/C\d+$/.test(c.id)), plain.map((c) => c.id).join(" "));
    assert.equal(newCell(plain[0], base).cell.params.chunk_size, 64);

    const s = applyOverrides(base, { chunk_size: 16 }, { "chunk-size": "32" });
    assert.equal(s.chunk_size, 32);
    const cells = planCells(s, catalog);
    const la = cells.filter((c) => c.variant === "la");
    const rmt = cells.filter((c) => c.variant === "rmt");
    assert.ok(la.length > 0 && rmt.length > 0);
    assert.ok(la.every((c) => c.id.endsWith("/C32")), la.map((c) => c.id).join(" "));
    assert.ok(rmt.every((c) => !c.id.includes("/C")), rmt.map((c) => c.id).join(" "));
    assert.equal(newCell(la[0], s).cell.params.chunk_size, 32);
    assert.throws(() => applyOverrides(base, undefined, { "chunk-size": "0" }), /--chunk-size/);
  });

  it("takes the warm-up's minimum device time from config or flag, 0 allowed", () => {
    const base = profileSpec("nightly", true);
    assert.equal(base.warmup_min_s, 1);
    assert.equal(profileSpec("smoke", false).warmup_min_s, 0);
    assert.equal(applyOverrides(base, { warmup_min_s: 0.5 }, {}).warmup_min_s, 0.5);
    assert.equal(
      applyOverrides(base, { warmup_min_s: 0.5 }, { "warmup-time": "0" }).warmup_min_s,
      0,
    );
    assert.throws(
      () => applyOverrides(base, undefined, { "warmup-time": "-1" }),
      /--warmup-time must be seconds \(0 or more\), got '-1'/,
    );
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
