/**
 * Reads and writes the safetensors format: an 8-byte little-endian header length, a JSON
 * header ({name: {dtype, shape, data_offsets}, "__metadata__": {string: string}}), then the
 * raw little-endian tensor bytes.
 */
import { type Dtype, numel, type Tensor, tensor } from "./tensor.ts";
import { InputError } from "./ops.ts";

const TO_DTYPE: Record<string, Dtype> = { F64: "f64", F32: "f32", BF16: "bf16", F16: "f16" };
const FROM_DTYPE: Record<Dtype, string> = { f64: "F64", f32: "F32", bf16: "BF16", f16: "F16" };

export interface SafetensorsFile {
  tensors: Record<string, Tensor>;
  metadata: Record<string, string>;
}

export function parseSafetensors(bytes: Uint8Array, source = "input"): SafetensorsFile {
  if (bytes.length < 8) throw new InputError(`${source}: not a safetensors file (too short)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = Number(view.getBigUint64(0, true));
  if (headerLen > bytes.length - 8 || headerLen > 100_000_000) {
    throw new InputError(
      `${source}: not a safetensors file (header length ${headerLen} is out of range)`,
    );
  }
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLen)));
  } catch {
    throw new InputError(`${source}: not a safetensors file (header is not JSON)`);
  }
  const dataStart = 8 + headerLen;
  const tensors: Record<string, Tensor> = {};
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(header)) {
    if (name === "__metadata__") {
      metadata = entry as Record<string, string>;
      continue;
    }
    const e = entry as { dtype?: string; shape?: number[]; data_offsets?: [number, number] };
    const dtype = e.dtype ? TO_DTYPE[e.dtype] : undefined;
    if (!dtype) {
      throw new InputError(
        `${source}: tensor '${name}' has dtype ${e.dtype}; supported: F64, F32, BF16, F16`,
      );
    }
    if (!Array.isArray(e.shape) || !Array.isArray(e.data_offsets)) {
      throw new InputError(`${source}: tensor '${name}' lacks shape or data_offsets`);
    }
    const [begin, end] = e.data_offsets;
    const n = numel(e.shape);
    const width = dtype === "f64" ? 8 : dtype === "f32" ? 4 : 2;
    if (end - begin !== n * width || dataStart + end > bytes.length || begin < 0) {
      throw new InputError(
        `${source}: tensor '${name}' has ${end - begin} bytes for shape [${e.shape}] of ${e.dtype}`,
      );
    }
    // Copy so the typed array is aligned whatever the header length was.
    const raw = bytes.slice(dataStart + begin, dataStart + end).buffer;
    const data = dtype === "f64"
      ? new Float64Array(raw)
      : dtype === "f32"
      ? new Float32Array(raw)
      : new Uint16Array(raw);
    tensors[name] = tensor(dtype, e.shape, data);
  }
  return { tensors, metadata };
}

export function serializeSafetensors(
  tensors: Record<string, Tensor>,
  metadata: Record<string, string> = {},
): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  const names = Object.keys(tensors).sort();
  for (const name of names) {
    const t = tensors[name];
    const size = t.data.byteLength;
    header[name] = {
      dtype: FROM_DTYPE[t.dtype],
      shape: t.shape,
      data_offsets: [offset, offset + size],
    };
    offset += size;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  // Pad the header with spaces so the data starts 8-byte aligned, as the reference writer does.
  const pad = (8 - (json.length % 8)) % 8;
  if (pad) json = new TextEncoder().encode(JSON.stringify(header) + " ".repeat(pad));
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let at = 8 + json.length;
  for (const name of names) {
    const d = tensors[name].data;
    out.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), at);
    at += d.byteLength;
  }
  return out;
}
