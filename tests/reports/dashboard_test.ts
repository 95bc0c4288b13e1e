import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { buildDashboard, renderDashboard, trendCharts } from "../../reports/dashboard.ts";
import { cell, fullRun, history, results } from "./fixtures.ts";
import { oneLineError, runScript } from "../bench/cli_util.ts";

describe("dashboard", () => {
  it("finds the step in the slowed series and none in the steady one", () => {
    const d = buildDashboard(history(12, 7).reverse().map((results) => ({ results })));
    assert.deepEqual(d.runs.map((r) => r.results.run.id.slice(8, 10)), [
      "01",
      "02",
      "03",
      "04",
      "05",
      "06",
      "07",
      "08",
      "09",
      "10",
      "11",
      "12",
    ]);
    assert.equal(d.groups.size, 1);
    assert.equal(d.changes.length, 1);
    const [c] = d.changes;
    assert.equal(c.T, 16384);
    assert.equal(c.run, 7);
    assert.ok(c.after / c.before > 1.2 && c.after / c.before < 1.3);
    const [chart] = trendCharts(d);
    assert.match(chart.title, /^la cuda\/chunk bf16 fwd B1 H8 K64 V64 cold on NVIDIA H100$/);
    const marks = chart.datasets.find((x) => x.label === "change point")!;
    assert.deepEqual(marks.points.map((p) => p[0]), [chart.x.labels![7]]);
    const t64 = chart.datasets.find((x) => x.label === "T=64K")!;
    assert.equal(t64.points.length, 11, "the oom run has no point");
  });

  it("keeps series of different GPUs apart and drops duplicate runs", () => {
    const a = results([cell({})]);
    const b = results([cell({})], {}, "NVIDIA A100");
    b.run = { ...b.run, id: "other", started_at: "2026-02-01T00:00:00.000Z" };
    const d = buildDashboard([{ results: a }, { results: b }, { results: a }]);
    assert.equal(d.runs.length, 2);
    assert.equal(d.groups.size, 2);
  });

  it("renders change points, the latest matrix and run links", async () => {
    const runs = history(8, 4).map((results) => ({ results, reportPath: "/x/report.html" }));
    const html = await renderDashboard(buildDashboard(runs));
    assert.match(html, /Chart\.js v4/);
    assert.doesNotMatch(html, /<(script|link|img)[^>]+(src|href)=/i);
    assert.match(html, /<a href="runs\/2026-01-08T03-00-00-000Z\.html">/);
    assert.match(html, /class="st oom">oom</);
    assert.match(html, /first run of the new level/);
  });
});

describe("dashboard CLI", () => {
  it("builds a site from a history folder, copying each run's report", async () => {
    const dir = await Deno.makeTempDir({ prefix: "dash-" });
    try {
      const runs = [...history(6, 3), fullRun()];
      for (const [i, r] of runs.entries()) {
        await Deno.mkdir(`${dir}/history/n${i}/deep`, { recursive: true });
        await Deno.writeTextFile(`${dir}/history/n${i}/deep/results.json`, JSON.stringify(r));
      }
      await Deno.writeTextFile(`${dir}/history/n0/deep/report.html`, "<p>run 0</p>");
      await Deno.mkdir(`${dir}/history/junk`);
      await Deno.writeTextFile(`${dir}/history/junk/results.json`, "{not json");
      const r = await runScript("reports/dashboard.ts", [
        "--history",
        `${dir}/history`,
        "--out",
        `${dir}/site`,
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /dashboard: 7 runs/);
      assert.match(r.stderr, /skipping .*junk\/results\.json: .* is not JSON/);
      assert.equal(
        await Deno.readTextFile(`${dir}/site/runs/2026-01-01T03-00-00-000Z.html`),
        "<p>run 0</p>",
      );
      assert.match(await Deno.readTextFile(`${dir}/site/index.html`), /linattn-bench: 7 runs/);
      await Deno.mkdir(`${dir}/none`);
      const empty = await runScript("reports/dashboard.ts", [
        "--history",
        `${dir}/none`,
        "--out",
        `${dir}/x`,
      ]);
      assert.equal(empty.code, 1);
      assert.match(oneLineError(empty), /no results\.json under/);
      const missing = await runScript("reports/dashboard.ts", ["--out", "x"]);
      assert.match(oneLineError(missing), /--history and --out are required/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});
