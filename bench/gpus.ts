/**
 * --gpus: one lane per GPU of a multi-GPU host, each with its own backend workers pinned to its
 * GPU, so a matrix that takes an hour on one card takes a quarter of it on four. Every cell
 * still has its GPU to itself: a lane runs one cell at a time and lanes share no device.
 *
 * Pinning: CUDA and torch by CUDA_VISIBLE_DEVICES (the GPU's UUID). WebGPU has no device choice
 * (requestAdapter takes a power preference only), so its lane asks Vulkan through Mesa's
 * device-select layer (DRI_PRIME=pci-…, MESA_VK_DEVICE_SELECT_FORCE_DEFAULT_DEVICE=1). When that
 * layer is missing (or the addresses Vulkan and nvidia-smi report disagree) the request is not
 * honoured, silently. So WebGPU placement is observed, not trusted: each worker is kept on the
 * lane of the one GPU its memory appeared on (landedOn), if that lane has none yet.
 */
import { InputError } from "./ops.ts";

export interface Gpu {
  /** nvidia-smi's index (PCI bus order). */
  index: number;
  /** Normalized to dddd:bb:dd.f, lowercase, as lak_device_info_json writes it. */
  pci_bus_id: string;
  uuid: string;
  name: string;
}

/** nvidia-smi, or a stand-in for tests ($LAB_NVIDIA_SMI). */
function smiPath(): string {
  return Deno.env.get("LAB_NVIDIA_SMI") ?? "nvidia-smi";
}

async function smi(query: string): Promise<string[][]> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(smiPath(), {
      args: [`--query-gpu=${query}`, "--format=csv,noheader,nounits"],
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (e) {
    throw new InputError(
      `--gpus needs nvidia-smi to find the GPUs (${(e as Error).message.split("\n")[0]})`,
    );
  }
  if (!out.success) {
    const why = new TextDecoder().decode(out.stderr).trim().split("\n")[0];
    throw new InputError(`--gpus: nvidia-smi failed (${why || `exit ${out.code}`})`);
  }
  return new TextDecoder().decode(out.stdout).trim().split("\n").filter((l) => l.trim())
    .map((l) => l.split(",").map((f) => f.trim()));
}

/** "00000000:18:00.0" (nvidia-smi) or "0000:18:00.0" → "0000:18:00.0". */
export function normalizeBusId(id: string): string {
  const m = id.trim().toLowerCase().match(/^([0-9a-f]+):([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$/);
  if (!m) throw new InputError(`unrecognized PCI bus id '${id}'`);
  return `${m[1].slice(-4).padStart(4, "0")}:${m[2]}:${m[3]}.${m[4]}`;
}

/** The GPUs nvidia-smi lists. */
export async function listGpus(): Promise<Gpu[]> {
  return (await smi("index,pci.bus_id,uuid,name")).map(([index, bus, uuid, ...name]) => ({
    index: Number(index),
    pci_bus_id: normalizeBusId(bus),
    uuid,
    name: name.join(","),
  }));
}

/** MiB in use on each GPU, by index. */
export async function memoryUsedMiB(): Promise<Map<number, number>> {
  return new Map((await smi("index,memory.used")).map(([i, m]) => [Number(i), Number(m)]));
}

/** "all" or "0,2,3" → the GPUs to use, in the order given. */
export function selectGpus(flag: string, gpus: Gpu[]): Gpu[] {
  if (gpus.length === 0) throw new InputError("--gpus: nvidia-smi lists no GPU");
  if (flag.trim() === "all") return gpus;
  const picked: Gpu[] = [];
  for (const part of flag.split(",")) {
    const i = Number(part.trim());
    const gpu = gpus.find((g) => g.index === i);
    if (part.trim() === "" || !Number.isInteger(i) || !gpu) {
      throw new InputError(
        `--gpus: '${part.trim()}' is not a GPU index here (have ${
          gpus.map((g) => g.index).join(",")
        }, or 'all')`,
      );
    }
    if (picked.includes(gpu)) throw new InputError(`--gpus: GPU ${i} named twice`);
    picked.push(gpu);
  }
  return picked;
}

/** The environment that pins a lane's workers to its GPU. */
export function laneEnv(gpu: Gpu): Record<string, string> {
  const [domain, bus, rest] = gpu.pci_bus_id.split(":");
  const [dev, fn] = rest.split(".");
  return {
    CUDA_VISIBLE_DEVICES: gpu.uuid,
    CUDA_DEVICE_ORDER: "PCI_BUS_ID",
    DRI_PRIME: `pci-${domain}_${bus}_${dev}_${fn}`,
    MESA_VK_DEVICE_SELECT_FORCE_DEFAULT_DEVICE: "1",
    // wgpu would also offer a GL adapter, which the layer does not steer.
    DENO_WEBGPU_BACKEND: "vulkan",
  };
}

/**
 * Which GPU a worker that just opened put its memory on, or why that cannot be told. Opening a
 * backend creates a context, a couple of hundred MiB. Growth on more than one GPU proves nothing
 * (a driver may touch every GPU it enumerates), so it is refused too.
 */
export function landedOn(
  before: Map<number, number>,
  after: Map<number, number>,
  minMiB = 64,
): { gpu: number; mib: number } | { why: string } {
  const grew = [...after].map(([i, m]) => ({ i, d: m - (before.get(i) ?? m) }))
    .filter((x) => x.d >= minMiB).sort((a, b) => b.d - a.d || a.i - b.i);
  if (grew.length === 0) return { why: `no GPU's memory grew by ${minMiB} MiB when it opened` };
  if (grew.length > 1) {
    const list = grew.map((g) => `GPU ${g.i} (+${g.d} MiB)`).join(", ");
    return { why: `memory grew on ${list}: cannot tell which it opened on` };
  }
  return { gpu: grew[0].i, mib: grew[0].d };
}

/** Waits (up to timeoutMs) until no GPU holds more than slackMiB over `before`. */
export async function settle(
  before: Map<number, number>,
  timeoutMs = 5000,
  slackMiB = 32,
): Promise<void> {
  for (const end = Date.now() + timeoutMs; Date.now() < end;) {
    const now = await memoryUsedMiB();
    if ([...now].every(([i, m]) => m <= (before.get(i) ?? m) + slackMiB)) return;
    await new Promise((r) => setTimeout(r, 250));
  }
}
