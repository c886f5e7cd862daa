/*
 * grad_bias_reduce.cu - "grad_bias_reduce": grad_bias[c] = the sum of grad_y[:, c, :, :].
 *
 * Deterministic two-pass reduction.  Each channel's N * H_out * W_out elements are cut into
 * fixed slices of SLICE elements (the cut depends on the problem only); pass 1 sums each
 * slice in one block and writes the partial sum to the workspace, pass 2 sums each
 * channel's partials in one block.  Every thread sums its terms with chunked_sum and the
 * blocks combine threads with a fixed tree, so the result is bitwise reproducible and
 * float32-accurate.  Pass 1 reads grad_y once: it is bound by memory bandwidth (the seed's
 * grad_y is 2.16 GB of float32, about 0.7 ms at 3.1 TB/s).
 */
#include "cuda/naive/naive.cuh"

enum {
    REDUCE_THREADS = 256,
    REDUCE_UNROLL = 4,                                 /* loads in flight per thread */
    SLICE = REDUCE_THREADS * REDUCE_UNROLL * 16        /* 64 terms per thread */
};

/* The sum of v over the block, in thread 0; a fixed tree, so the order never changes. */
template <typename A> __device__ A block_sum(A v)
{
    __shared__ A warp_sums[REDUCE_THREADS / 32];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    for (int offset = 16; offset > 0; offset /= 2)
        v += __shfl_down_sync(0xffffffffu, v, offset);
    if (lane == 0)
        warp_sums[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < REDUCE_THREADS / 32 ? warp_sums[lane] : A(0);
        for (int offset = 16; offset > 0; offset /= 2)
            v += __shfl_down_sync(0xffffffffu, v, offset);
    }
    __syncthreads(); /* warp_sums is reused by the next call */
    return v;
}

/* src is (n, channels, hw); each channel's n * hw elements, taken in (n, hw) order, are cut
 * into `slices` slices of slice_len; dst is (channels, slices): dst[c, s] = sum of slice s
 * of channel c. */
template <typename In, typename Out>
__global__ void __launch_bounds__(REDUCE_THREADS)
reduce_slices_kernel(const In *src, int64_t n, int64_t channels, int64_t hw, int64_t slice_len,
                     int64_t slices, Out *dst)
{
    typedef acc_t<In> A;
    /* a thread steps by blockDim.x elements: step_n whole rows of hw, plus step_hw */
    const int64_t step_n = REDUCE_THREADS / hw, step_hw = REDUCE_THREADS % hw;
    for (int64_t b = blockIdx.x; b < channels * slices; b += gridDim.x) {
        const int64_t c = b / slices, s = b % slices;
        const int64_t end = min((s + 1) * slice_len, n * hw);
        int64_t e = s * slice_len + threadIdx.x;
        int64_t col = e % hw, at = (e / hw * channels + c) * hw + col;
        chunked_sum<A> sum;
        while (e < end) {
            A v[REDUCE_UNROLL];
#pragma unroll
            for (int u = 0; u < REDUCE_UNROLL; u++) {
                v[u] = e < end ? to_acc(src[at]) : A(0);
                e += REDUCE_THREADS;
                col += step_hw;
                at += step_n * channels * hw + step_hw;
                if (col >= hw) { /* into the next row of this channel */
                    col -= hw;
                    at += (channels - 1) * hw;
                }
            }
#pragma unroll
            for (int u = 0; u < REDUCE_UNROLL; u++)
                sum.add(v[u]);
        }
        const A total = block_sum(sum.total());
        if (threadIdx.x == 0)
            dst[b] = from_acc<Out>(total);
    }
}

static int64_t slices_per_channel(const tconv_problem *p)
{
    return ceil_div64(p->n * p->h_out * p->w_out, SLICE);
}

/* The workspace: the partial sums, (C_out, slices) in acc_t. */
static int grad_bias_reduce_plan(const tconv_problem *p, const tconv_config *config, const tconv_device_caps *, void *,
                                 size_t *workspace_bytes)
{
    *workspace_bytes = (size_t)(p->c_out * slices_per_channel(p)) * acc_bytes(config->dtype);
    return 1;
}

static unsigned reduce_blocks(int64_t count)
{
    return (unsigned)(count < (1 << 30) ? count : (1 << 30));
}

struct grad_bias_reduce_launch {
    const tconv_args *a;
    template <typename T> cudaError_t operator()() const
    {
        typedef acc_t<T> A;
        const tconv_problem *p = a->p;
        const int64_t slices = slices_per_channel(p);
        A *partial = (A *)a->workspace;
        reduce_slices_kernel<T, A>
            <<<reduce_blocks(p->c_out * slices), REDUCE_THREADS, 0, a->stream>>>(
                (const T *)a->grad_y, p->n, p->c_out, p->h_out * p->w_out, SLICE, slices, partial);
        reduce_slices_kernel<A, T><<<reduce_blocks(p->c_out), REDUCE_THREADS, 0, a->stream>>>(
            partial, 1, p->c_out, slices, slices, 1, (T *)a->grad_bias);
        return cudaGetLastError();
    }
};

const tconv_variant tconv_variant_grad_bias_reduce = {
    "grad_bias_reduce", TCONV_PASS_GRAD_BIAS, naive_can_implement, grad_bias_reduce_plan,
    launch_by_dtype<grad_bias_reduce_launch>,
};
