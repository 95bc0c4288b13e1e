import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { toBmf, toGab, toJunit } from "../../reports/export.ts";
import { fullRun } from "./fixtures.ts";
import { oneLineError, runScript } from "../bench/cli_util.ts";

describe("export", () => {
  it("github-action-benchmark: one customSmallerIsBetter entry per timed cell", () => {
    const r = fullRun();
    const gab = toGab(r);
    assert.equal(gab.length, r.cells.filter((c) => c.status === "ok").length);
    const first = r.cells[0];
    assert.deepEqual(Object.keys(gab[0]).sort(), ["extra", "name", "range", "unit", "value"]);
    assert.equal(gab[0].name, first.id);
    assert.equal(gab[0].unit, "ms");
    assert.equal(gab[0].value, first.stats!.median_ms);
    assert.match(gab[0].range!, /^± [\d.]+$/);
    assert.match(gab[0].extra, /NVIDIA H100/);
  });

  it("Bencher BMF: latency in nanoseconds with the CI as bounds", () => {
    const r = fullRun();
    const bmf = toBmf(r);
    const c = r.cells[0];
    assert.deepEqual(bmf[c.id], {
      latency: {
        value: c.stats!.median_ms * 1e6,
        lower_value: c.stats!.ci95_ms[0] * 1e6,
        upper_value: c.stats!.ci95_ms[1] * 1e6,
      },
    });
    assert.equal(bmf["la/cuda/chunk/bf16/fwd/B1/T65536/H8/K64/V64"] !== undefined, true);
    assert.equal(bmf["deltanet/cuda/chunk/bf16/fwd/B1/T65536/H8/K64/V64"], undefined);
  });

  it("JUnit: failures for not-ok cells and failed drift checks, skipped stays skipped", () => {
    const r = fullRun();
    r.cells[0].message = `bad <"&'> \u0001 chars`;
    r.cells[0].status = "error";
    const xml = toJunit(r);
    assert.match(xml, /^<\?xml version="1\.0" encoding="UTF-8"\?>/);
    const cases = xml.match(/<testcase /g)!.length;
    assert.equal(cases, r.cells.length + r.drift.length);
    assert.match(xml, /tests="25" failures="5" errors="0" skipped="1"/);
    assert.match(xml, /<failure type="oom" message="oom: oom at T=65536"\/>/);
    assert.match(xml, /<failure type="incorrect"/);
    assert.match(xml, /<skipped message="not implemented"\/>/);
    assert.match(xml, /<failure type="drift" message="rel_rms 0\.08 &gt; 0\.05"\/>/);
    assert.ok(xml.includes(`bad &lt;&quot;&amp;&apos;&gt;  chars`));
    assert.ok(!xml.includes("\u0001"));
  });

  it("CLI writes each format, and fails with one line on bad input", async () => {
    const dir = await Deno.makeTempDir({ prefix: "export-" });
    try {
      await Deno.writeTextFile(`${dir}/r.json`, JSON.stringify(fullRun()));
      for (const f of ["gab", "bmf", "junit"]) {
        const r = await runScript("reports/export.ts", [
          `${dir}/r.json`,
          "--format",
          f,
          "--out",
          `${dir}/out.${f}`,
        ]);
        assert.equal(r.code, 0, r.stderr);
        const text = await Deno.readTextFile(`${dir}/out.${f}`);
        if (f !== "junit") JSON.parse(text);
      }
      const bad = await runScript("reports/export.ts", [
        `${dir}/r.json`,
        "--format",
        "csv",
        "--out",
        "x",
      ]);
      assert.equal(bad.code, 1);
      assert.match(oneLineError(bad), /unknown --format 'csv'/);
      const none = await runScript("reports/export.ts", ["--format", "gab", "--out", "x"]);
      assert.match(oneLineError(none), /expected one RESULTS\.json/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});
