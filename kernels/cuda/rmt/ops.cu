// rmt's entries in the op table (being written).
#include "../runtime/op_registry.h"
#include "../runtime/runtime.h"

namespace lak {
namespace {
int check_chunk(const lak_op_params&, bool) {
  return fail(LAK_ERR_UNSUPPORTED, "rmt chunk is not implemented yet");
}
size_t ws(const lak_op_params&) { return 0; }
}  // namespace
extern const OpEntry kRmtChunk = {LAK_VARIANT_RMT, LAK_IMPL_CHUNK, check_chunk, ws, nullptr,
                                  nullptr};
}  // namespace lak
