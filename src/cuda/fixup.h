/*
 * fixup.h - IEEE semantics for the split paths (3xTF32 and 3xFP16, float32 in fp32 mode).
 *
 * A split kernel multiplies big and small pieces of each operand; an infinite operand has an
 * infinite big piece, so a cross term small * big is 0 * inf = NaN where the exact product is
 * infinite.  After such a kernel, every element of its output that is not finite is recomputed
 * by the definition in float32 (the naive variants' sums, naive/), which gives inf and NaN
 * exactly where IEEE arithmetic does; elements that came out finite are kept.  forward and
 * grad-input run only where `flag` (4 bytes of the workspace) says that the split kernel
 * wrote a non-finite value, and otherwise return at once; grad-weight scans its output, which
 * is small.  Each queues one kernel on a->stream and returns the launch's error.
 */
#ifndef TCONV_CUDA_FIXUP_H
#define TCONV_CUDA_FIXUP_H

#include "cuda/variant.h"

cudaError_t tconv_fixup_forward(const tconv_args *a, const unsigned *flag);
cudaError_t tconv_fixup_grad_input(const tconv_args *a, const unsigned *flag);
cudaError_t tconv_fixup_grad_weight(const tconv_args *a);

#endif /* TCONV_CUDA_FIXUP_H */
