// gla's `recurrent` baseline (LAK_IMPL_RECURRENT): token by token, the state in registers,
// forward and backward. The kernels and launchers are shared: common/recurrent_*.cuh.
#include "../common/recurrent_host.cuh"
#include "../runtime/op_registry.h"

namespace lak {

extern const OpEntry kGlaRecurrent = {LAK_VARIANT_GLA, LAK_IMPL_RECURRENT, rec::check<rec::kGla>,
                                      rec::workspace<rec::kGla>, rec::forward<rec::kGla>,
                                      rec::backward<rec::kGla>};

}  // namespace lak
