/**
 * deno task report: a run folder rendered whether or not the run finished, an unfinished one
 * marked as such and never given a results.json.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { oneLineError, runScript } from "../bench/cli_util.ts";

let out = "";
let runDir = "";

describe("deno task report", () => {
  before(async () => {
    out = await Deno.makeTempDir({ prefix: "render-" });
    const r = await runScript("bench/main.ts", [
      "--backend=cpu",
      "--variant=la",
      "--impl=recurrent",
      "--T=64,128",
      "--H=1",
      "--K=8",
      "--V=8",
      "--mode=fwd",
      "--max-samples=3",
      "--no-report",
      `--out=${out}`,
    ]);
    assert.equal(r.code, 0, r.stderr);
    runDir = r.stdout.match(/results: (\S+)\/results\.json/)![1];
  });
  after(async () => {
    await Deno.remove(out, { recursive: true });
  });

  it("records the plan's size and the provenance in run.json at the start", async () => {
    const run = JSON.parse(await Deno.readTextFile(`${runDir}/run.json`));
    assert.equal(run.cells_planned, 2);
    assert.equal(run.provenance.devices[0].backend, "cpu");
  });

  it("renders a finished run from results.json, without the unfinished banner", async () => {
    const r = await runScript("reports/render.ts", [runDir]);
    assert.equal(r.code, 0, r.stderr);
    const html = await Deno.readTextFile(`${runDir}/report.html`);
    assert.match(html, /linattn-bench run /);
    assert.doesNotMatch(html, /Unfinished run/);
  });

  it("renders an unfinished run from run.json and results.jsonl, and says so", async () => {
    const cut = `${out}/cut`;
    await Deno.mkdir(cut);
    await Deno.copyFile(`${runDir}/run.json`, `${cut}/run.json`);
    const lines = (await Deno.readTextFile(`${runDir}/results.jsonl`)).trim().split("\n");
    await Deno.writeTextFile(`${cut}/results.jsonl`, lines[0] + "\n" + '{"cut sh');
    const r = await runScript("reports/render.ts", [cut, `--out=${out}/pages`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /unfinished run: 1 of 2 cells done/);
    const md = await Deno.readTextFile(`${out}/pages/summary.md`);
    assert.match(md, /\*\*Unfinished run\*\*: 1 of 2 planned cells finished/);
    assert.ok(md.includes(`deno task bench --resume ${cut}`), md);
    assert.match(await Deno.readTextFile(`${out}/pages/report.html`), /Unfinished run:/);
    assert.equal(await Deno.stat(`${cut}/results.json`).then(() => true, () => false), false);
  });

  it("names a folder that is not a run in one line", async () => {
    const r = await runScript("reports/render.ts", [out]);
    assert.equal(r.code, 1);
    assert.match(oneLineError(r), /report '.*': cannot read run\.json/);
    const none = await runScript("reports/render.ts", []);
    assert.equal(none.code, 1);
    assert.match(oneLineError(none), /give one run folder/);
  });
});
