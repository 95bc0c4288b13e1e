/**
 * The report and the dashboard opened from disk in headless Chromium: charts drawn, no console
 * errors, nothing requested beyond file: and data: URLs. Under CI=true a missing Chromium is a
 * failure (.ci/run installs it); elsewhere the tests are skipped with the reason shown.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { type Browser, chromium } from "playwright-core";
import { renderReport } from "../../reports/report.ts";
import { buildDashboard, writeSite } from "../../reports/dashboard.ts";
import { fullRun, history } from "./fixtures.ts";

const CHROMIUM = Deno.env.get("LAB_CHROMIUM") ?? "/usr/bin/chromium";
const found = await Deno.stat(CHROMIUM).then((s) => s.isFile, () => false);
const inCi = Deno.env.get("CI") === "true";
const skip = !found && !inCi
  ? `Chromium not found at ${CHROMIUM} (apt-get install chromium, or set LAB_CHROMIUM)`
  : false;
if (skip) console.warn(`browser_test: skipped: ${skip}`);

let browser: Promise<Browser> | undefined;
function launch(): Promise<Browser> {
  assert.ok(found, `CI=true but Chromium is missing at ${CHROMIUM}; .ci/run should install it`);
  browser ??= chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  return browser;
}

interface PageCheck {
  specs: number;
  charts: number;
  canvases: number;
  /** Canvases with at least one painted pixel. */
  painted: number;
  requests: string[];
  errors: string[];
}

/** Runs in the page, which has the DOM types this file is not checked against. */
const INSPECT = `(() => {
  const canvases = [...document.querySelectorAll("canvas")];
  const painted = canvases.filter((c) => {
    const px = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    for (let i = 3; i < px.length; i += 4) if (px[i] !== 0) return true;
    return false;
  }).length;
  return {
    specs: JSON.parse(document.getElementById("data").textContent).length,
    charts: Object.keys(Chart.instances).length,
    canvases: canvases.length,
    painted,
  };
})()`;

async function open(path: string): Promise<PageCheck> {
  const page = await (await launch()).newPage();
  const requests: string[] = [];
  const errors: string[] = [];
  page.on("request", (r) => requests.push(r.url()));
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(m.text());
  });
  page.on("pageerror", (e) => errors.push(e.message));
  try {
    await page.goto(`file://${path}`, { waitUntil: "load" });
    const seen = await page.evaluate(INSPECT) as Omit<PageCheck, "requests" | "errors">;
    return { ...seen, requests, errors };
  } finally {
    await page.close();
  }
}

function assertClean(c: PageCheck) {
  assert.ok(c.specs > 0, "no charts in the page");
  assert.equal(c.charts, c.specs, "every chart spec became a Chart");
  assert.equal(c.canvases, c.specs);
  assert.equal(c.painted, c.canvases, "a canvas stayed blank");
  assert.deepEqual(c.errors, []);
  assert.deepEqual(c.requests.filter((u) => !/^(file|data):/.test(u)), []);
}

describe("reports in headless Chromium", { skip }, () => {
  after(async () => {
    if (browser) await (await browser).close();
  });

  it("report.html draws every chart from disk, with no errors or requests", async () => {
    const dir = await Deno.makeTempDir({ prefix: "browser-" });
    try {
      await Deno.writeTextFile(`${dir}/report.html`, await renderReport(fullRun()));
      const c = await open(`${dir}/report.html`);
      assertClean(c);
      // latency ×3 variants, speedup ×3 baselines, memory ×3, roofline ×2 backends, drift ×2.
      assert.equal(c.specs, 13);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  it("the dashboard and the run reports it links draw from disk", async () => {
    const dir = await Deno.makeTempDir({ prefix: "browser-" });
    try {
      const runs = history(8, 4);
      await Deno.writeTextFile(`${dir}/report.html`, await renderReport(runs[7]));
      const d = buildDashboard(runs.map((results, i) => ({
        results,
        reportPath: i === 7 ? `${dir}/report.html` : undefined,
      })));
      await writeSite(d, `${dir}/site`);
      const index = await open(`${dir}/site/index.html`);
      assertClean(index);
      assert.equal(index.specs, 1);
      assertClean(await open(`${dir}/site/runs/${runs[7].run.id}.html`));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});
