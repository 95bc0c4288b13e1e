import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { oneLineError, runScript } from "./cli_util.ts";
import type { Results } from "../../bench/results.ts";

describe("bench", () => {
  it("runs a small cpu matrix and writes results.json and a self-contained report", async () => {
    const out = await Deno.makeTempDir({ prefix: "bench-" });
    try {
      const r = await runScript("bench/main.ts", [
        "--backend=cpu",
        "--variant=la,gla",
        "--T=64,200",
        "--H=1",
        "--K=8",
        "--V=8",
        "--mode=fwd,fwdbwd",
        "--max-samples=4",
        `--out=${out}`,
      ]);
      assert.equal(r.code, 0, r.stderr);
      const json = r.stdout.match(/results: (\S+)/)?.[1];
      const html = r.stdout.match(/report: +(\S+)/)?.[1];
      assert.ok(json && html, r.stdout);
      const res: Results = JSON.parse(await Deno.readTextFile(json));
      assert.equal(res.schema, "linattn-bench/results/v1");
      assert.ok(res.provenance.git.commit.length > 0);
      assert.equal(res.provenance.devices[0].backend, "cpu");
      // la and gla, two impls each (recurrent, chunk), two modes, two lengths.
      assert.equal(res.cells.length, 16);
      for (const c of res.cells) {
        assert.equal(c.status, "ok", `${c.id}: ${c.message}`);
        assert.ok(c.correctness?.pass);
        assert.ok(c.samples_ms.length >= 1 && c.samples_ms.every((x) => x > 0));
        assert.ok(c.stats && c.stats.median_ms > 0 && c.stats.stop_reason);
        assert.ok(c.throughput && c.throughput.tokens_per_s > 0);
        // One op's footprint is part of the cell's peak (which also holds rotated input sets).
        const m = c.memory!;
        assert.ok(m.op_peak_bytes! > 0 && m.op_peak_bytes! <= m.peak_bytes, JSON.stringify(m));
      }
      const page = await Deno.readTextFile(html);
      assert.match(page, /Chart\.js v4/);
      assert.match(page, /id="data"/);
      assert.doesNotMatch(page, /<(script|link|img)[^>]+(src|href)="?https?:/i);
      const lines = (await Deno.readTextFile(json.replace("results.json", "results.jsonl"))).trim()
        .split("\n");
      assert.equal(lines.length, res.cells.length);
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  });

  it("--dry-run prints the planned cell ids and times nothing", async () => {
    const out = await Deno.makeTempDir({ prefix: "bench-dry-" });
    try {
      const r = await runScript("bench/main.ts", [
        "--backend=cpu",
        "--variant=la",
        "--impl=chunk",
        "--T=64,200",
        "--mode=fwd",
        "--dry-run",
        `--out=${out}`,
      ]);
      assert.equal(r.code, 0, r.stderr);
      const ids = r.stdout.trim().split("\n");
      assert.deepEqual(ids.map((l) => l.split("/").slice(0, 5).join("/")), [
        "la/cpu/chunk/f64/fwd",
        "la/cpu/chunk/f64/fwd",
      ]);
      assert.match(ids[1], /T200/);
      assert.deepEqual([...Deno.readDirSync(out)], [], "a dry run writes nothing");
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  });

  it("fails with one line on a bad flag and exits 2 when no backend is available", async () => {
    const bad = await runScript("bench/main.ts", ["--T=12Q"]);
    assert.equal(bad.code, 1);
    assert.match(oneLineError(bad), /--T value '12Q'/);
    const none = await runScript("bench/main.ts", [
      "--backend=cuda",
      "--cuda-library=/nonexistent/liblak.so",
    ]);
    assert.equal(none.code, 2, none.stderr);
    assert.match(none.stderr, /cuda/);
  });

  it("warns when a run resumes on other devices than it began on", async () => {
    const out = await Deno.makeTempDir({ prefix: "bench-" });
    try {
      const r = await runScript("bench/main.ts", [
        "--backend=cpu",
        "--variant=la",
        "--impl=recurrent",
        "--T=64,96",
        "--H=1",
        "--K=8",
        "--V=8",
        "--mode=fwd",
        "--max-samples=3",
        "--no-report",
        `--out=${out}`,
      ]);
      assert.equal(r.code, 0, r.stderr);
      const dir = r.stdout.match(/results: (\S+)\/results\.json/)![1];
      const run = JSON.parse(await Deno.readTextFile(`${dir}/run.json`));
      run.provenance.devices = [{ backend: "cpu", name: "another machine" }];
      await Deno.writeTextFile(`${dir}/run.json`, JSON.stringify(run));
      const lines = (await Deno.readTextFile(`${dir}/results.jsonl`)).trim().split("\n");
      await Deno.writeTextFile(`${dir}/results.jsonl`, lines[0] + "\n");
      const again = await runScript("bench/main.ts", [`--resume=${dir}`]);
      assert.equal(again.code, 0, again.stderr);
      assert.match(
        again.stderr,
        /warning: this run began on cpu: another machine and resumes on cpu: /,
      );
      // results.json keeps the first stretch's machine; run.json records the resume.
      const res: Results = JSON.parse(await Deno.readTextFile(`${dir}/results.json`));
      assert.equal(res.provenance.earlier?.length, 1);
      assert.equal(res.provenance.earlier![0].since, run.started_at);
      assert.deepEqual(res.provenance.earlier![0].devices, run.provenance.devices);
      assert.notEqual(res.provenance.devices[0].name, "another machine");
      const resumes = JSON.parse(await Deno.readTextFile(`${dir}/run.json`)).resumes;
      assert.equal(resumes.length, 1);
      assert.deepEqual(resumes[0].devices, res.provenance.devices);
      // The cell timed after the resume finished after it began; the kept one before.
      const [kept, rerun] = res.cells;
      assert.ok(kept.finished_at! < resumes[0].since, `${kept.finished_at} ${resumes[0].since}`);
      assert.ok(rerun.finished_at! >= resumes[0].since);
      const rendered = await runScript("reports/render.ts", [dir]);
      assert.equal(rendered.code, 0, rendered.stderr);
      assert.match(
        await Deno.readTextFile(`${dir}/summary.md`),
        new RegExp(`Resumed run: earlier stretches from ${run.started_at} on another machine;`),
      );
      assert.match(
        await Deno.readTextFile(`${dir}/report.html`),
        /<li>from .*: cpu: another machine;/,
      );
      // The same from run.json alone, as for a run still unfinished.
      await Deno.remove(`${dir}/results.json`);
      const unfinished = await runScript("reports/render.ts", [dir]);
      assert.equal(unfinished.code, 0, unfinished.stderr);
      const md = await Deno.readTextFile(`${dir}/summary.md`);
      assert.match(md, /Unfinished run/);
      assert.match(md, /Resumed run: earlier stretches from \S+ on another machine;/);
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  });
});
