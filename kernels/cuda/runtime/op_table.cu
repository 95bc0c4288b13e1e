// The list of ops in this build (see op_registry.h).
#include "op_registry.h"

namespace lak {

extern const OpEntry kLaChunk;

namespace {
const OpEntry* const kOps[] = {
    &kLaChunk,
};
}  // namespace

const OpEntry* find_op(int64_t variant, int64_t impl) {
  for (const OpEntry* e : kOps) {
    if (e->variant == variant && e->impl == impl) return e;
  }
  return nullptr;
}

}  // namespace lak
