/*
 * forward_direct.cu - forward by the direct-correlation engine (src/cuda/direct): y from x,
 * every variant of the engine (direct/plan.cuh, DIRECT_VARIANTS).
 */
#include "cuda/direct/plan.cuh"

DIRECT_VARIANTS(forward, DIRECT_FORWARD, TCONV_PASS_FORWARD);
