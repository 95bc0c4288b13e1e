import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ROOT } from "../bench/cli_util.ts";
import { copyRun, latest, mergeDrift } from "../../ci/publish.ts";
import { drift, history } from "./fixtures.ts";
import type { Results } from "../../bench/results.ts";

async function sh(cmd: string, args: string[], env: Record<string, string> = {}, cwd = ROOT) {
  const out = await new Deno.Command(cmd, {
    args,
    cwd,
    env: { NO_COLOR: "1", GIT_TERMINAL_PROMPT: "0", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, out: dec.decode(out.stdout) + dec.decode(out.stderr) };
}

async function writeRun(dir: string, r: Results): Promise<string> {
  const runDir = `${dir}/${r.run.id}`;
  await Deno.mkdir(runDir, { recursive: true });
  await Deno.writeTextFile(`${runDir}/results.json`, JSON.stringify(r));
  return runDir;
}

describe("ci/publish.ts", () => {
  it("copies runs into the history layout and finds the latest one", async () => {
    const dir = await Deno.makeTempDir({ prefix: "publish-" });
    try {
      const [a, b, c] = history(3, 9);
      assert.equal(await latest(`${dir}/history`), undefined);
      for (const r of [b, a, c]) {
        const runDir = await writeRun(`${dir}/runs`, r);
        await Deno.writeTextFile(`${runDir}/report.html`, "<p>report</p>");
        const dest = await copyRun(runDir, `${dir}/history`);
        assert.equal(dest, `${dir}/history/${r.run.id}`);
        assert.equal(await Deno.readTextFile(`${dest}/report.html`), "<p>report</p>");
      }
      assert.equal(await latest(`${dir}/history`), `${dir}/history/${c.run.id}/results.json`);
      assert.equal(
        await latest(`${dir}/history`, c.run.id),
        `${dir}/history/${b.run.id}/results.json`,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  it("merges drift files into a run and re-renders its report and summary", async () => {
    const dir = await Deno.makeTempDir({ prefix: "publish-" });
    try {
      const runDir = await writeRun(dir, history(1, 9)[0]);
      await Deno.mkdir(`${dir}/drift/sub`, { recursive: true });
      await Deno.writeTextFile(`${dir}/drift/a.json`, JSON.stringify({ drift: [drift()] }));
      await Deno.writeTextFile(`${dir}/drift/sub/b.json`, JSON.stringify([drift({ T: 4096 })]));
      assert.equal(await mergeDrift(runDir, `${dir}/drift`), 2);
      const r: Results = JSON.parse(await Deno.readTextFile(`${runDir}/results.json`));
      assert.equal(r.drift.length, 2);
      assert.match(await Deno.readTextFile(`${runDir}/report.html`), /2 drift checks/);
      assert.match(await Deno.readTextFile(`${runDir}/summary.md`), /0 of 2 drift checks failed/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});

describe("ci/nightly.sh", () => {
  it("publishes two nights to gh-pages, and fails the second on a slowdown", async () => {
    const dir = await Deno.makeTempDir({ prefix: "nightly-" });
    try {
      // A repository with an origin, as the runner's checkout has.
      assert.equal((await sh("git", ["init", "-q", "--bare", `${dir}/origin.git`])).code, 0);
      assert.equal((await sh("git", ["clone", "-q", `${dir}/origin.git`, `${dir}/repo`])).code, 0);
      const commit = await sh("git", [
        "-C",
        `${dir}/repo`,
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@t",
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "main",
      ]);
      assert.equal(commit.code, 0, commit.out);
      const night = async (n: number, r: Results) => {
        const env = {
          DENO: Deno.execPath(),
          OUT: `${dir}/out${n}`,
          PAGES: `${dir}/pages`,
          REPO: `${dir}/repo`,
        };
        const runDir = await writeRun(`${dir}/out${n}/runs`, r);
        await Deno.mkdir(`${dir}/out${n}/state`, { recursive: true });
        await Deno.writeTextFile(`${dir}/out${n}/state/run_dir`, runDir);
        const log: string[] = [];
        for (const step of ["pages", "baseline", "compare", "publish"]) {
          const s = await sh(`${ROOT}/ci/nightly.sh`, [step], env, dir);
          log.push(s.out);
          assert.equal(s.code, 0, `${step}:\n${s.out}`);
        }
        const verdict = await sh(`${ROOT}/ci/nightly.sh`, ["verdict"], env, dir);
        return { verdict, log: log.join("\n") + verdict.out, runDir };
      };
      const runs = history(2, 1);
      const first = await night(1, runs[0]);
      assert.equal(first.verdict.code, 0, first.log);
      assert.match(first.log, /no gh-pages branch yet/);
      assert.match(first.log, /no previous nightly/);

      const second = await night(2, runs[1]);
      assert.equal(second.verdict.code, 1, second.log);
      assert.match(second.log, /baseline .*history\/2026-01-01T03-00-00-000Z\/results\.json/);
      assert.match(second.log, /nightly: failed: compare \(exit 1\)/);
      assert.match(
        await Deno.readTextFile(`${second.runDir}/compare.md`),
        /2 regressions \(1 broken, 1 slower/,
      );

      // What reached origin's gh-pages: both runs, the dashboard, each run's comparison.
      const ls = await sh("git", [
        "--git-dir",
        `${dir}/origin.git`,
        "ls-tree",
        "-r",
        "--name-only",
        "gh-pages",
      ]);
      const files = ls.out.trim().split("\n");
      for (
        const f of [
          ".nojekyll",
          "index.html",
          "history/2026-01-01T03-00-00-000Z/results.json",
          "history/2026-01-02T03-00-00-000Z/results.json",
          "history/2026-01-02T03-00-00-000Z/compare.md",
        ]
      ) assert.ok(files.includes(f), `${f} not in ${files.join(", ")}`);
      const log = await sh("git", [
        "--git-dir",
        `${dir}/origin.git`,
        "log",
        "--format=%s",
        "gh-pages",
      ]);
      assert.deepEqual(log.out.trim().split("\n"), [
        "nightly 2026-01-02T03-00-00-000Z",
        "nightly 2026-01-01T03-00-00-000Z",
      ]);
      await sh("git", ["-C", `${dir}/repo`, "worktree", "remove", "--force", `${dir}/pages`]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  it("bench records the run folder from bench's output; unknown steps are refused", async () => {
    const dir = await Deno.makeTempDir({ prefix: "nightly-" });
    try {
      const runDir = await writeRun(`${dir}/out/runs`, history(1, 9)[0]);
      // Stands in for Deno: `task bench` prints what the real one does, then exits 1 (an oom).
      await Deno.writeTextFile(
        `${dir}/fake-deno`,
        `#!/bin/sh\nif [ "$1" = task ]; then echo "$@" > "${dir}/args"; ` +
          `echo "results: ${runDir}/results.json"; exit 1; fi\n` +
          `exec "${Deno.execPath()}" "$@"\n`,
      );
      await Deno.chmod(`${dir}/fake-deno`, 0o755);
      const env = { DENO: `${dir}/fake-deno`, OUT: `${dir}/out` };
      const s = await sh(`${ROOT}/ci/nightly.sh`, ["bench"], { ...env, BENCH_GPUS: "all" }, dir);
      assert.equal(s.code, 0, s.out);
      assert.match(
        await Deno.readTextFile(`${dir}/args`),
        /^task bench --profile nightly --gpus all /,
      );
      assert.equal((await Deno.readTextFile(`${dir}/out/state/run_dir`)).trim(), runDir);
      assert.equal((await Deno.readTextFile(`${dir}/out/state/bench.rc`)).trim(), "1");
      assert.match(await Deno.readTextFile(`${runDir}/summary.md`), /^## linattn-bench/);
      const bad = await sh(`${ROOT}/ci/nightly.sh`, ["deploy"], env, dir);
      assert.equal(bad.code, 2);
      assert.match(bad.out, /usage: ci\/nightly.sh/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});
