// la's `recurrent` baseline (LAK_IMPL_RECURRENT): token by token, the state in registers,
// forward and backward. The kernels and launchers are shared: common/recurrent_*.cuh.
#include "../common/recurrent_host.cuh"
#include "../runtime/op_registry.h"

namespace lak {

extern const OpEntry kLaRecurrent = {LAK_VARIANT_LA, LAK_IMPL_RECURRENT, rec::check<rec::kLa>,
                                      rec::workspace<rec::kLa>, rec::forward<rec::kLa>,
                                      rec::backward<rec::kLa>};

}  // namespace lak
