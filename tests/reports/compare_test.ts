import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { compareResults, markdownReport, terminalReport } from "../../reports/compare.ts";
import type { Cell, Results } from "../../bench/results.ts";
import { cell, drift, noisy, results } from "./fixtures.ts";
import { oneLineError, runScript } from "../bench/cli_util.ts";

/** Many cells whose samples come from one distribution; `seed` draws a fresh run of it. */
function matrix(seed: number, slow: (c: Cell) => number = () => 1): Results {
  const cells: Cell[] = [];
  let i = 0;
  for (const variant of ["la", "gla", "deltanet"] as const) {
    for (const dtype of ["bf16", "f32"]) {
      for (const mode of ["fwd", "fwdbwd"] as const) {
        for (const T of [1024, 4096, 16384, 65536, 262144]) {
          for (const backend of ["cuda", "webgpu"]) {
            const proto = cell({ variant, dtype, mode, T, backend });
            const cv = backend === "webgpu" ? 0.05 : 0.02;
            const n = backend === "webgpu" ? 12 : 25;
            const med = T / 1000 * (mode === "fwd" ? 1 : 2.5);
            cells.push(cell({
              variant,
              dtype,
              mode,
              T,
              backend,
              samples: noisy(seed * 100003 + i++, n, med * slow(proto), cv),
            }));
          }
        }
      }
    }
  }
  return results(cells);
}

