// rmt's entries in the op table: chunk = the memory chain (rmt/chain.cu, sequential per (b,h))
// plus one parallel launch of the flash attention core (softmax/flash.h) for every segment's
// tokens given the stored per-segment memories.
#include <cmath>

#include "../runtime/op_registry.h"
#include "../runtime/runtime.h"
#include "../softmax/flash.h"
#include "chain.h"

namespace lak {
namespace {

constexpr size_t kAlign = 256;
size_t up(size_t x) { return (x + kAlign - 1) / kAlign * kAlign; }

int64_t nseg_of(const lak_op_params& p) { return (p.T + p.segment_len - 1) / p.segment_len; }

// Workspace (byte offsets): memories M_0 … M_S, the updates' lse, the tokens' lse and di, the
// token attention's memory-row gradients, then (bf16 only) fp32 dq, dk, dv accumulators.
struct RmtWs {
  size_t mems, ulse, lse, di, dmemtok, dq, dk, dv, total;
};
RmtWs rmt_ws(const lak_op_params& p) {
  const size_t bh = static_cast<size_t>(p.B * p.H), S = static_cast<size_t>(nseg_of(p));
  const size_t M = static_cast<size_t>(p.M), D = static_cast<size_t>(p.K);
  const size_t T = static_cast<size_t>(p.T);
  const size_t tok = p.dtype == LAK_DTYPE_BF16 ? up(bh * T * D * 4) : 0;
  RmtWs w;
  w.mems = 0;
  w.ulse = w.mems + up(bh * (S + 1) * M * D * 4);
  w.lse = w.ulse + up(bh * S * M * 4);
  w.di = w.lse + up(bh * T * 4);
  w.dmemtok = w.di + up(bh * T * 4);
  w.dq = w.dmemtok + up(bh * S * M * D * 4);
  w.dk = w.dq + tok;
  w.dv = w.dk + tok;
  w.total = w.dv + tok;
  return w;
}

rmt::Chain chain_of(const lak_op_params& p) {
  const RmtWs w = rmt_ws(p);
  char* ws = reinterpret_cast<char*>(p.workspace);
  rmt::Chain c;
  c.bf16 = p.dtype == LAK_DTYPE_BF16;
  c.k = reinterpret_cast<const void*>(p.k);
  c.v = reinterpret_cast<const void*>(p.v);
  c.mem = reinterpret_cast<const void*>(p.mem);
  c.mems = reinterpret_cast<float*>(ws + w.mems);
  c.lse = reinterpret_cast<float*>(ws + w.ulse);
  c.final_state = reinterpret_cast<float*>(p.final_state);
  c.B = p.B;
  c.T = p.T;
  c.H = p.H;
  c.D = p.K;
  c.M = p.M;
  c.L = p.segment_len;
  c.nseg = nseg_of(p);
  c.scale = static_cast<float>(p.scale);
  return c;
}

attn::Problem problem_of(const lak_op_params& p) {
  const RmtWs w = rmt_ws(p);
  char* ws = reinterpret_cast<char*>(p.workspace);
  attn::Problem pr;
  pr.bf16 = p.dtype == LAK_DTYPE_BF16;
  pr.q = reinterpret_cast<const void*>(p.q);
  pr.k = reinterpret_cast<const void*>(p.k);
  pr.v = reinterpret_cast<const void*>(p.v);
  pr.mems = reinterpret_cast<const float*>(ws + w.mems);
  pr.o = reinterpret_cast<void*>(p.o);
  pr.lse = reinterpret_cast<float*>(ws + w.lse);
  pr.di = reinterpret_cast<float*>(ws + w.di);
  pr.dmemtok = reinterpret_cast<float*>(ws + w.dmemtok);
  pr.B = p.B;
  pr.T = p.T;
  pr.H = p.H;
  pr.D = p.K;
  pr.M = p.M;
  pr.L = p.segment_len;
  pr.nseg = nseg_of(p);
  pr.scale = static_cast<float>(p.scale);
  return pr;
}

int check_chunk(const lak_op_params& p, bool backward) {
  if (p.M > 64) {
    return fail(LAK_ERR_UNSUPPORTED, "rmt chunk supports M <= 64 memory rows; got M=%lld",
                static_cast<long long>(p.M));
  }
  if (p.K != p.V || (p.K != 64 && p.K != 128)) {
    return fail(LAK_ERR_UNSUPPORTED, "rmt chunk supports K = V in {64, 128}; got K=%lld V=%lld",
                static_cast<long long>(p.K), static_cast<long long>(p.V));
  }
  const double elems = static_cast<double>(p.B) * p.T * p.H * p.K;
  if (elems > 4.0e18) return fail(LAK_ERR_INVALID, "B*T*H*K = %.3g is too large", elems);
  const struct {
    const char* name;
    uint64_t ptr;
    bool required;
  } ptrs[] = {
      {"q", p.q, true},
      {"k", p.k, true},
      {"v", p.v, true},
      {"mem", p.mem, true},
      {"o", p.o, !backward},
      {"final_state", p.final_state, !backward},
      {"do_", p.do_, backward},
      {"dq", p.dq, backward},
      {"dk", p.dk, backward},
      {"dv", p.dv, backward},
      {"dmem", p.dmem, backward},
  };
  for (const auto& x : ptrs) {
    if (x.required && x.ptr == 0) {
      return fail(LAK_ERR_INVALID, "field '%s' is a null pointer; rmt %s needs it", x.name,
                  backward ? "backward" : "forward");
    }
    if (x.ptr % 16 != 0) {
      return fail(LAK_ERR_INVALID, "field '%s' (0x%llx) is not 16-byte aligned", x.name,
                  static_cast<unsigned long long>(x.ptr));
    }
  }
  LAK_TRY(rmt::chain_check(chain_of(p)));
  return attn::check(problem_of(p));
}

size_t chunk_workspace(const lak_op_params& p) { return rmt_ws(p).total; }

int chunk_forward(const lak_op_params& p, cudaStream_t stream) {
  LAK_TRY(rmt::chain_forward(chain_of(p), stream));
  return attn::forward(problem_of(p), stream);
}

// Forward chain and token attention (o where set, lse, di) recomputed into the workspace; the
// parallel token backward (dq atomically, dk/dv of token keys, dK̃+dṼ of memory rows per
// segment); then the reverse chain adds the updates' share to dk/dv and carries dM to dmem.
int chunk_backward(const lak_op_params& p, cudaStream_t stream) {
  rmt::Chain c = chain_of(p);
  LAK_TRY(rmt::chain_forward(c, stream));
  attn::Problem pr = problem_of(p);
  pr.do_ = reinterpret_cast<const void*>(p.do_);
  LAK_TRY(attn::forward(pr, stream));
  const RmtWs w = rmt_ws(p);
  char* ws = reinterpret_cast<char*>(p.workspace);
  const bool bf16 = pr.bf16;
  float* dq = bf16 ? reinterpret_cast<float*>(ws + w.dq) : reinterpret_cast<float*>(p.dq);
  float* dk = bf16 ? reinterpret_cast<float*>(ws + w.dk) : reinterpret_cast<float*>(p.dk);
  float* dv = bf16 ? reinterpret_cast<float*>(ws + w.dv) : reinterpret_cast<float*>(p.dv);
  const int64_t n = p.B * p.T * p.H * p.K;
  LAK_CUDA(cudaMemsetAsync(dq, 0, static_cast<size_t>(n) * 4, stream), "cudaMemsetAsync(dq)");
  pr.dq_acc = dq;
  pr.dk = dk;
  pr.dv = dv;
  pr.dkv_f32 = true;
  LAK_TRY(attn::backward(pr, stream));
  c.dmemtok = pr.dmemtok;
  c.dk_acc = dk;
  c.dv_acc = dv;
  c.dmem = reinterpret_cast<void*>(p.dmem);
  LAK_TRY(rmt::chain_backward(c, stream));
  if (bf16) {
    LAK_TRY(attn::store_f32(dq, reinterpret_cast<void*>(p.dq), n, true, stream));
    LAK_TRY(attn::store_f32(dk, reinterpret_cast<void*>(p.dk), n, true, stream));
    LAK_TRY(attn::store_f32(dv, reinterpret_cast<void*>(p.dv), n, true, stream));
  }
  return LAK_OK;
}

}  // namespace

extern const OpEntry kRmtChunk = {LAK_VARIANT_RMT, LAK_IMPL_CHUNK, check_chunk, chunk_workspace,
                                  chunk_forward, chunk_backward};

}  // namespace lak
