/**
 * kernels/webgpu/peak.ts on the test adapter at tiny sizes: each microkernel prints one positive
 * rate, and bad flags get one line and exit 2. Needs WebGPU with timestamp-query (lavapipe has it).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";

const ROOT = new URL("../../", import.meta.url).pathname;

async function peak(args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}kernels/webgpu/peak.ts`, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

describe("kernels/webgpu/peak.ts", () => {
  it("prints a positive rate for fma, shared and copy", async () => {
    const r = await peak([
      "--samples",
      "3",
      "--workgroups",
      "8",
      "--iters",
      "64",
      "--copy-mib",
      "1",
    ]);
    assert.equal(r.code, 0, r.stderr);
    for (const [name, unit] of [["fma", "TFLOP/s"], ["shared", "TB/s"], ["copy", "TB/s"]]) {
      const m = r.stdout.match(
        new RegExp(`^${name}: ([0-9.]+) ${unit} \\(median ([0-9.]+) ms of 3\\)$`, "m"),
      );
      assert.ok(m, `no ${name} line in:\n${r.stdout}`);
      assert.ok(Number(m[2]) > 0, `${name} median ${m[2]} ms`);
    }
  });

  it("refuses a bad flag value with one line and exit 2", async () => {
    const r = await peak(["--iters", "0"]);
    assert.equal(r.code, 2);
    assert.equal(r.stderr.trim(), "peak: --iters must be an integer from 1 to 1048576, got 0");
  });
});
