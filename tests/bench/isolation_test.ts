/**
 * A kernel fault, a hang and an out-of-memory end only their own cell, and an interrupted run
 * resumes. Uses tests/fixtures/fake_lak.c, a host-memory stand-in for liblak built here with
 * the system C compiler, whose forward crashes at T=64, hangs at T=128 and returns zeros at
 * T=192, and whose allocator refuses anything over 1 GiB.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { buildFakeLak, runScript } from "./cli_util.ts";
import type { Cell, Results } from "../../bench/results.ts";

let dir = "";
let lib = "";

describe("bench failure isolation", () => {
  before(async () => {
    dir = await Deno.makeTempDir({ prefix: "isolation-" });
    lib = await buildFakeLak(dir);
  });
  after(async () => {
    await Deno.remove(dir, { recursive: true });
  });

  it("records crash, hang, wrong answer and OOM per cell, then resumes", async () => {
    const args = [
      "--backend=cuda",
      `--cuda-library=${lib}`,
      "--variant=la",
      "--dtype=f32",
      "--mode=fwd",
      "--T=64,128,192,1M",
      "--cell-timeout=3",
      "--max-samples=3",
      `--out=${dir}/out`,
    ];
    const r = await runScript("bench/main.ts", args);
    assert.equal(r.code, 1, r.stderr);
    const path = r.stdout.match(/results: (\S+)/)![1];
    const res: Results = JSON.parse(await Deno.readTextFile(path));
    const byT = new Map(res.cells.map((c) => [c.shape.T, c]));
    assert.equal(byT.get(64)!.status, "error");
    assert.match(byT.get(64)!.message, /worker process died \(signal SIGSEGV\)/);
    assert.equal(byT.get(128)!.status, "timeout");
    assert.equal(byT.get(192)!.status, "incorrect");
    assert.equal(byT.get(192)!.correctness!.pass, false);
    assert.equal(byT.get(1048576)!.status, "oom");
    assert.match(byT.get(1048576)!.message, /out of memory/);

    // Interrupt after two cells: keep two lines of results.jsonl, drop results.json.
    const runDir = path.replace(/\/results\.json$/, "");
    const lines = (await Deno.readTextFile(`${runDir}/results.jsonl`)).trim().split("\n");
    await Deno.writeTextFile(`${runDir}/results.jsonl`, lines.slice(0, 2).join("\n") + '\n{"trunc');
    await Deno.remove(path);
    const again = await runScript("bench/main.ts", [`--resume=${runDir}`]);
    assert.equal(again.code, 1, again.stderr);
    assert.match(again.stderr, /resuming .* \(2 cells already done\)/);
    const resumed: Results = JSON.parse(await Deno.readTextFile(path));
    assert.equal(resumed.run.id, res.run.id);
    assert.equal(resumed.run.seed, res.run.seed);
    assert.deepEqual(resumed.cells.map((c: Cell) => c.status), res.cells.map((c) => c.status));

    // A run folder from another commit is refused: one results.json, one code version.
    const run = JSON.parse(await Deno.readTextFile(`${runDir}/run.json`));
    assert.equal(typeof run.git.commit, "string");
    run.git.commit = "0000000000000000000000000000000000000000";
    await Deno.writeTextFile(`${runDir}/run.json`, JSON.stringify(run));
    const other = await runScript("bench/main.ts", [`--resume=${runDir}`]);
    assert.equal(other.code, 1, other.stderr);
    assert.match(other.stderr, /that run started at commit 0{40}, this tree is at /);
    assert.doesNotMatch(other.stderr, /^\s+at /m);
  });
});
