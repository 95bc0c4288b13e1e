/**
 * bench --gpus: lanes pinned by GPU, placement checks, and the scheduling that keeps a series'
 * smaller T ahead of its larger ones. The whole-run tests use tests/fixtures/fake_lak.c as the
 * CUDA library and a two-GPU nvidia-smi stand-in ($LAB_NVIDIA_SMI).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { buildFakeLak, oneLineError, runScript } from "./cli_util.ts";
import { type Gpu, landedOn, laneEnv, normalizeBusId, selectGpus } from "../../bench/gpus.ts";
import { type Lane, peakSpread, runOnLanes } from "../../bench/lanes.ts";
import type { PlannedCell } from "../../bench/matrix.ts";
import type { BackendWorker } from "../../bench/pool.ts";
import type { Results } from "../../bench/results.ts";

const GPUS: Gpu[] = [
  { index: 0, pci_bus_id: "0000:18:00.0", uuid: "GPU-aaaa", name: "Fake H100" },
  { index: 1, pci_bus_id: "0000:2a:00.0", uuid: "GPU-bbbb", name: "Fake H100" },
];

describe("gpus", () => {
  it("normalizes nvidia-smi's bus ids to the 4-digit domain lak reports", () => {
    assert.equal(normalizeBusId("00000000:2A:00.0"), "0000:2a:00.0");
    assert.equal(normalizeBusId("0000:18:00.0"), "0000:18:00.0");
    assert.throws(() => normalizeBusId("18:00"), /unrecognized PCI bus id '18:00'/);
  });

  it("selects GPUs by index or all, and names a bad index", () => {
    assert.deepEqual(selectGpus("all", GPUS), GPUS);
    assert.deepEqual(selectGpus("1", GPUS), [GPUS[1]]);
    assert.throws(
      () => selectGpus("0,2", GPUS),
      /'2' is not a GPU index here \(have 0,1, or 'all'\)/,
    );
    assert.throws(() => selectGpus("1,1", GPUS), /GPU 1 named twice/);
    assert.throws(() => selectGpus("0,", GPUS), /'' is not a GPU index/);
  });

  it("pins CUDA by UUID and Vulkan by the PCI tag Mesa's device-select layer reads", () => {
    const env = laneEnv(GPUS[1]);
    assert.equal(env.CUDA_VISIBLE_DEVICES, "GPU-bbbb");
    assert.equal(env.DRI_PRIME, "pci-0000_2a_00_0");
    assert.equal(env.MESA_VK_DEVICE_SELECT_FORCE_DEFAULT_DEVICE, "1");
  });

  it("tells where a worker's memory appeared, only when on one GPU alone", () => {
    const before = new Map([[0, 500], [1, 500]]);
    assert.deepEqual(landedOn(before, new Map([[0, 510], [1, 900]])), { gpu: 1, mib: 400 });
    assert.deepEqual(
      landedOn(before, new Map([[0, 723], [1, 723]])),
      { why: "memory grew on GPU 0 (+223 MiB), GPU 1 (+223 MiB): cannot tell which it opened on" },
    );
    assert.match((landedOn(before, before) as { why: string }).why, /no GPU's memory grew/);
  });
});

describe("peakSpread", () => {
  const lane = (label: string, copy: number, mm: number): Lane => ({
    label,
    workers: [{
      name: "cuda",
      info: { peaks: { copy_gbps: copy, matmul_tflops: mm } },
    } as unknown as BackendWorker],
  });

  it("names a peak that differs across GPUs by more than 5%, and only that one", () => {
    const w = peakSpread([
      lane("gpu0", 2940, 700),
      lane("gpu1", 2700, 705),
      lane("gpu2", 2935, 702),
    ]);
    assert.deepEqual(w, [
      "cuda copy_gbps differs across GPUs by 8%: gpu0 2940, gpu1 2700, gpu2 2935",
    ]);
    assert.deepEqual(peakSpread([lane("gpu0", 2940, 700), lane("gpu1", 2900, 690)]), []);
    assert.deepEqual(peakSpread([lane("", 2940, 700)]), []);
  });
});

describe("runOnLanes", () => {
  const cell = (impl: string, T: number): PlannedCell => ({
    backend: "cuda",
    variant: "la",
    impl,
    dtype: "f32",
    mode: "fwd",
    T,
    id: `${impl}/${T}`,
  });
  const lane = (label: string, names: string[]): Lane => ({
    label,
    workers: names.map((name) => ({ name }) as unknown as BackendWorker),
  });

  it("runs a series' larger T only after its smaller T finished, and every cell once", async () => {
    const plan = [cell("a", 1), cell("a", 2), cell("a", 3), cell("b", 1), cell("b", 2)];
    const log: string[] = [];
    const seen: string[] = [];
    await runOnLanes(
      [lane("gpu0", ["cuda"]), lane("gpu1", ["cuda"]), lane("gpu2", ["cuda"])],
      plan.map((planned, index) => ({ index, planned })),
      async (l, _i, p) => {
        log.push(`start ${p.id}`);
        seen.push(`${l.label} ${p.id}`);
        await new Promise((r) => setTimeout(r, 5));
        log.push(`end ${p.id}`);
        return true;
      },
    );
    assert.equal(seen.length, plan.length);
    assert.deepEqual(new Set(seen.map((s) => s.split(" ")[1])), new Set(plan.map((p) => p.id)));
    for (const [small, big] of [["a/1", "a/2"], ["a/2", "a/3"], ["b/1", "b/2"]]) {
      assert.ok(log.indexOf(`end ${small}`) < log.indexOf(`start ${big}`), log.join(", "));
    }
    // Two series, so two lanes worked at once.
    assert.ok(log.indexOf("start b/1") < log.indexOf("end a/1"), log.join(", "));
  });

  it("hands a lost worker's cell and the rest of its backend's cells to the other lanes", async () => {
    const plan = [cell("a", 1), cell("b", 1), cell("c", 1), cell("d", 1)];
    const lanes = [lane("gpu0", ["cuda"]), lane("gpu1", ["cuda"])];
    const seen: string[] = [];
    await runOnLanes(
      lanes,
      plan.map((planned, index) => ({ index, planned })),
      async (l, _i, p) => {
        await new Promise((r) => setTimeout(r, 2));
        if (l.label === "gpu1") {
          (l.workers[0] as { lost: string }).lost = "no CUDA device";
          return false;
        }
        seen.push(p.id);
        return true;
      },
    );
    assert.deepEqual(seen.sort(), ["a/1", "b/1", "c/1", "d/1"]);
  });

  it("gives a lane only the backends it has", async () => {
    const plan = [{ ...cell("a", 1), backend: "webgpu" as const }, cell("b", 1)];
    const seen: string[] = [];
    await runOnLanes(
      [lane("gpu0", ["cuda", "webgpu"]), lane("gpu1", ["cuda"])],
      plan.map((planned, index) => ({ index, planned })),
      (l, _i, p) => {
        seen.push(`${l.label} ${p.backend}`);
        return Promise.resolve(true);
      },
    );
    assert.ok(seen.includes("gpu0 webgpu"), seen.join(", "));
    assert.equal(seen.length, 2);
  });
});

describe("bench --gpus", () => {
  let dir = "";
  let lib = "";
  let smi = "";
  before(async () => {
    dir = await Deno.makeTempDir({ prefix: "gpus-" });
    lib = await buildFakeLak(dir);
    // Two GPUs whose memory never changes: no WebGPU worker can prove where it opened.
    smi = `${dir}/nvidia-smi`;
    await Deno.writeTextFile(
      smi,
      `#!/bin/sh
case "$1" in
  *memory.used*) printf '0, 500\\n1, 500\\n' ;;
  *) printf '0, 00000000:18:00.0, GPU-aaaa, Fake H100\\n1, 00000000:2A:00.0, GPU-bbbb, Fake H100\\n' ;;
esac
`,
    );
    await Deno.chmod(smi, 0o755);
  });
  after(async () => {
    await Deno.remove(dir, { recursive: true });
  });

  it("spreads cells over both GPUs, pins each worker, records the GPU, survives a crash", async () => {
    const r = await runScript("bench/main.ts", [
      "--backend=cuda",
      `--cuda-library=${lib}`,
      "--gpus=all",
      "--variant=la",
      "--dtype=f32",
      "--mode=fwd",
      "--T=64,256",
      "--max-samples=3",
      "--no-report",
      `--out=${dir}/out`,
    ], { LAB_NVIDIA_SMI: smi });
    // The stand-in crashes at T=64 and writes zeros otherwise: each crash ends only its cell,
    // its lane restarts the worker (pinned as before) for the next.
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /over 2 GPUs \(gpu0, gpu1\)/);
    const path = r.stdout.match(/results: (\S+)/)![1];
    const res: Results = JSON.parse(await Deno.readTextFile(path));
    const ids = res.cells.map((c) => c.id);
    assert.deepEqual(ids, [...ids].sort((a, b) => plannedOrder(a) - plannedOrder(b)));
    for (const c of res.cells) {
      assert.equal(c.status, c.shape.T === 64 ? "error" : "incorrect", `${c.id}: ${c.message}`);
    }
    assert.deepEqual(new Set(res.cells.map((c) => c.gpu?.index)), new Set([0, 1]));
    const devices = res.provenance.devices.filter((d) => d.backend === "cuda");
    assert.deepEqual(
      devices.map((d) => [d.visible, (d.gpu as Gpu).uuid]).sort(),
      [["GPU-aaaa", "GPU-aaaa"], ["GPU-bbbb", "GPU-bbbb"]],
    );
    function plannedOrder(id: string): number {
      const impl = ["chunk", "recurrent", "quadratic"].indexOf(id.split("/")[2]);
      return impl * 10 + (id.includes("T64/") ? 0 : 1);
    }
  });

  it("moves a lost GPU's cells to the other lanes instead of failing them", async () => {
    const r = await runScript("bench/main.ts", [
      "--backend=cuda",
      `--cuda-library=${lib}`,
      "--gpus=all",
      "--variant=la",
      "--dtype=f32",
      "--mode=fwd",
      "--T=256,320",
      "--max-samples=3",
      "--no-report",
      `--out=${dir}/lost`,
    ], {
      LAB_NVIDIA_SMI: smi,
      FAKE_LAK_BROKEN_GPU: "GPU-bbbb",
      FAKE_LAK_GONE: `${dir}/gpu1-gone`,
    });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /gpu1: the cuda worker could not restart \(.*\); its cells go to/);
    const res: Results = JSON.parse(
      await Deno.readTextFile(r.stdout.match(/results: (\S+)/)![1]),
    );
    // The cell that crashed gpu1 is its own error; every other cell ran (on gpu0).
    const crashed = res.cells.filter((c) => c.status === "error");
    assert.equal(crashed.length, 1, r.stderr);
    assert.equal(crashed[0].gpu?.index, 1);
    assert.match(crashed[0].message, /worker process died/);
    const rest = res.cells.filter((c) => c !== crashed[0]);
    assert.equal(rest.length, 5);
    assert.ok(rest.every((c) => c.status === "incorrect" && c.gpu?.index === 0), r.stderr);
  });

  it("opens the cpu backend, which times the host, on one lane only", async () => {
    const r = await runScript("bench/main.ts", [
      "--backend=cpu",
      "--gpus=all",
      "--variant=la",
      "--impl=recurrent",
      "--T=32,48",
      "--H=1",
      "--K=8",
      "--V=8",
      "--mode=fwd",
      "--max-samples=3",
      "--no-report",
      `--out=${dir}/cpu`,
    ], { LAB_NVIDIA_SMI: smi });
    assert.equal(r.code, 0, r.stderr);
    const res: Results = JSON.parse(
      await Deno.readTextFile(r.stdout.match(/results: (\S+)/)![1]),
    );
    assert.equal(res.provenance.devices.filter((d) => d.backend === "cpu").length, 1);
    assert.ok(res.cells.every((c) => c.status === "ok" && c.gpu === undefined), r.stderr);
  });

  it("drops a worker that opened on another GPU and says why", async () => {
    const r = await runScript("bench/main.ts", [
      "--backend=cuda",
      `--cuda-library=${lib}`,
      "--gpus=all",
      "--dry-run",
    ], { LAB_NVIDIA_SMI: smi, FAKE_LAK_PCI_BUS_ID: "0000:18:00.0" });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /warning: cuda not used on gpu1: it opened on 0000:18:00.0/);
    assert.doesNotMatch(r.stderr, /not used on gpu0/);
  });

  it("keeps no WebGPU lane it cannot place, with one line per lane", async () => {
    const r = await runScript("bench/main.ts", [
      "--backend=webgpu",
      "--gpus=0,1",
      "--dry-run",
    ], { LAB_NVIDIA_SMI: smi });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /webgpu asked for gpu0 not used: no GPU's memory grew/);
    assert.match(r.stderr, /webgpu asked for gpu1 not used: no GPU's memory grew/);
    assert.match(r.stderr, /no webgpu worker on gpu0/);
    assert.match(r.stderr, /none of the backends webgpu is available here/);
  });

  it("puts a WebGPU worker on the lane of the GPU it opened on, whichever was asked for", async () => {
    // Each memory query answers the next line of a script: lane 0's worker shows up on GPU 1,
    // then lane 1's on GPU 0 (as if Vulkan and nvidia-smi numbered the GPUs differently).
    const swapped = `${dir}/nvidia-smi-swapped`;
    await Deno.writeTextFile(
      swapped,
      `#!/bin/sh
case "$1" in
  *memory.used*)
    n=$(cat "${dir}/count" 2>/dev/null || echo 0); echo $((n + 1)) > "${dir}/count"
    case $n in
      0) printf '0, 500\n1, 500\n' ;;
      1|2) printf '0, 500\n1, 723\n' ;;
      *) printf '0, 723\n1, 723\n' ;;
    esac ;;
  *) printf '0, 00000000:18:00.0, GPU-aaaa, Fake H100\n1, 00000000:2A:00.0, GPU-bbbb, Fake H100\n' ;;
esac
`,
    );
    await Deno.chmod(swapped, 0o755);
    const r = await runScript("bench/main.ts", [
      "--backend=webgpu",
      "--gpus=all",
      "--variant=la",
      "--dry-run",
    ], { LAB_NVIDIA_SMI: swapped });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /webgpu asked for gpu0 opened on gpu1 \(\+223 MiB\): used there/);
    assert.match(r.stderr, /webgpu asked for gpu1 opened on gpu0 \(\+223 MiB\): used there/);
    assert.match(r.stdout, /^la\/webgpu\//m);
  });

  it("names a GPU index the machine does not have in one line", async () => {
    const r = await runScript("bench/main.ts", ["--gpus=3", "--dry-run"], {
      LAB_NVIDIA_SMI: smi,
    });
    assert.equal(r.code, 1);
    assert.match(oneLineError(r), /--gpus: '3' is not a GPU index here \(have 0,1, or 'all'\)/);
  });
});
