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

  it("runs the full profile, or resumes a copy of a carried run folder", async () => {
    const out = await Deno.makeTempDir({ prefix: "lease-full-" });
    try {
      const env = { DRY_RUN: "1", OUT: out, FULL_STATE: `${out}/state` };
      const fresh = await lease(["full"], { ...env, BUDGET: "300" });
      assert.equal(fresh.code, 0, fresh.stderr);
      assert.match(fresh.stdout, /== bench-full \(.*budget 300s\)/);
      assert.match(
        fresh.stdout,
        /deno task bench --profile full --no-report --cell-timeout 270 --out \S+\/state\/runs/,
      );
      const missing = await lease(["full", `${out}/RUN`], env);
      assert.equal(missing.code, 2);
      assert.equal(
        missing.stderr,
        `ci/lease.sh full: ${out}/RUN is not a run folder (no run.json)\n`,
      );
      await Deno.mkdir(`${out}/RUN`);
      await Deno.writeTextFile(`${out}/RUN/run.json`, "{}");
      const again = await lease(["full", `${out}/RUN`], {
        ...env,
        BENCH_WRAP: ".handoff/run-abc1234.sh",
      });
      assert.equal(again.code, 0, again.stderr);
      assert.match(
        again.stdout,
        new RegExp(
          `^\\.handoff/run-abc1234\\.sh deno task bench --resume ${out}/state/resume/RUN ` +
            `--no-report$`,
          "m",
        ),
      );
      // The device tool replaces carried paths on each call, under the running bench: the run
      // goes on in a copy outside them, made once.
      assert.equal(await Deno.readTextFile(`${out}/state/resume/RUN/run.json`), "{}");
      await Deno.writeTextFile(`${out}/RUN/run.json`, "replaced");
      const later = await lease(["full", `${out}/RUN`], env);
      assert.equal(later.code, 0, later.stderr);
      assert.equal(await Deno.readTextFile(`${out}/state/resume/RUN/run.json`), "{}");
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  });

  it("starts the run in the background and brings its folder back when it stops", async () => {
    const out = await Deno.makeTempDir({ prefix: "lease-start-" });
    try {
      // A stand-in for `deno task bench`: makes a run folder under --out (its last argument).
      const fake = `${out}/fake-bench.sh`;
      await Deno.writeTextFile(
        fake,
        'shift 3; for a; do dir=$a; done; mkdir -p "$dir/RUN1"; echo "{}" >"$dir/RUN1/run.json"\n' +
          'echo "[1/1 0s eta 0s] la/cuda: 1 ms" >&2\n',
      );
      const state = `${out}/state`;
      const r = await lease(["full"], {
        OUT: out,
        FULL_STATE: state,
        BUDGET: "60",
        BENCH_WRAP: `bash ${fake}`,
      });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /\[1\/1 0s eta 0s\] la\/cuda: 1 ms\nfull: stopped/);
      assert.equal(await Deno.readTextFile(`${out}/RUN1/run.json`), "{}\n");
      assert.equal((await Deno.readTextFile(`${state}/run`)).trim(), `${state}/runs/RUN1`);
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  });

  it("watches the run an earlier call started instead of starting another", async () => {
    const out = await Deno.makeTempDir({ prefix: "lease-watch-" });
    const sleeper = new Deno.Command("sleep", { args: ["30"] }).spawn();
    try {
      const state = `${out}/state`;
      await Deno.mkdir(`${state}/runs/RUN`, { recursive: true });
      await Deno.writeTextFile(`${state}/pid`, `${sleeper.pid}\n`);
      await Deno.writeTextFile(`${state}/run`, `${state}/runs/RUN\n`);
      await Deno.writeTextFile(`${state}/runs/RUN/results.jsonl`, "{}\n");
      await Deno.writeTextFile(`${state}/bench.log`, "[3/9 1m00s eta 2m00s] cell: 1 ms\n");
      const r = await lease(["full"], { OUT: out, FULL_STATE: state, BUDGET: "1" });
      assert.equal(r.code, 0, r.stderr);
      assert.match(
        r.stdout,
        new RegExp(`full: watching the run started earlier \\(pid ${sleeper.pid}\\)`),
      );
      assert.doesNotMatch(r.stdout, /deno task bench/);
      assert.match(r.stdout, /\[3\/9 .*\n.*full: running/);
      assert.equal(await Deno.readTextFile(`${out}/RUN/results.jsonl`), "{}\n");
    } finally {
      sleeper.kill();
      await sleeper.status;
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

  it("times each version knob's candidate against the default, within one call", async () => {
    const out = await Deno.makeTempDir({ prefix: "lease-ab-" });
    try {
      const r = await lease(["ab", "256K"], { DRY_RUN: "1", OUT: out });
      assert.equal(r.code, 0, r.stderr);
      const budgets = [...r.stdout.matchAll(/^== (\S+) \(.*budget (\d+)s\)/gm)];
      assert.deepEqual(budgets.map((m) => m[1]), [
        "ab-deltanet",
        "ab-deltanet-grad",
        "ab-fwd-seg",
        "ab-la-out",
        "ab-rmt",
        "ab-softmax",
      ]);
      assert.ok(budgets.reduce((a, m) => a + Number(m[2]), 0) <= 570, "over one device call");
      assert.match(r.stdout, /--grid \{"rmt\.mem":\[2,1\],"rmt\.tok":\[2,1\]\} 65536 262144/);
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
