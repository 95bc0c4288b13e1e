/**
 * la forward, chunked, in three WGSL passes (see docs/webgpu.md):
 *   1. chunk_state.wgsl — per (chunk, head): local φ(K)ᵀV and Σφ(K) into an f32 workspace;
 *   2. chunk_scan.wgsl  — per head: exclusive prefix over chunks (h0/z0 first), totals out;
 *   3. chunk_out.wgsl   — per (chunk, head): o from the prefix state and the causal block.
 * This module plans the tiling for a shape, builds the pipelines and says how to dispatch;
 * buffers and timing belong to the backend (bench/backends/webgpu.ts).
 */
import type { OpParams, Shape } from "../../../bench/ops.ts";
import { Unsupported } from "../../../bench/backends/backend.ts";

export type LaStorage = "f32" | "f16" | "bf16";

/** Binding numbers shared by the three passes (one bind group layout for all). */
export const BIND = {
  params: 0,
  q: 1,
  k: 2,
  v: 3,
  o: 4,
  ws: 5,
  h0: 6,
  z0: 7,
  final_state: 8,
  final_z: 9,
} as const;

export interface LaChunkPlan {
  dtype: LaStorage;
  C: number;
  /** Chunks per sequence. */
  NC: number;
  BH: number;
  /** f32 words per (head, chunk) in the workspace: K·V state + K key sum. */
  KVZ: number;
  /** Workspace bytes over all groups. */
  wsBytes: number;
  /**
   * Heads split into groups, each with its own workspace buffer (one binding each) and its
   * own dispatches: group g covers heads base..base+count-1.
   */
  groups: { base: number; count: number }[];
  normalize: boolean;
  scale: number;
  state: { RK: number; RV: number; TT: number };
  scan: { WG: number };
  out: { RT: number; RV: number; KT: number };
  /** Workgroup-memory bytes each pass needs. */
  shared: { state: number; out: number };
}

export interface DeviceLimits {
  maxComputeWorkgroupStorageSize: number;
  maxComputeInvocationsPerWorkgroup: number;
  maxComputeWorkgroupSizeX: number;
  maxComputeWorkgroupsPerDimension: number;
  maxStorageBufferBindingSize: number;
  maxBufferSize: number;
}

const MT = 4; // per-invocation register tile, as in common.wgsl

/** Chooses tile shapes for a problem; throws Unsupported when the shape cannot be tiled. */
export function planLaChunk(
  shape: Shape,
  params: OpParams,
  dtype: LaStorage,
  limits: DeviceLimits,
): LaChunkPlan {
  const { B, T, H, K, V } = shape;
  const C = Math.min(params.chunk_size, T);
  const NC = Math.ceil(T / C);
  const BH = B * H;
  const maxInv = Math.min(
    limits.maxComputeInvocationsPerWorkgroup,
    limits.maxComputeWorkgroupSizeX,
  );
  const maxShared = limits.maxComputeWorkgroupStorageSize;
  if (dtype === "bf16" && V % 2 !== 0) {
    throw new Unsupported(`webgpu la/chunk bf16 needs an even V (packed bf16 pairs), got V=${V}`);
  }
  if (
    NC > limits.maxComputeWorkgroupsPerDimension
  ) {
    throw new Unsupported(
      `webgpu la/chunk: ${NC} chunks exceed maxComputeWorkgroupsPerDimension ` +
        `${limits.maxComputeWorkgroupsPerDimension}; use a larger chunk_size`,
    );
  }
  const ceil = (a: number, b: number) => Math.ceil(a / b);
  const state = { RK: ceil(K, MT), RV: ceil(V, MT), TT: 16 };
  const out = { RT: ceil(C, MT), RV: ceil(Math.max(V, C), MT), KT: 16 };
  if (state.RK * state.RV > maxInv || out.RT * out.RV > maxInv) {
    throw new Unsupported(
      `webgpu la/chunk: K=${K}, V=${V}, chunk_size=${C} need ${
        Math.max(state.RK * state.RV, out.RT * out.RV)
      } invocations per workgroup (limit ${maxInv}); at most ${MT}·sqrt(limit) per dimension`,
    );
  }
  const sharedState = (t: number) => 4 * t * (K + V);
  const sharedOut = (kt: number) => 4 * (C * C + 2 * kt * C + kt * V);
  while (state.TT > 1 && sharedState(state.TT) > maxShared) state.TT >>= 1;
  while (out.KT > 1 && sharedOut(out.KT) > maxShared) out.KT >>= 1;
  if (sharedState(state.TT) > maxShared || sharedOut(out.KT) > maxShared) {
    throw new Unsupported(
      `webgpu la/chunk: chunk_size=${C}, K=${K}, V=${V} need ${sharedOut(1)} bytes of workgroup ` +
        `memory, limit ${maxShared}`,
    );
  }
  const KVZ = K * V + K;
  const perHead = 4 * NC * KVZ;
  const maxWs = Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize);
  if (perHead > maxWs) {
    throw new Unsupported(
      `webgpu la/chunk: one head's workspace is ${perHead} bytes (${NC} chunks × ${KVZ} f32), ` +
        `above maxStorageBufferBindingSize ${maxWs}; use a larger chunk_size`,
    );
  }
  const G = Math.min(limits.maxComputeWorkgroupsPerDimension, Math.floor(maxWs / perHead));
  const groups: { base: number; count: number }[] = [];
  for (let base = 0; base < BH; base += G) groups.push({ base, count: Math.min(G, BH - base) });
  return {
    dtype,
    C,
    NC,
    BH,
    KVZ,
    wsBytes: perHead * BH,
    groups,
    normalize: params.normalize,
    scale: params.scale,
    state,
    scan: { WG: Math.min(256, maxInv) },
    out,
    shared: { state: sharedState(state.TT), out: sharedOut(out.KT) },
  };
}

