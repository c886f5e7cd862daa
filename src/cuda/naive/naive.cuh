/*
 * naive.cuh - pieces of the one-thread-per-output-element kernels (the *_naive variants,
 * which take every problem the fast variants do not) and of grad_bias_reduce.
 */
#ifndef TCONV_CUDA_NAIVE_CUH
#define TCONV_CUDA_NAIVE_CUH

#include "cuda/common.cuh"
#include "cuda/variant.h"
#include "problem.h"

/* A long sum in A: terms go into `inner`, which is flushed into `outer` every CHUNK terms,
 * so the rounding error grows like CHUNK + n / CHUNK instead of n.  The order of the
 * additions is fixed by the order of add() calls, so results are bitwise reproducible. */
template <typename A, int CHUNK = 64> struct chunked_sum {
    A outer, inner;
    int count;
    __device__ __forceinline__ chunked_sum() : outer(0), inner(0), count(0) {}
    __device__ __forceinline__ void add(A v)
    {
        inner += v;
        if (++count == CHUNK) {
            outer += inner;
            inner = 0;
            count = 0;
        }
    }
    __device__ __forceinline__ A total() const { return outer + inner; }
};

/* Blocks of a grid-stride launch over `total` elements: enough to fill any current GPU
 * several times over, capped because the loop covers the rest. */
enum { NAIVE_THREADS = 256 };
static inline unsigned naive_blocks(int64_t total)
{
    int64_t blocks = ceil_div64(total, NAIVE_THREADS);
    return (unsigned)(blocks < (1 << 20) ? blocks : (1 << 20));
}

/* First element of this thread in a grid-stride loop, and the loop's step (64-bit: the
 * element count of one tensor may pass 2^31). */
__device__ __forceinline__ int64_t grid_start() { return blockIdx.x * (int64_t)blockDim.x + threadIdx.x; }
__device__ __forceinline__ int64_t grid_step() { return (int64_t)gridDim.x * blockDim.x; }

/* can_implement and plan of the naive variants: every valid problem, no workspace. */
static inline int naive_can_implement(const tconv_problem *, const tconv_config *, const tconv_device_caps *)
{
    return 1;
}
static inline int naive_plan(const tconv_problem *, const tconv_config *, const tconv_device_caps *, void *,
                             size_t *workspace_bytes)
{
    *workspace_bytes = 0;
    return 1;
}

/* The launch function of a variant whose launcher is the functor Launch{args} over dtypes
 * (the state of its plan: none). */
template <typename Launch> static cudaError_t launch_by_dtype(const tconv_args *args, const void *)
{
    return with_dtype(args->config->dtype, Launch{args});
}

#endif /* TCONV_CUDA_NAIVE_CUH */
