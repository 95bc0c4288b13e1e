// deltanet's `recurrent` baseline (LAK_IMPL_RECURRENT): token by token, the state in registers,
// forward and backward. The kernels and launchers are shared: common/recurrent_*.cuh.
#include "../common/recurrent_host.cuh"
#include "../runtime/op_registry.h"

namespace lak {

extern const OpEntry kDeltanetRecurrent = {LAK_VARIANT_DELTANET, LAK_IMPL_RECURRENT, rec::check<rec::kDeltanet>,
                                      rec::workspace<rec::kDeltanet>, rec::forward<rec::kDeltanet>,
                                      rec::backward<rec::kDeltanet>};

}  // namespace lak
