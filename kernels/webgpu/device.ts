/**
 * Opening a WebGPU device with the adapter's own limits, error scopes that turn WebGPU's
 * asynchronous errors into thrown ones, and byte accounting of live buffers.
 */
import { BackendUnavailable, OutOfMemory } from "../../bench/backends/backend.ts";

/** Limits requested at the adapter's value (the spec defaults are far lower). */
export const REQUESTED_LIMITS = [
  "maxStorageBufferBindingSize",
  "maxBufferSize",
  "maxComputeWorkgroupStorageSize",
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupSizeX",
  "maxComputeWorkgroupSizeY",
  "maxComputeWorkgroupSizeZ",
  "maxComputeWorkgroupsPerDimension",
  "maxStorageBuffersPerShaderStage",
] as const;
export type RequestedLimit = typeof REQUESTED_LIMITS[number];

/** Features used when the adapter has them. */
export const OPTIONAL_FEATURES = ["timestamp-query", "shader-f16"] as const;

export interface OpenedDevice {
  adapter: GPUAdapter;
  device: GPUDevice;
  adapterInfo: {
    vendor: string;
    architecture: string;
    device: string;
    description: string;
    isFallbackAdapter: boolean;
  };
  adapterLimits: Record<RequestedLimit, number>;
  limits: Record<RequestedLimit, number>;
  features: string[];
}

export async function openDevice(): Promise<OpenedDevice> {
  const gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
  if (!gpu) throw new BackendUnavailable("webgpu", "navigator.gpu is missing in this runtime");
  let adapter: GPUAdapter | null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
  } catch (e) {
    throw new BackendUnavailable("webgpu", `requestAdapter failed: ${(e as Error).message}`);
  }
  if (!adapter) {
    throw new BackendUnavailable(
      "webgpu",
      "requestAdapter returned null (no Vulkan driver/ICD, or libvulkan.so.1 missing)",
    );
  }
  const adapterLimits = {} as Record<RequestedLimit, number>;
  for (const name of REQUESTED_LIMITS) adapterLimits[name] = adapter.limits[name];
  const features = OPTIONAL_FEATURES.filter((f) => adapter.features.has(f));
  const device = await adapter.requestDevice({
    label: "lab webgpu",
    requiredFeatures: features,
    requiredLimits: adapterLimits,
  });
  const limits = {} as Record<RequestedLimit, number>;
  for (const name of REQUESTED_LIMITS) limits[name] = device.limits[name];
  const info = adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean };
  const legacy = adapter as GPUAdapter & { isFallbackAdapter?: boolean };
  return {
    adapter,
    device,
    adapterInfo: {
      vendor: info.vendor,
      architecture: info.architecture,
      device: info.device,
      description: info.description,
      isFallbackAdapter: Boolean(info.isFallbackAdapter ?? legacy.isFallbackAdapter),
    },
    adapterLimits,
    limits,
    features: [...device.features].sort(),
  };
}

/**
 * Runs `fn` inside out-of-memory and validation error scopes. A validation error becomes an
 * Error with WebGPU's message, an out-of-memory error an OutOfMemory; `fn`'s own throw wins.
 */
export async function scoped<T>(
  device: GPUDevice,
  what: string,
  fn: () => Promise<T> | T,
): Promise<T> {
  device.pushErrorScope("out-of-memory");
  device.pushErrorScope("validation");
  let result: T | undefined;
  let thrown: unknown;
  let failed = false;
  try {
    result = await fn();
  } catch (e) {
    thrown = e;
    failed = true;
  }
  const validation = await device.popErrorScope();
  const oom = await device.popErrorScope();
  if (failed) throw thrown;
  if (oom) throw new OutOfMemory(`webgpu: out of memory during ${what}: ${oom.message}`);
  if (validation) throw new Error(`webgpu validation error during ${what}: ${validation.message}`);
  return result as T;
}

/** Creates and destroys buffers, keeping live and peak byte counts. */
export class BufferPool {
  inUse = 0;
  peak = 0;
  readonly #live = new Set<GPUBuffer>();
  constructor(readonly device: GPUDevice) {}

  create(label: string, size: number, usage: number): GPUBuffer {
    const aligned = Math.max(4, Math.ceil(size / 4) * 4);
    const buf = this.device.createBuffer({ label, size: aligned, usage });
    this.#live.add(buf);
    this.inUse += aligned;
    this.peak = Math.max(this.peak, this.inUse);
    return buf;
  }

  destroy(buf: GPUBuffer): void {
    if (!this.#live.delete(buf)) return;
    this.inUse -= buf.size;
    buf.destroy();
  }

  resetPeak(): void {
    this.peak = this.inUse;
  }
}

/** Reads `size` bytes of a buffer from `offset` (both multiples of 4) through a staging copy. */
export async function readBuffer(
  device: GPUDevice,
  src: GPUBuffer,
  size = src.size,
  offset = 0,
): Promise<ArrayBuffer> {
  const staging = device.createBuffer({
    size,
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  try {
    const enc = device.createCommandEncoder();
    enc.copyBufferToBuffer(src, offset, staging, 0, size);
    device.queue.submit([enc.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    return staging.getMappedRange().slice(0);
  } finally {
    staging.destroy();
  }
}

/** Writes `data` into `dst` in pieces of at most 64 MiB (keeps staging copies small). */
export function upload(device: GPUDevice, dst: GPUBuffer, data: ArrayBufferView): void {
  const bytes = new Uint8Array(data.buffer as ArrayBuffer, data.byteOffset, data.byteLength);
  const piece = 64 << 20;
  for (let off = 0; off < bytes.byteLength; off += piece) {
    const end = Math.min(bytes.byteLength, off + piece);
    const len = end - off;
    if (len % 4 === 0) {
      device.queue.writeBuffer(dst, off, bytes, off, len);
    } else {
      const padded = new Uint8Array(Math.ceil(len / 4) * 4);
      padded.set(bytes.subarray(off, end));
      device.queue.writeBuffer(dst, off, padded);
    }
  }
}

/** Fills `dst` with a repeating 32-bit word. */
export function fillWords(device: GPUDevice, dst: GPUBuffer, word: number): void {
  const piece = Math.min(dst.size, 16 << 20);
  const pattern = new Uint32Array(piece / 4).fill(word >>> 0);
  for (let off = 0; off < dst.size; off += piece) {
    device.queue.writeBuffer(dst, off, pattern, 0, Math.min(piece, dst.size - off) / 4);
  }
}
