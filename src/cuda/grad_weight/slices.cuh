/*
 * grad_weight/slices.cuh - what every split-K grad_weight variant shares: how many slices
 * split K, and the second pass, where the per-slice partial sums, written with plain
 * stores, are added in a fixed order in double.  No atomics: bitwise deterministic.
 */
#ifndef TCONV_CUDA_GRAD_WEIGHT_SLICES_CUH
#define TCONV_CUDA_GRAD_WEIGHT_SLICES_CUH

#include <stdint.h>

#include "cuda/common.cuh"

/* grad_weight[i] = sum over slices s, in order, of partial[s][i], in double.
 * partial is (slices, weight_elems), grad_weight is (C_in, Cog, kH, kW). */
template <typename T>
__global__ void grad_weight_reduce_slices(const float *partial, T *grad_weight, int slices, int64_t weight_elems)
{
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < weight_elems;
         i += (int64_t)gridDim.x * blockDim.x) {
        double s = 0.0;
        for (int k = 0; k < slices; ++k) s += (double)partial[k * weight_elems + i];
        grad_weight[i] = from_acc<T>((acc_t<T>)s);
    }
}

/* Workspace cap for the per-slice partial sums: 256 MiB. */
#define GRAD_WEIGHT_MAX_WORKSPACE ((int64_t)256 << 20)

/* How many slices split K: enough CTAs for `waves` waves of the `resident` CTAs the GPU
 * holds at once, spread over `tiles` tiles; their partials (weight_elems floats each)
 * within GRAD_WEIGHT_MAX_WORKSPACE; at most `most`, at least one. */
static inline int64_t grad_weight_slice_count(int64_t waves, int64_t resident, int64_t tiles, int64_t weight_elems,
                                              int64_t most)
{
    int64_t slices = (waves * resident + tiles - 1) / tiles;
    const int64_t cap = GRAD_WEIGHT_MAX_WORKSPACE / (weight_elems * (int64_t)sizeof(float));
    if (slices > cap) slices = cap;
    if (slices > most) slices = most;
    return slices < 1 ? 1 : slices;
}

/* Queues grad_weight_reduce_slices on stream; returns the launch's error. */
template <typename T>
static inline cudaError_t grad_weight_launch_reduce(const float *partial, T *grad_weight, int slices,
                                                    int64_t weight_elems, cudaStream_t stream)
{
    const int64_t blocks = (weight_elems + 255) / 256;
    grad_weight_reduce_slices<T><<<(unsigned)(blocks < 65536 ? blocks : 65536), 256, 0, stream>>>(
        partial, grad_weight, slices, weight_elems);
    return cudaGetLastError();
}

#endif /* TCONV_CUDA_GRAD_WEIGHT_SLICES_CUH */
