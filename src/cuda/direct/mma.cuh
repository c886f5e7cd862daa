/*
 * direct/mma.cuh - the direct engine on TF32 tensor cores (mma.sync m16n8k8), float32 only:
 * one TF32 product in tf32 mode, three (3xTF32: big*big + big*small + small*big pieces) in
 * fp32 mode.  Each of the 8 warps owns one row of 32 pixels and all 64 destination channels;
 * every tap is one mma step over the 8 channels of a stage.  3xTF32 flushes the tensor-core
 * sums into float32 sums after every stage, which keeps their chopping at float32 level.
 */
#ifndef TCONV_CUDA_DIRECT_MMA_CUH
#define TCONV_CUDA_DIRECT_MMA_CUH

#include "cuda/direct/pipeline.cuh"

/* Tensor-core tiles: each of the 8 warps owns one row of 32 pixels and all 64 channels;
 * per tap, 4 fragment loads of weights (8 for 3xTF32) and 8 of source values feed 16
 * mma.m16n8k8 (48 for 3xTF32).  3xTF32 sums a stage's products (8 channels x the taps) in
 * the mma accumulators, then flushes them into float32 sums: the tensor cores chop each
 * sum to the accumulator's ulp, and short runs keep that drift at float32 level. */
template <int MMA, int TAPS> struct direct_mma {
    enum { MT = 4, NT = DIRECT_TW / 8, SPLIT = MMA == DIRECT_MMA_3XTF32, PIECES = direct_pieces(MMA) };
    float acc[MT][NT][4];
    float sum[MT][NT][4]; /* 3xTF32 only */
    const direct_taps *t;
    int lane, bofs;
    /* The mma of one tap; `off` is the tap's offset in a channel's source tile. */
    __device__ __forceinline__ void tap_step(const float *src, const float4 *wts, int tap, int off)
    {
        const float *b = src + off;
        uint32_t big[NT][2], small[NT][2];
#pragma unroll
        for (int nt = 0; nt < NT; ++nt)
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                const float v = b[h * 4 * t->chan + nt * 8];
                if constexpr (SPLIT) tf32_split(v, big[nt][h], small[nt][h]);
                else big[nt][h] = tf32_operand_bits(v);
            }
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
            const float4 *a = wts + (tap * MT + mt) * PIECES * 32;
            const float4 a_big = a[0];
            if constexpr (SPLIT) {
                const float4 a_small = a[32];
#pragma unroll
                for (int nt = 0; nt < NT; ++nt) mma_tf32_m16n8k8(acc[mt][nt], a_small, big[nt][0], big[nt][1]);
#pragma unroll
                for (int nt = 0; nt < NT; ++nt) mma_tf32_m16n8k8(acc[mt][nt], a_big, small[nt][0], small[nt][1]);
            }
#pragma unroll
            for (int nt = 0; nt < NT; ++nt) mma_tf32_m16n8k8(acc[mt][nt], a_big, big[nt][0], big[nt][1]);
        }
    }
    /* TAPS > 0: every phase has exactly TAPS taps, and the loop is unrolled so that the
     * loads of later taps (offsets and values) can go ahead of the mma of earlier ones. */
    __device__ __forceinline__ void operator()(const float *src_stage, const float *w_stage)
    {
        const float4 *wts = (const float4 *)w_stage + lane;
        const float *src = src_stage + bofs;
        if constexpr (TAPS > 0) {
#pragma unroll
            for (int tap = 0; tap < TAPS; ++tap) tap_step(src, wts, tap, t->tap_off[tap]);
        } else {
            for (int tap = 0; tap < t->ntaps; ++tap) tap_step(src, wts, tap, t->tap_off[tap]);
        }
        if constexpr (SPLIT)
            each([&](int mt, int nt, int r) {
                sum[mt][nt][r] += acc[mt][nt][r];
                acc[mt][nt][r] = 0.f;
            });
    }
    /* f(mt, nt, r) for every accumulator register */
    template <typename Fn> __device__ __forceinline__ void each(Fn f)
    {
#pragma unroll
        for (int mt = 0; mt < MT; ++mt)
#pragma unroll
            for (int nt = 0; nt < NT; ++nt)
#pragma unroll
                for (int r = 0; r < 4; ++r) f(mt, nt, r);
    }
    __device__ __forceinline__ void clear()
    {
        each([&](int mt, int nt, int r) {
            acc[mt][nt][r] = 0.f;
            if constexpr (SPLIT) sum[mt][nt][r] = 0.f;
        });
    }
    __device__ __forceinline__ float result(int mt, int nt, int r) const
    {
        if constexpr (SPLIT) return sum[mt][nt][r];
        else return acc[mt][nt][r];
    }
};

