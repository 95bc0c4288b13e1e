import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ROOT, runBash } from "./cli_util.ts";

function lease(args: string[], env: Record<string, string>) {
  return runBash([`${ROOT}ci/lease.sh`, ...args], env);
}

describe("ci/lease.sh", () => {
  it("plans correctness before measurement, each step with a budget", async () => {
    const out = await Deno.makeTempDir({ prefix: "lease-" });
    try {
      const r = await lease(["all", "256K"], { DRY_RUN: "1", OUT: out });
      assert.equal(r.code, 0, r.stderr);
      const steps = [...r.stdout.matchAll(/^== (\S+) \(.*budget (\d+)s\)/gm)].map((m) => m[1]);
      assert.deepEqual(steps, [
        "cuda-ops",
        "webgpu",
        "memcheck",
        "racecheck",
        "bench-chunk",
        "bench-baselines",
        "bench-webgpu",
        "webgpu-passes",
        "drift",
      ]);
      assert.match(r.stdout, /prof\.ts .* 65536 262144/);
      assert.match(r.stdout, /--T 16K,64K,256K,256K/);
      assert.match(await Deno.readTextFile(`${out}/lease.log`), /== done/);
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  });

  it("runs the full profile, or resumes a carried run folder", async () => {
    const out = await Deno.makeTempDir({ prefix: "lease-full-" });
    try {
      const fresh = await lease(["full"], { DRY_RUN: "1", OUT: out, BUDGET: "300" });
      assert.equal(fresh.code, 0, fresh.stderr);
      assert.match(fresh.stdout, /== bench-full \(.*budget 300s\)/);
      assert.match(
        fresh.stdout,
        /bench --profile full --no-report --cell-timeout 150 --out \S+\/full/,
      );
      const again = await lease(["full", "out/full/RUN"], { DRY_RUN: "1", OUT: out });
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stdout, /bench --resume out\/full\/RUN --no-report/);
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  });

  it("sweeps the WebGPU tiles at the given length", async () => {
    const out = await Deno.makeTempDir({ prefix: "lease-sweep-" });
    try {
      const r = await lease(["sweep", "64K"], { DRY_RUN: "1", OUT: out });
      assert.equal(r.code, 0, r.stderr);
      const steps = [...r.stdout.matchAll(/^== (\S+) \(.*budget/gm)].map((m) => m[1]);
      assert.deepEqual(steps, ["sweep-la", "sweep-gla", "sweep-deltanet", "sweep-bwd"]);
      assert.match(r.stdout, /prof\.ts --variant la --dtype bf16 --grid \{"la\.cps".* 65536/);
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  });

  it("names its usage on a bad step", async () => {
    const r = await lease(["nope"], {});
    assert.equal(r.code, 2);
    assert.match(r.stderr, /usage: ci\/lease.sh check\|measure/);
  });
});

describe("ci/pack-commit.sh", () => {
  it("refuses what is not a commit, in one line", async () => {
    const r = await runBash([`${ROOT}ci/pack-commit.sh`, "no-such-commit"]);
    assert.equal(r.code, 2);
    assert.equal(r.stderr, "pack-commit: 'no-such-commit' is not a commit here\n");
  });

  it("packs a commit and runs a command inside it, naming the commit", async () => {
    const dir = await Deno.makeTempDir({ prefix: "pack-" });
    try {
      const sha = (await runBash(["-c", "git rev-parse HEAD"])).stdout.trim();
      const r = await runBash([`${ROOT}ci/pack-commit.sh`, "HEAD", dir], { PACK_NO_BUILD: "1" });
      assert.equal(r.code, 0, r.stderr);
      const short = sha.slice(0, 7);
      // CI installs mesa-vulkan-drivers, so Mesa's device-select layer is there to pack.
      const layer = await Deno.stat("/usr/lib/x86_64-linux-gnu/libVkLayer_MESA_device_select.so")
        .then(() => true, () => false);
      assert.match(
        r.stdout,
        new RegExp(
          `packed ${sha} into .*tree-${short}\\.tar\\.xz, ${layer ? "vk-layer/, " : ""}run-`,
        ),
      );
      const inside = await runBash(
        [
          `${dir}/run-${short}.sh`,
          "bash",
          "-c",
          'test -f deno.json && echo "$LAB_GIT_COMMIT $LAK_REPO ${VK_INSTANCE_LAYERS:-none}"',
        ],
        { TMPDIR: dir },
      );
      assert.equal(inside.code, 0, inside.stderr);
      assert.equal(
        inside.stdout.trim(),
        `${sha} ${ROOT.replace(/\/$/, "")} ${layer ? "VK_LAYER_MESA_device_select" : "none"}`,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});