describe("compare", () => {
  it("stays quiet on two runs drawn from the same distribution", () => {
    for (const seed of [1, 2, 3]) {
      const c = compareResults(matrix(seed), matrix(seed + 10));
      assert.equal(c.rows.length, 120);
      const loud = c.rows.filter((r) => r.verdict === "slower" || r.verdict === "faster");
      assert.deepEqual(loud.map((r) => r.id), []);
      assert.equal(c.regressions, 0);
      // The quieter cuda cells (cv 2%, n 25) are tight enough to call same; noisier ones may be ambiguous.
      const cuda = c.rows.filter((r) => r.base.backend === "cuda");
      assert.ok(cuda.every((r) => r.verdict === "same"), headlineOf(c));
    }
  });

  it("notes cells whose samples were not steady, keeping the verdict", () => {
    const target = "gla/cuda/chunk/bf16/fwd/B1/T16384/H8/K64/V64";
    const head = matrix(2);
    const c0 = head.cells.find((c) => c.id === target)!;
    c0.stats = { ...c0.stats!, steady: false };
    const c = compareResults(matrix(1), head);
    const row = c.rows.find((r) => r.id === target)!;
    assert.equal(row.note, "unsteady samples in head");
    assert.equal(
      row.verdict,
      compareResults(matrix(1), matrix(2)).rows.find((r) => r.id === target)!.verdict,
    );
    assert.ok(c.rows.filter((r) => r.id !== target).every((r) => !/unsteady/.test(r.note)));
  });

  it("flags a real 20% slowdown and nothing else", () => {
    const target = "gla/cuda/chunk/bf16/fwd/B1/T16384/H8/K64/V64";
    const c = compareResults(matrix(1), matrix(2, (p) => (p.id === target ? 1.2 : 1)));
    const slower = c.rows.filter((r) => r.verdict === "slower");
    assert.deepEqual(slower.map((r) => r.id), [target]);
    assert.ok(slower[0].ci![0] > 1.05 && slower[0].pAdjusted! < 0.05);
    assert.equal(c.regressions, 1);
    assert.equal(c.rows[0].id, target, "regressions sort first");
    const fast = compareResults(matrix(2, (p) => (p.id === target ? 1.2 : 1)), matrix(1));
    assert.deepEqual(fast.rows.filter((r) => r.verdict === "faster").map((r) => r.id), [target]);
    assert.equal(fast.regressions, 0);
  });

  it("a 3% change under the 5% threshold is never a regression", () => {
    const c = compareResults(matrix(1), matrix(2, () => 1.03));
    assert.equal(c.rows.filter((r) => r.verdict === "slower").length, 0);
  });

  it("counts correctness and drift regressions, lists cells in one file only", () => {
    const base = results([
      cell({ T: 1024 }),
      cell({ T: 2048 }),
      cell({ T: 4096 }),
      cell({ T: 8192, status: "oom" }),
      cell({ T: 16384 }),
      cell({ variant: "gla" }),
    ], { drift: [drift({ T: 65536 }), drift({ T: 16384 }), drift({ T: 4096 })] });
    const head = results([
      cell({ T: 1024, status: "incorrect" }),
      cell({ T: 2048, status: "oom" }),
      cell({ T: 4096 }),
      cell({ T: 8192 }),
      cell({ T: 16384, pass: false }),
      cell({ variant: "deltanet" }),
    ], { drift: [drift({ T: 65536, pass: false }), drift({ T: 16384 }), drift({ T: 1024 })] });
    const c = compareResults(base, head);
    const verdict = (T: number) => c.rows.find((r) => r.base.shape.T === T)!.verdict;
    assert.equal(verdict(1024), "broken");
    assert.equal(verdict(2048), "broken");
    assert.equal(verdict(8192), "fixed");
    assert.equal(verdict(16384), "broken");
    assert.equal(c.regressions, 4);
    assert.deepEqual(c.onlyBase, ["gla/cuda/chunk/bf16/fwd/B1/T4096/H8/K64/V64"]);
    assert.deepEqual(c.onlyHead, ["deltanet/cuda/chunk/bf16/fwd/B1/T4096/H8/K64/V64"]);
    assert.deepEqual(c.drift.map((d) => d.verdict).sort(), ["broken", "pass"]);
    assert.deepEqual(c.driftOnlyBase, ["la/cuda//bf16/fp64/4096"]);
    const term = terminalReport(c);
    assert.match(term, /only in base: gla\//);
    assert.match(term, /compare: 4 regressions/);
    const md = markdownReport(c);
    assert.match(md, /\| \*\*broken\*\* \| `la\/cuda\/chunk\/bf16\/fwd\/B1\/T1024/);
    assert.match(md, /Only in head: `deltanet/);
    assert.match(md, /<details>/);
  });

  it("notes a change of GPU between the runs", () => {
    const c = compareResults(results([cell({})]), results([cell({})], {}, "NVIDIA A100"));
    assert.deepEqual(c.notes, [
      "cuda: base ran on NVIDIA H100, head on NVIDIA A100; timings may differ",
    ]);
  });
});

function headlineOf(c: ReturnType<typeof compareResults>): string {
  return c.rows.map((r) => `${r.verdict} ${r.id}`).join("\n");
}

describe("compare CLI", () => {
  it("exits 0 without regressions, 1 with one, and writes markdown", async () => {
    const dir = await Deno.makeTempDir({ prefix: "compare-" });
    try {
      const base = results([cell({ samples: noisy(1, 20, 2, 0.01) })]);
      const same = results([cell({ samples: noisy(2, 20, 2, 0.01) })]);
      const slow = results([cell({ samples: noisy(3, 20, 2.4, 0.01) })]);
      for (const [name, r] of [["base", base], ["same", same], ["slow", slow]] as const) {
        await Deno.writeTextFile(`${dir}/${name}.json`, JSON.stringify(r));
      }
      const ok = await runScript("reports/compare.ts", [`${dir}/base.json`, `${dir}/same.json`]);
      assert.equal(ok.code, 0, ok.stderr);
      assert.match(ok.stdout, /compare: no regressions \(1 same\)/);
      const bad = await runScript("reports/compare.ts", [
        `${dir}/base.json`,
        `${dir}/slow.json`,
        "--threshold",
        "0.1",
        "--markdown",
        `${dir}/c.md`,
      ]);
      assert.equal(bad.code, 1, bad.stderr);
      assert.match(bad.stdout, /^slower +la\/cuda/m);
      assert.match(await Deno.readTextFile(`${dir}/c.md`), /threshold ±10%/);
      const help = await runScript("reports/compare.ts", ["--help"]);
      assert.equal(help.code, 0);
      assert.match(help.stdout, /--threshold F/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  it("bad input is one line and exit 1", async () => {
    const dir = await Deno.makeTempDir({ prefix: "compare-" });
    try {
      await Deno.writeTextFile(`${dir}/x.json`, `{"schema":"other"}`);
      const cases: [string[], RegExp][] = [
        [[`${dir}/x.json`, `${dir}/x.json`], /not a linattn-bench\/results\/v1 results file/],
        [[`${dir}/missing.json`, `${dir}/x.json`], /cannot read/],
        [[`${dir}/x.json`], /expected BASE.json HEAD.json/],
        [["a", "b", "--alpha", "2"], /--alpha must be in/],
        [["a", "b", "--bogus"], /bogus/],
      ];
      for (const [args, re] of cases) {
        const r = await runScript("reports/compare.ts", args);
        assert.equal(r.code, 1, r.stderr);
        assert.match(oneLineError(r), re);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});
