/**
 * The fp64 references by variant and impl. `recurrent` (la, gla, deltanet, rmt) and `direct`
 * (softmax) are the oracles: the op's definition step by step. `chunk` computes the same
 * function with the chunk algebra the GPU kernels use, so a kernel bug and an algebra bug can
 * be told apart.
 */
import type { Variant } from "../../bench/ops.ts";
import type { ReferenceImpl } from "./types.ts";
import { recurrent as laRecurrent } from "./la/recurrent.ts";
import { chunk as laChunk } from "./la/chunk.ts";
import { recurrent as glaRecurrent } from "./gla/recurrent.ts";
import { chunk as glaChunk } from "./gla/chunk.ts";
import { recurrent as deltanetRecurrent } from "./deltanet/recurrent.ts";
import { chunk as deltanetChunk } from "./deltanet/chunk.ts";
import { recurrent as rmtRecurrent } from "./rmt/recurrent.ts";
import { chunk as rmtChunk } from "./rmt/chunk.ts";
import { direct as softmaxDirect } from "./softmax/direct.ts";
import { chunk as softmaxChunk } from "./softmax/chunk.ts";

export interface ReferenceEntry {
  /** The oracle's impl name. */
  oracle: string;
  impls: Record<string, ReferenceImpl>;
}

export const REFERENCES: Record<Variant, ReferenceEntry> = {
  la: { oracle: "recurrent", impls: { recurrent: laRecurrent, chunk: laChunk } },
  gla: { oracle: "recurrent", impls: { recurrent: glaRecurrent, chunk: glaChunk } },
  deltanet: { oracle: "recurrent", impls: { recurrent: deltanetRecurrent, chunk: deltanetChunk } },
  rmt: { oracle: "recurrent", impls: { recurrent: rmtRecurrent, chunk: rmtChunk } },
  softmax: { oracle: "direct", impls: { direct: softmaxDirect, chunk: softmaxChunk } },
};

export function oracle(variant: Variant): ReferenceImpl {
  const e = REFERENCES[variant];
  return e.impls[e.oracle];
}