/* The engine on TF32 tensor cores (float32 data; tf32 mode, or fp32 mode by 3xTF32): the
 * same phases, planes, halo tiles and pipeline, with stages of exactly 8 reduction channels
 * (the k of one mma).  3xTF32 holds twice the accumulators: one CTA per SM. */
template <int MODE, int MMA, int TAPS>
__global__ void __launch_bounds__(256, MMA == DIRECT_MMA_3XTF32 ? 1 : 2) direct_mma_kernel(const direct_params P)
{
    typedef direct_mma<MMA, TAPS> F;
    constexpr int TCO = 64, TH = 8;
    extern __shared__ __align__(16) unsigned char direct_smem[];
    float *smem = (float *)direct_smem;
    __shared__ direct_taps t;
    direct_block b;
    if (!direct_block_init<MODE, TH>(P, b)) return;
    direct_block_tables<MODE, 256>(P, b, t, (int *)(smem + P.table));

    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int lr = lane / 4, lc = lane % 4; /* fragment row and column of this lane */
    F f;
    f.t = &t;
    f.lane = lane;
    f.bofs = lc * t.chan + warp * t.pitch + lr;
    f.clear();
    direct_mainloop<float, 256, TCO, F::PIECES>(P, t, b, smem, f);

    __syncthreads(); /* the epilogue reuses the stages */

    /* epilogue: the warp's 64 channels x 32 pixels go through shared memory, so that each
     * store writes one channel's 32 consecutive pixels */
    float *stage = smem + warp * DIRECT_MMA_EPI;
#pragma unroll
    for (int mt = 0; mt < F::MT; ++mt)
#pragma unroll
        for (int nt = 0; nt < F::NT; ++nt)
#pragma unroll
            for (int r = 0; r < 4; ++r)
                stage[(mt * 16 + lr + 8 * (r / 2)) * 36 + nt * 8 + 2 * lc + r % 2] = f.result(mt, nt, r);
    __syncwarp();
    /* the TF32 tiles decode b again (fewer registers than keeping it: the 9-tap unroll of
     * grad-input spilled otherwise); 3xTF32 has registers to spare and keeps it */
    direct_block e = b;
    if constexpr (!F::SPLIT) direct_block_init<MODE, TH>(P, e);
    const int i = e.i0 + warp, j = e.j0 + lane;
    if (i >= e.count_h || j >= e.count_w) return;
    const int oh_step = MODE == DIRECT_FORWARD ? P.ah.stride : 1;
    const int ow_step = MODE == DIRECT_FORWARD ? P.aw.stride : 1;
    const int64_t dst_plane = (int64_t)P.ah.dst_size * P.aw.dst_size;
    const float *bias = (const float *)P.bias;
    float *dst = (float *)P.dst + ((int64_t)e.n * P.groups * P.co + (int64_t)e.g * P.co) * dst_plane +
                 (int64_t)(e.rh + oh_step * i) * P.aw.dst_size + e.rw + (int64_t)ow_step * j;
    const int chans = min(TCO, P.co - e.cot * TCO);
    for (int o = 0; o < chans; ++o) {
        const int ch = e.cot * TCO + o;
        dst[(int64_t)ch * dst_plane] = stage[o * 36 + lane] + (bias ? bias[(int64_t)e.g * P.co + ch] : 0.f);
    }
}

#endif /* TCONV_CUDA_DIRECT_MMA_CUH */
