import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { combosFor, gridCombos } from "../../kernels/webgpu/prof.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

async function prof(args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}kernels/webgpu/prof.ts`, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

describe("kernels/webgpu/prof.ts", () => {
  it("expands a tile grid into every combination", () => {
    assert.deepEqual(gridCombos('{"la.cps":[16,32],"la.sub":[8,16]}'), [
      { "la.cps": 16, "la.sub": 8 },
      { "la.cps": 16, "la.sub": 16 },
      { "la.cps": 32, "la.sub": 8 },
      { "la.cps": 32, "la.sub": 16 },
    ]);
    assert.deepEqual(gridCombos('{"gla.kt":8}'), [{ "gla.kt": 8 }]);
    assert.throws(() => gridCombos("[1]"), /JSON object/);
    assert.throws(() => gridCombos('{"la.cps":[0]}'), /positive integers/);
    assert.throws(() => gridCombos("{"), /not JSON/);
  });

  it("gives each variant only its own grid keys, without duplicates", () => {
    const grid = gridCombos('{"softmax.tok":[1,2],"rmt.tok":[1,2],"rmt.mem":[1]}');
    assert.equal(grid.length, 4);
    assert.deepEqual(combosFor(grid, "softmax"), [{ "softmax.tok": 1 }, { "softmax.tok": 2 }]);
    assert.deepEqual(combosFor(grid, "rmt"), [
      { "rmt.tok": 1, "rmt.mem": 1 },
      { "rmt.tok": 2, "rmt.mem": 1 },
    ]);
    assert.deepEqual(combosFor(grid, "la"), [{}]);
  });

  it("has --help and rejects a bad grid with one line before opening a device", async () => {
    const help = await prof(["--help"]);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /--grid JSON/);
    const bad = await prof(["--grid", '{"la.cps":"x"}']);
    assert.equal(bad.code, 2);
    assert.equal(bad.stderr.trim().split("\n").length, 1, bad.stderr);
    assert.match(bad.stderr, /^prof: error: --grid la\.cps must list positive integers/);
    const stray = await prof(["--variant", "softmax", "--grid", '{"sofmax.tok":[2]}']);
    assert.equal(stray.code, 2);
    assert.match(stray.stderr, /^prof: error: --grid sofmax\.tok: no variant of --variant softmax/);
  });
});
