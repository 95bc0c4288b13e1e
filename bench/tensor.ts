/**
 * Host tensors: a dtype, a row-major shape and the raw elements.
 * bf16 and f16 are kept as their 16-bit patterns so that bytes move to devices unchanged.
 */

export type Dtype = "f64" | "f32" | "bf16" | "f16";
export const DTYPES: readonly Dtype[] = ["f64", "f32", "bf16", "f16"];

export type TensorData = Float64Array | Float32Array | Uint16Array;

export interface Tensor {
  readonly dtype: Dtype;
  readonly shape: readonly number[];
  readonly data: TensorData;
}

export function bytesPerElement(dtype: Dtype): number {
  return dtype === "f64" ? 8 : dtype === "f32" ? 4 : 2;
}

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function tensor(dtype: Dtype, shape: readonly number[], data?: TensorData): Tensor {
  const n = numel(shape);
  const d = data ?? allocate(dtype, n);
  if (d.length !== n) {
    throw new Error(`tensor data has ${d.length} elements, shape [${shape}] needs ${n}`);
  }
  return { dtype, shape: [...shape], data: d };
}

function allocate(dtype: Dtype, n: number): TensorData {
  switch (dtype) {
    case "f64":
      return new Float64Array(n);
    case "f32":
      return new Float32Array(n);
    default:
      return new Uint16Array(n);
  }
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Round-to-nearest-even f32 -> bf16 bits; NaN stays NaN. */
export function f32ToBf16Bits(x: number): number {
  f32[0] = x;
  const b = u32[0];
  if ((b & 0x7f800000) === 0x7f800000 && (b & 0x007fffff) !== 0) return 0x7fc0;
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

export function bf16BitsToF32(h: number): number {
  u32[0] = h << 16;
  return f32[0];
}

/** Round-to-nearest-even to IEEE binary16 bits, with subnormals and overflow to infinity. */
export function f32ToF16Bits(x: number): number {
  f32[0] = x;
  const b = u32[0];
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let man = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (man ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    man |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = man & ((1 << shift) - 1);
    let m = man >>> shift;
    if (rest > half || (rest === half && (m & 1))) m++;
    return sign | m;
  }
  let m = man >>> 13;
  const rest = man & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (m & 1))) {
    m++;
    if (m === 0x400) {
      m = 0;
      e++;
      if (e >= 0x1f) return sign | 0x7c00;
    }
  }
  return sign | (e << 10) | m;
}

export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 0x1f) return m ? NaN : sign * Infinity;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

let bf16Table: Float32Array | undefined;
let f16Table: Float32Array | undefined;

/** Every 16-bit pattern decoded once: reading a 1M-token output is 512M lookups. */
function table(dtype: "bf16" | "f16"): Float32Array {
  if (dtype === "bf16") {
    bf16Table ??= Float32Array.from({ length: 65536 }, (_, h) => bf16BitsToF32(h));
    return bf16Table;
  }
  f16Table ??= Float32Array.from({ length: 65536 }, (_, h) => f16BitsToF32(h));
  return f16Table;
}

/** Element i as a JS number, whatever the storage. */
export function elementAt(t: Tensor, i: number): number {
  const v = t.data[i];
  return t.dtype === "bf16" || t.dtype === "f16" ? table(t.dtype)[v] : v;
}

/** Converts (rounding where the target is narrower) into a new tensor of `dtype`. */
export function cast(t: Tensor, dtype: Dtype): Tensor {
  if (t.dtype === dtype) return tensor(dtype, t.shape, t.data.slice());
  const n = t.data.length;
  const out = tensor(dtype, t.shape);
  const d = out.data;
  if (dtype === "f64" || dtype === "f32") {
    const src = t.dtype === "bf16" || t.dtype === "f16" ? table(t.dtype) : undefined;
    if (src) { for (let i = 0; i < n; i++) d[i] = src[t.data[i]]; }
    else d.set(t.data);
    return out;
  }
  const encode = dtype === "bf16" ? f32ToBf16Bits : f32ToF16Bits;
  for (let i = 0; i < n; i++) d[i] = encode(elementAt(t, i));
  return out;
}

export function toF64(t: Tensor): Float64Array {
  if (t.dtype === "f64") return t.data as Float64Array;
  return cast(t, "f64").data as Float64Array;
}

export function shapeString(shape: readonly number[]): string {
  return `[${shape.join(",")}]`;
}
