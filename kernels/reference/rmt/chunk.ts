/**
 * Recurrent memory attention in the FlashAttention block algebra: within each segment the
 * memory rows are one leading key/value block and the segment's tokens follow in blocks of
 * C = chunk_size (aligned to the segment start); the memory update runs the same blocked
 * online softmax with the memory rows as queries. The segment chain is recurrent.ts's.
 */
import type { ReferenceImpl } from "../types.ts";
import { flashEngine } from "../softmax/chunk.ts";
import { rmtImpl } from "./recurrent.ts";

export const chunk: ReferenceImpl = rmtImpl((p) => flashEngine(p.chunk_size));
