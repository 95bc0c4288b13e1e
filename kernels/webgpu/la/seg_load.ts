/**
 * The storage side of the loaders of the segmented la candidates (`la.out` 5 and 7, `la.state` 3 and 4;
 * seg_load.wgsl builds on it): read-only inputs bound as whole storage words, f32 for f32 and u32
 * (two 16-bit values, element 2w in the low half) for f16 and bf16, with per tensor x:
 *   raw4_x(i, n) -> Raw4   the words that hold elements i…i+3 of x, as loaded (the first n of
 *                          the four inside the row, 1 ≤ n ≤ 4; the others read element i + n − 1);
 *   cook4_x(w, i) -> vec4f those four elements as f32.
 * Nothing is computed on a loaded word in raw4_x, so a caller can keep its result in registers
 * while the loads are in flight (seg_out5.wgsl's prefetch) and unpack it later. Where the rows of
 * x have an even length, every group of four starts on a word, and the 16-bit types load two
 * words per group; otherwise each element's word is loaded on its own.
 */
import type { Storage } from "../kernel.ts";

/** WGSL for `[name, binding, row length]` of each input tensor, in `dtype` storage. */
export function loadSource(dtype: Storage, tensors: [string, number, number][]): string {
  const out: string[] = [];
  if (dtype === "f32") {
    out.push("alias Raw4 = vec4f;");
  } else {
    out.push(
      "alias Raw4 = vec4u;",
      "// The two 16-bit values of a word as f32, low half first.",
      dtype === "bf16"
        ? "fn unpack2(w: u32) -> vec2f { return bitcast<vec2f>(vec2u(w << 16u, w & 0xffff0000u)); }"
        : "fn unpack2(w: u32) -> vec2f { return unpack2x16float(w); }",
    );
    if (tensors.some(([, , D]) => D % 2 !== 0)) {
      out.push(
        "// Element i's half of its word w.",
        "fn half_at(w: u32, i: u32) -> f32 {",
        "  let h = unpack2(w);",
        "  return select(h.x, h.y, (i & 1u) == 1u);",
        "}",
      );
    }
  }
  for (const [name, binding, D] of tensors) {
    const t = `t_${name}`;
    const at = (j: number) => j === 0 ? "i" : `i + min(${j}u, n - 1u)`;
    out.push(
      `@group(0) @binding(${binding}) var<storage, read> ${t}: array<${
        dtype === "f32" ? "f32" : "u32"
      }>;`,
    );
    if (dtype === "f32") {
      out.push(
        `fn raw4_${name}(i: u32, n: u32) -> Raw4 {`,
        `  return vec4f(${[0, 1, 2, 3].map((j) => `${t}[${at(j)}]`).join(", ")});`,
        "}",
        `fn cook4_${name}(w: Raw4, i: u32) -> vec4f { return w; }`,
      );
    } else if (D % 2 === 0) {
      out.push(
        `fn raw4_${name}(i: u32, n: u32) -> Raw4 {`,
        "  let w = i >> 1u;",
        `  return vec4u(${t}[w], ${t}[w + select(0u, 1u, n > 2u)], 0u, 0u);`,
        "}",
        `fn cook4_${name}(w: Raw4, i: u32) -> vec4f { return vec4f(unpack2(w.x), unpack2(w.y)); }`,
      );
    } else {
      out.push(
        `fn raw4_${name}(i: u32, n: u32) -> Raw4 {`,
        `  return vec4u(${
          [0, 1, 2, 3].map((j) => `${t}[${j ? `(${at(j)})` : "i"} >> 1u]`).join(", ")
        });`,
        "}",
        `fn cook4_${name}(w: Raw4, i: u32) -> vec4f {`,
        "  return vec4f(half_at(w.x, i), half_at(w.y, i + 1u), half_at(w.z, i + 2u), " +
          "half_at(w.w, i + 3u));",
        "}",
      );
    }
  }
  return out.join("\n");
}
