/*
 * cpu.h - what the passes of the CPU reference share.
 *
 * Each pass is written once, over double, and reads and writes the caller's tensors through
 * cpu_load / cpu_store, so float32 data is accumulated in double and rounded once.
 */
#ifndef TCONV_CPU_H
#define TCONV_CPU_H

#include <stdint.h>

#include "problem.h"
#include "tconv.h"

/* Storage type of the tensors of one call. */
typedef enum cpu_type { CPU_FLOAT32, CPU_FLOAT64 } cpu_type;

static inline double cpu_load(const void *a, cpu_type type, int64_t i)
{
    return type == CPU_FLOAT32 ? (double)((const float *)a)[i] : ((const double *)a)[i];
}

static inline void cpu_store(void *a, cpu_type type, int64_t i, double v)
{
    if (type == CPU_FLOAT32)
        ((float *)a)[i] = (float)v;
    else
        ((double *)a)[i] = v;
}

/* What every pass checks first: tconv_problem_check() of a copy in *p (TCONV_INVALID_POINTER
 * for a NULL problem), then TCONV_INVALID_POINTER where a required tensor is missing.  As on
 * CUDA, the tensors with a batch dimension may be NULL when they are empty (N == 0), as
 * PyTorch's empty tensors are: batch_given and others_given say which were given. */
static inline tconv_status cpu_check(const tconv_problem *problem, int batch_given, int others_given,
                                     tconv_problem *p)
{
    const tconv_status status = tconv_problem_check_copy(problem, p);
    if (status != TCONV_SUCCESS)
        return status;
    return others_given && (batch_given || p->n == 0) ? TCONV_SUCCESS : TCONV_INVALID_POINTER;
}

/* tconv_check_aliasing for a pass's tensors of the checked problem p (NULL: not the pass's). */
static inline tconv_status cpu_check_aliasing(const tconv_problem *p, tconv_pass pass, cpu_type type,
                                              const void *x, const void *weight, const void *bias,
                                              const void *grad_y, const void *out)
{
    return tconv_check_aliasing(p, pass, type == CPU_FLOAT32 ? sizeof(float) : sizeof(double), x,
                                weight, bias, grad_y, out);
}

/* Whether a pass of about `work` multiply-adds is worth a team of threads.  Below 2^18 the
 * team's start and barrier cost more than the work, and on a busy machine one descheduled
 * thread stalls the rest (the tests run thousands of tiny problems).  A double, because
 * the product of the sizes may pass 2^63. */
static inline int cpu_parallel(double work) { return work >= 0x1.0p18; }

/* The offset of element [a][b][c][d] of a dense array of shape (*, B, C, D). */
static inline int64_t cpu_index(int64_t a, int64_t b, int64_t B, int64_t c, int64_t C, int64_t d,
                                int64_t D)
{
    return ((a * B + b) * C + c) * D + d;
}

#endif /* TCONV_CPU_H */
