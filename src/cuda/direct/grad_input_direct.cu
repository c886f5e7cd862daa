/*
 * grad_input_direct.cu - grad-input by the direct-correlation engine (src/cuda/direct): grad_x
 * from grad_y, every variant of the engine (direct/plan.cuh, DIRECT_VARIANTS).
 */
#include "cuda/direct/plan.cuh"

DIRECT_VARIANTS(grad_input, DIRECT_GRAD_INPUT, TCONV_PASS_GRAD_INPUT);
