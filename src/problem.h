/*
 * problem.h - internal functions around tconv_problem and tconv_config, shared by the CPU
 * reference, the CUDA dispatcher and the builds without CUDA.
 */
#ifndef TCONV_PROBLEM_H
#define TCONV_PROBLEM_H

#include <stdint.h>

#include "tconv.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Element counts of a problem that tconv_problem_check() accepted: every partial product is
 * at most the full count, which the check bounded by 2^62, so nothing overflows. */
static inline int64_t tconv_x_elems(const tconv_problem *p)
{
    return p->n * p->c_in * p->h_in * p->w_in;
}

static inline int64_t tconv_y_elems(const tconv_problem *p)
{
    return p->n * p->c_out * p->h_out * p->w_out;
}

static inline int64_t tconv_weight_elems(const tconv_problem *p)
{
    return p->c_in * (p->c_out / p->groups) * p->kernel_h * p->kernel_w;
}

/* Copies *p into *checked and runs tconv_problem_check() on the copy, so that entry points
 * taking a const problem never write to the caller's struct.  p == NULL gives
 * TCONV_INVALID_POINTER. */
tconv_status tconv_problem_check_copy(const tconv_problem *p, tconv_problem *checked);

/* TCONV_INVALID_POINTER for config == NULL, TCONV_INVALID_DTYPE / TCONV_INVALID_PRECISION
 * for values outside their enums, else TCONV_SUCCESS. */
tconv_status tconv_config_check(const tconv_config *config);

/* TCONV_INVALID_ALIASING when the memory of the output `out` of `pass` overlaps that of one
 * of the pass's inputs (forward: x, weight, bias; grad_input: grad_y, weight; grad_weight:
 * x, grad_y; grad_bias: grad_y), TCONV_INVALID_PASS for a pass outside the enum, else
 * TCONV_SUCCESS.  p has passed tconv_problem_check(); elem_size is the bytes of one element
 * of the call's dtype; NULL and empty tensors overlap nothing, and the pointers the pass does
 * not take are ignored.  Inputs may share memory with each other: they are only read.  For
 * the entry points, after their problem and pointer checks: an output written over an input
 * would be computed from half-overwritten data. */
tconv_status tconv_check_aliasing(const tconv_problem *p, tconv_pass pass, size_t elem_size,
                                  const void *x, const void *weight, const void *bias,
                                  const void *grad_y, const void *out);

#ifdef __cplusplus
}
#endif

#endif /* TCONV_PROBLEM_H */
