import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  BASELINES,
  driftCharts,
  latencyCharts,
  memoryCharts,
  renderReport,
  rooflineCharts,
  speedups,
} from "../../reports/report.ts";
import { renderSummary } from "../../reports/markdown.ts";
import { driftEntries } from "../../reports/common.ts";
import { cell, fullRun, results } from "./fixtures.ts";

const baseline = (key: string) => BASELINES.find((b) => b.key === key)!;

describe("report.html", () => {
  it("plots every timed series per variant with CI bands, and nothing untimed", () => {
    const charts = latencyCharts(fullRun());
    assert.deepEqual(charts.map((c) => c.title.split(":")[0]).sort(), ["gla", "la", "softmax"]);
    const la = charts.find((c) => c.title.startsWith("la"))!;
    assert.deepEqual(la.datasets.map((d) => d.label).sort(), [
      "cuda/chunk bf16 fwd",
      "cuda/recurrent bf16 fwd",
      "webgpu/chunk f32 fwd",
    ]);
    for (const d of la.datasets) {
      assert.deepEqual(d.points.map((p) => p[0]), [4096, 16384, 65536]);
      assert.ok(d.band!.every(([, lo, hi], i) => lo <= d.points[i][1] && d.points[i][1] <= hi));
    }
    const softmax = charts.find((c) => c.title.startsWith("softmax"))!;
    const quadratic = softmax.datasets.find((d) => d.label.includes("quadratic"))!;
    assert.deepEqual(quadratic.points.map((p) => p[0]), [4096, 16384], "the oom cell has no point");
  });

  it("computes speedups over naive, flash and recurrent from matching cells only", () => {
    const r = fullRun();
    const naive = speedups(r, baseline("naive"));
    assert.ok(naive.present);
    const la4k = naive.pairs.find((s) => s.cell.id.startsWith("la/cuda/chunk/bf16/fwd/B1/T4096/"))!;
    assert.equal(la4k.baseline.impl, "quadratic");
    assert.equal(la4k.speedup, la4k.baseline.stats!.median_ms / la4k.cell.stats!.median_ms);
    assert.ok(la4k.lo <= la4k.speedup && la4k.speedup <= la4k.hi);
    // The webgpu f32 cells have no softmax partner; the oom baseline at 64K pairs with nothing.
    assert.ok(naive.pairs.every((s) => s.cell.backend === "cuda" && s.cell.shape.T < 65536));
    const rec = speedups(r, baseline("recurrent"));
    assert.ok(rec.pairs.every((s) => s.cell.variant === "la" && s.baseline.variant === "la"));
    assert.equal(rec.pairs.length, 3);
    const none = speedups(results([cell({})]), baseline("flash"));
    assert.deepEqual(none, { present: false, pairs: [] });
  });

  it("draws memory, a roofline against peaks when provenance has them, and drift", () => {
    const r = fullRun();
    assert.ok(memoryCharts(r).every((c) => c.datasets.length > 0));
    const { charts, notes } = rooflineCharts(r);
    const cuda = charts.find((c) => c.title.startsWith("cuda"))!;
    const roof = cuda.datasets.find((d) => d.label.startsWith("roof"))!;
    assert.match(roof.label, /3000 GB\/s, 700 TFLOP\/s/);
    assert.ok(roof.points.every(([x, y]) => y <= 700 && y <= (x as number) * 3 + 1e-9));
    assert.equal(notes.length, 1, "webgpu has no peaks");
    assert.match(notes[0], /webgpu: no device peaks/);
    const drift = driftCharts(driftEntries(r));
    assert.deepEqual(drift.map((c) => c.title), [
      "la: error along the sequence",
      "la: error vs T",
    ]);
    const vsT = drift[1].datasets.find((d) => d.label === "cuda bf16/fp64 rel_rms")!;
    assert.deepEqual(vsT.points.map((p) => p[0]), [16384, 65536, 262144]);
  });

  it("renders one self-contained page with every section and every cell's status", async () => {
    const html = await renderReport(fullRun());
    assert.match(html, /Chart\.js v4/);
    assert.match(html, /Content-Security-Policy/);
    assert.doesNotMatch(html, /<(script|link|img)[^>]+(src|href)=/i);
    for (const id of ["latency", "speedup", "memory", "roofline", "drift"]) {
      assert.match(html, new RegExp(`id="${id}"`));
    }
    for (const status of ["oom", "error", "incorrect", "skipped"]) {
      assert.match(html, new RegExp(`class="st ${status}">${status}<`));
    }
    assert.match(html, /launch failed/);
    assert.match(html, /4 drift checks \(1 failed\)/);
    assert.match(html, /Not plotted, having no time: 1 oom, 1 error, 1 incorrect/);
  });

  it("says so when baselines, peaks or drift are absent", async () => {
    const r = results([cell({ T: 1024 }), cell({ T: 2048 })]);
    r.provenance.devices = [{ backend: "cuda", name: "GPU" }];
    const html = await renderReport(r);
    assert.match(html, /No naive attention \(quadratic\) baseline/);
    assert.match(html, /No FlashAttention \(flash\) baseline/);
    assert.match(html, /No recurrent scan baseline \(impl <code>recurrent/);
    assert.match(html, /cuda: no device peaks/);
    assert.match(html, /No drift entries in this run/);
  });

  it("adds a GPU column to the cell table only when cells name their GPU (--gpus)", async () => {
    const gpu = { index: 2, pci_bus_id: "0000:08:00.0", uuid: "GPU-x", name: "NVIDIA H100" };
    const one = results([cell({ T: 4096 })]);
    assert.doesNotMatch(await renderReport(one), /<th>GPU<\/th>/);
    const lanes = results([{ ...cell({ T: 4096 }), gpu }, cell({ T: 16384 })]);
    const html = await renderReport(lanes);
    assert.match(html, /<th>GPU<\/th>/);
    assert.match(html, /<td class="n">4K<\/td><td class="n">2<\/td>/);
  });
});

describe("summary.md", () => {
  it("has one table per variant, dtype and mode: rows T, baselines first, ms (peak GiB)", () => {
    const md = renderSummary(fullRun());
    const la = md.split("### ").find((s) => s.startsWith("la · bf16 · fwd"))!;
    const lines = la.trim().split("\n");
    assert.equal(
      lines[4],
      "| T | naive (cuda) | FlashAttention (cuda) | cuda/chunk | cuda/recurrent |",
    );
    assert.match(
      lines[6],
      /^\| 4K \| [\d.]+ \(0\.016\) \| [\d.]+ \(0\.016\) \| [\d.]+ \(0\.016\) \|/,
    );
    assert.match(lines[8], /^\| 64K \| OOM \| /);
    assert.match(la, /on NVIDIA H100, B1 H8 K64 V64/);
    assert.match(md, /### la · f32 · fwd/);
    assert.match(
      md,
      /### deltanet · bf16 · fwd\n[^#]*\|---:\|\n\| 64K \| OOM \| [\d.]+ \(0\.25\) \| error \|/,
    );
    assert.match(md, /### gla · f32 · fwd\n[^#]*\| 64K \| incorrect \|/);
    assert.doesNotMatch(md, /### softmax/, "softmax only as the baselines");
    assert.match(md, /1 of 4 drift checks failed/);
    assert.doesNotMatch(md, /†/, "no cell is unsteady");
  });

  it("marks a median whose samples were not steady with †, and says what it means", () => {
    const r = fullRun();
    const c = r.cells.find((c) => c.status === "ok" && c.stats && c.variant === "la")!;
    c.stats = { ...c.stats!, steady: false };
    const md = renderSummary(r);
    assert.match(md, /\| [\d.]+† \(/);
    assert.match(md, /† samples not steady when sampling stopped/);
  });
});