const sources = new Map<string, Promise<string>>();
function source(name: string): Promise<string> {
  let s = sources.get(name);
  if (!s) {
    s = Deno.readTextFile(new URL(`./${name}`, import.meta.url));
    sources.set(name, s);
  }
  return s;
}

/** WGSL text of one pass for a storage dtype: io snippet, common declarations, pass body. */
export async function passSource(
  dtype: LaStorage,
  pass: "state" | "scan" | "out",
): Promise<string> {
  const [io, common, body] = await Promise.all([
    source(`io_${dtype}.wgsl`),
    source("common.wgsl"),
    source(`chunk_${pass}.wgsl`),
  ]);
  return `${io}\n${common}\n${body}`;
}

export interface LaChunkPass {
  label: string;
  pipeline: GPUComputePipeline;
  /** Workgroup counts for a group of `heads` heads. */
  workgroups: (heads: number) => [number, number];
}

export interface LaChunkKernel {
  layout: GPUBindGroupLayout;
  passes: LaChunkPass[];
}

export function bindGroupLayout(device: GPUDevice): GPUBindGroupLayout {
  const S = GPUShaderStage.COMPUTE;
  const ro = { buffer: { type: "read-only-storage" as const } };
  const rw = { buffer: { type: "storage" as const } };
  return device.createBindGroupLayout({
    label: "la/chunk",
    entries: [
      { binding: BIND.params, visibility: S, buffer: { type: "uniform" } },
      { binding: BIND.q, visibility: S, ...ro },
      { binding: BIND.k, visibility: S, ...ro },
      { binding: BIND.v, visibility: S, ...ro },
      { binding: BIND.o, visibility: S, ...rw },
      { binding: BIND.ws, visibility: S, ...rw },
      { binding: BIND.h0, visibility: S, ...ro },
      { binding: BIND.z0, visibility: S, ...ro },
      { binding: BIND.final_state, visibility: S, ...rw },
      { binding: BIND.final_z, visibility: S, ...rw },
    ],
  });
}

/** Compiles the three pipelines; compilation errors surface as thrown Errors. */
export async function buildLaChunk(
  device: GPUDevice,
  plan: LaChunkPlan,
  shape: Shape,
): Promise<LaChunkKernel> {
  const layout = bindGroupLayout(device);
  const pipelineLayout = device.createPipelineLayout({ bindGroupLayouts: [layout] });
  const { K, V } = shape;
  const dims = { C: plan.C, K, V };
  const make = async (pass: "state" | "scan" | "out", constants: Record<string, number>) => {
    const code = await passSource(plan.dtype, pass);
    const module = device.createShaderModule({ label: `la/chunk_${pass}/${plan.dtype}`, code });
    const info = await module.getCompilationInfo();
    const errors = info.messages.filter((m) => m.type === "error");
    if (errors.length > 0) {
      throw new Error(
        `WGSL la/chunk_${pass} (${plan.dtype}): ${
          errors.map((m) => `${m.lineNum}:${m.linePos} ${m.message}`).join("; ")
        }`,
      );
    }
    return device.createComputePipelineAsync({
      label: `la/chunk_${pass}/${plan.dtype}`,
      layout: pipelineLayout,
      compute: { module, entryPoint: "main", constants },
    });
  };
  const norm = plan.normalize ? 1 : 0;
  const [state, scan, out] = await Promise.all([
    make("state", { ...dims, ...plan.state }),
    make("scan", { K, V, WG: plan.scan.WG, NORMALIZE: norm }),
    make("out", { ...dims, ...plan.out, NORMALIZE: norm }),
  ]);
  return {
    layout,
    passes: [
      { label: "state", pipeline: state, workgroups: (n) => [plan.NC, n] },
      { label: "scan", pipeline: scan, workgroups: (n) => [Math.ceil(plan.KVZ / plan.scan.WG), n] },
      { label: "out", pipeline: out, workgroups: (n) => [plan.NC, n] },
    ],
  };
}

/** The uniform block of common.wgsl (`Params`) for the group starting at head `bhBase`. */
export function paramsBlock(
  plan: LaChunkPlan,
  shape: Shape,
  hasH0: boolean,
  hasZ0: boolean,
  bhBase: number,
): ArrayBuffer {
  const buf = new ArrayBuffer(32);
  const dv = new DataView(buf);
  dv.setUint32(0, shape.T, true);
  dv.setUint32(4, shape.H, true);
  dv.setUint32(8, plan.NC, true);
  dv.setUint32(12, plan.BH, true);
  dv.setFloat32(16, plan.scale, true);
  dv.setUint32(20, hasH0 ? 1 : 0, true);
  dv.setUint32(24, hasZ0 ? 1 : 0, true);
  dv.setUint32(28, bhBase, true);
  return buf;
}
