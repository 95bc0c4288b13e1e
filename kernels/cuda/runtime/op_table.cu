// The list of ops in this build (see op_registry.h).
#include "op_registry.h"

namespace lak {

extern const OpEntry kLaChunk;
extern const OpEntry kGlaChunk;
extern const OpEntry kDeltanetChunk;
extern const OpEntry kSoftmaxFlash;
extern const OpEntry kRmtChunk;
extern const OpEntry kLaRecurrent;
extern const OpEntry kGlaRecurrent;
extern const OpEntry kDeltanetRecurrent;
extern const OpEntry kLaQuadratic;
extern const OpEntry kSoftmaxQuadratic;

namespace {
const OpEntry* const kOps[] = {
    &kLaChunk,
    &kGlaChunk,
    &kDeltanetChunk,
    &kSoftmaxFlash,
    &kRmtChunk,
    &kLaRecurrent,
    &kGlaRecurrent,
    &kDeltanetRecurrent,
    &kLaQuadratic,
    &kSoftmaxQuadratic,
};
}  // namespace

const OpEntry* find_op(int64_t variant, int64_t impl) {
  for (const OpEntry* e : kOps) {
    if (e->variant == variant && e->impl == impl) return e;
  }
  return nullptr;
}

}  // namespace lak
