/*
 * direct/wgmma.cuh - the direct engine on Hopper's warpgroup mma (sm_90a), float32 only:
 * TF32 in tf32 mode (direct_wgmma_kernel), 3xFP16 in fp32 mode (direct_wgmma_fp16_kernel).
 * Both operands sit in shared memory as K-major core matrices without swizzle: the source
 * halo tile as [c / 4][pixel][c % 4], so that a tap, a fixed pixel offset, moves the B
 * descriptor by a multiple of 16 bytes; the weights as [tap][c / 4][o][c % 4].  Source rows
 * are 64 pixels (tw destination columns plus the taps' halo), and a warpgroup's rows are
 * consecutive pixels of B: one wgmma per tap and stage for 4 rows (TF32, three warpgroups,
 * 12 rows per CTA) or 2 rows (3xFP16, two accumulators).  The thread that copied a value
 * rounds it to TF32 (or scales and splits it into FP16 pieces) in place before the stage's
 * barrier.  docs/algorithm.md has the layout, the range handling of 3xFP16 and the numbers.
 */
#ifndef TCONV_CUDA_DIRECT_WGMMA_CUH
#define TCONV_CUDA_DIRECT_WGMMA_CUH

#include "cuda/direct/pipeline.cuh"

#define DIRECT_WGMMA_STAGES 4
#define DIRECT_WGMMA_STAGE_BYTES (200 * 1024) /* all stages: one CTA per SM */
#define DIRECT_WGMMA_ROWS 4                   /* destination rows per warpgroup */
#define DIRECT_WGMMA_GROUPS 3                 /* tf32: warpgroups per CTA, 12 rows */
#define DIRECT_WGMMA_SPLIT_STAGES 3           /* 3xFP16: stages of 16 channels, 61 KB for 3 x 3 */
#define DIRECT_WGMMA_SPLIT_ROWS 2             /* 3xFP16: rows per warpgroup, for two accumulators */


/* The source values of one stage: thread x copies the CH channels of pixels x, x + NT, ...,
 * channel c of a pixel to quad c / 4 of the stage ([c / 4][pixel][c % 4]; zero-filled past
 * the source and past the `nvalid` channels left). */
template <int CH, int NT>
__device__ __forceinline__ void direct_wgmma_copy(float *stage, const float *src_c0, int64_t src_plane, int nvalid,
                                                  const int *table, int npix)
{
#pragma unroll 2
    for (int pix = threadIdx.x; pix < npix; pix += NT) {
        const int go = table[pix];
        const float *g = src_c0 + go;
        float *s = stage + pix * 4;
#pragma unroll
        for (int c = 0; c < CH; ++c, g += src_plane)
            cp_async_zfill<4>(s + (c / 4) * 4 * npix + c % 4, g, go >= 0 && c < nvalid); /* size 0: nothing read */
    }
}

/* Rounds the values this thread copied, once they landed (a pixel's channel quads, 16 bytes
 * each), to TF32 in place. */
template <int NT> __device__ __forceinline__ void direct_wgmma_round(float *stage, int npix)
{
#pragma unroll 2
    for (int pix = threadIdx.x; pix < npix; pix += NT) {
#pragma unroll
        for (int q = 0; q < 2; ++q) {
            float4 *p = (float4 *)(stage + (q * npix + pix) * 4);
            float4 v = *p;
            v.x = tf32_rna_operand(v.x);
            v.y = tf32_rna_operand(v.y);
            v.z = tf32_rna_operand(v.z);
            v.w = tf32_rna_operand(v.w);
            *p = v;
        }
    }
}

/* The largest magnitude of n weights, NaN left out, into *out (float bits; zeroed before). */
static __global__ void direct_weight_max(const float *w, int64_t n, unsigned *out)
{
    float m = 0.f;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        m = fmaxf(m, fabsf(w[i]));
    const unsigned r = __reduce_max_sync(0xffffffffu, __float_as_uint(m));
    if (threadIdx.x % 32 == 0) atomicMax(out, r);
}

/* The largest magnitude among the source values this thread copied into a stage (16
 * channels of its pixels), NaN left out. */
__device__ __forceinline__ float direct_wgmma_max(const float *stage, int npix)
{
    float m = 0.f;
#pragma unroll 2
    for (int pix = threadIdx.x; pix < npix; pix += 256) {
#pragma unroll
        for (int q = 0; q < 4; ++q) {
            const float4 v = *(const float4 *)(stage + (q * npix + pix) * 4);
            m = fmaxf(m, fmaxf(fmaxf(fabsf(v.x), fabsf(v.y)), fmaxf(fabsf(v.z), fabsf(v.w))));
        }
    }
    return m;
}

/* Splits the 16 channels of each pixel this thread copied, once they landed, in place: the
 * pixel's four float quads (bytes (q npix + pixel) 16, q < 4) become the FP16 B operands of
 * the stage, hi of channels 0-7 and 8-15 in quads 0 and 1, lo in quads 2 and 3 (each
 * [c / 8][pixel][c % 8], K-major).  Values are scaled by `scale` first.  Returns the largest
 * magnitude among them before scaling (as direct_wgmma_max). */
__device__ __forceinline__ float direct_wgmma_split(float *stage, int npix, float scale)
{
    float m = 0.f;
#pragma unroll 2
    for (int pix = threadIdx.x; pix < npix; pix += 256) {
        float v[16];
#pragma unroll
        for (int q = 0; q < 4; ++q) *(float4 *)(v + 4 * q) = *(const float4 *)(stage + (q * npix + pix) * 4);
        __half2 hi[8], lo[8];
#pragma unroll
        for (int i = 0; i < 8; ++i) {
            m = fmaxf(m, fmaxf(fabsf(v[2 * i]), fabsf(v[2 * i + 1])));
            fp16_split(v[2 * i] * scale, v[2 * i + 1] * scale, 2048.f, hi[i], lo[i]);
        }
#pragma unroll
        for (int q = 0; q < 4; ++q) {
            const __half2 *h = q < 2 ? hi + 4 * q : lo + 4 * (q - 2);
            uint4 u;
            u.x = *(const uint32_t *)&h[0];
            u.y = *(const uint32_t *)&h[1];
            u.z = *(const uint32_t *)&h[2];
            u.w = *(const uint32_t *)&h[3];
            *(uint4 *)(stage + (q * npix + pix) * 4) = u;
        }
    }
    return m;
}

/* The CTA's largest m (m >= 0), through `red` in shared memory: every thread calls it. */
__device__ __forceinline__ float direct_cta_max(float m, unsigned *red)
{
    __syncthreads(); /* earlier readers of red are past it */
    if (threadIdx.x == 0) *red = 0u;
    __syncthreads();
    const unsigned w = __reduce_max_sync(0xffffffffu, __float_as_uint(m));
    if (threadIdx.x % 32 == 0) atomicMax(red, w);
    __syncthreads();
    return __uint_as_float(*red);
}

/* The epilogue of a tile of ROWS rows of PITCH pixels per warpgroup: D row m = channel
 * 16 * (warp in group) + lane / 4 (+ 8), column n = 8 j + 2 (lane % 4) (+ 1) = pixel n % PITCH
 * of the warpgroup's row n / PITCH, kept where n % PITCH is a column of the tile (the others
 * multiplied halo columns); a lane quad writes 8 consecutive pixels of a channel's row. */
template <int MODE, int ROWS, int PITCH>
__device__ __forceinline__ void direct_wgmma_store(const direct_params &P, const direct_block &b,
                                                   const float (&acc)[ROWS * PITCH / 2])
{
    constexpr int TCO = 64, JR = PITCH / 8; /* 8-pixel column groups per row */
    const int lane = threadIdx.x % 32, wq = threadIdx.x % 128 / 32, wg = threadIdx.x / 128;
    const int oh_step = MODE == DIRECT_FORWARD ? P.ah.stride : 1;
    const int ow_step = MODE == DIRECT_FORWARD ? P.aw.stride : 1;
    const int64_t dst_plane = (int64_t)P.ah.dst_size * P.aw.dst_size;
    const float *bias = (const float *)P.bias;
    const int cols = min(P.tw, b.count_w - b.j0); /* this tile's columns (a last strip's: fewer) */
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        const int ch = b.cot * TCO + 16 * wq + lane / 4 + 8 * h;
        if (ch >= P.co) continue;
        const float bv = bias ? bias[(int64_t)b.g * P.co + ch] : 0.f;
        float *plane = (float *)P.dst + (((int64_t)b.n * P.groups + b.g) * P.co + ch) * dst_plane + b.rw;
#pragma unroll
        for (int r = 0; r < ROWS; ++r) {
            const int i = b.i0 + wg * ROWS + r;
            if (i >= b.count_h) continue;
            float *row = plane + (int64_t)(b.rh + oh_step * i) * P.aw.dst_size + (int64_t)ow_step * b.j0;
#pragma unroll
            for (int j = JR * r; j < JR * r + JR; ++j) {
                const int c = 8 * (j - JR * r) + 2 * (lane % 4);
                const float v0 = acc[4 * j + 2 * h] + bv, v1 = acc[4 * j + 2 * h + 1] + bv;
                float *out = row + (int64_t)ow_step * c;
                if (ow_step == 1 && c + 1 < cols && ((uintptr_t)out & 7) == 0) {
                    *(float2 *)out = make_float2(v0, v1);
                } else {
                    if (c < cols) out[0] = v0;
                    if (c + 1 < cols) out[ow_step] = v1;
                }
            }
        }
    }
}

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
/* One tile of the tf32 kernel whose warpgroup rows are PITCH source pixels (the tables in t
 * are built for that pitch): one wgmma.m64n(4 PITCH)k8 per tap and stage. */
template <int MODE, int TAPS, int PITCH>
__device__ __forceinline__ void direct_wgmma_body(const direct_params &P, const direct_block &b, const direct_taps &t,
                                                  float *smem)
{
    constexpr int TCO = 64, S = DIRECT_WGMMA_STAGES, AHEAD = S - 2, ROWS = DIRECT_WGMMA_ROWS;
    constexpr int NT = 128 * DIRECT_WGMMA_GROUPS;
    const int *table = (const int *)(smem + P.table);
    const int npix = t.chan; /* pixels of the source tile, every residue plane */
    const int wofs = direct_round4(8 * npix), wsize = 2 * TAPS * TCO;
    const int64_t src_plane = (int64_t)P.ah.src_size * P.aw.src_size;
    const float *src = (const float *)P.src + ((int64_t)b.n * P.groups + b.g) * P.cr * src_plane;
    const float *wts = (const float *)P.prepared + direct_weights_offset(P, b.phase, b.g, b.cot, 0);
    const int nchunks = P.nchunks; /* from the parameters: uniform */
    const int wg = threadIdx.x / 128;

    auto copy = [&](int k) {
        float *st = smem + k % S * P.stage;
        direct_wgmma_copy<8, NT>(st, src + (int64_t)k * 8 * src_plane, src_plane, P.cr - k * 8, table, npix);
        const float4 *w = (const float4 *)(wts + (int64_t)k * P.wchunk);
        for (int e = threadIdx.x; e < wsize; e += NT) cp_async<16>(st + wofs + 4 * e, w + e);
    };

    float acc[ROWS * PITCH / 2]; /* no instruction but wgmma may write them: the first tap's wgmma zero them */
    for (int k = 0; k < AHEAD; ++k) {
        if (k < nchunks) copy(k);
        cp_async_commit();
    }
    for (int k = 0; k < nchunks; ++k) {
        float *st = smem + k % S * P.stage;
        cp_async_wait<AHEAD - 1>();
        direct_wgmma_round<NT>(st, npix);
        fence_proxy_async();
        wgmma_wait<1>(); /* this warpgroup's wgmma of stage k - 2 are done */
        __syncthreads();
        if (k + AHEAD < nchunks) copy(k + AHEAD);
        cp_async_commit();

        /* B: the warpgroup's 4 rows of PITCH pixels from the tap's offset on (next channel
         * quad npix * 16 bytes on, next 8 pixels 128); A: the tap's weights (next quad 64 * 16) */
        const uint32_t bdesc = wgmma_desc_lo(st, npix * 16) + wg * ROWS * PITCH;
        const uint32_t adesc = wgmma_desc_lo(st + wofs, TCO * 16);
        wgmma_fence();
#pragma unroll
        for (int tap = 0; tap < TAPS; ++tap)
            wgmma_tf32(acc, adesc + tap * (8 * TCO * 4 / 16), bdesc + t.tap_off[tap], k > 0 || tap > 0);
        wgmma_commit();
    }
    wgmma_wait<0>();
    wgmma_pin(acc);
    cp_async_wait<0>();
    direct_wgmma_store<MODE, ROWS, PITCH>(P, b, acc);
}
#endif

/* TAPS: the taps of every phase, 9 (3 x 3, stride 1) or 4 (4 x 4, stride 2 forward): the tap
 * loop unrolled, so that ptxas sees the wgmma in straight-line code (a loop over a count read
 * from shared memory serializes them).  LAST: the source pitch of the last column strip's
 * tiles (P.last_pitch; 0: DIRECT_WGMMA_PITCH as every other strip), so that a strip of a few
 * columns does not cost a full tile (see direct_shape_make). */
template <int MODE, int TAPS, int LAST>
__global__ void __launch_bounds__(128 * DIRECT_WGMMA_GROUPS, 1) direct_wgmma_kernel(const direct_params P)
{
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    extern __shared__ __align__(16) unsigned char direct_smem[];
    float *smem = (float *)direct_smem;
    __shared__ direct_taps t;
    direct_block b;
    if (!direct_block_init<MODE, DIRECT_WGMMA_GROUPS * DIRECT_WGMMA_ROWS>(P, b, P.tw)) return;
    const bool last = LAST && b.j0 == (P.tiles_w - 1) * P.tw;
    direct_block_tables<MODE, 128 * DIRECT_WGMMA_GROUPS>(P, b, t, (int *)(smem + P.table), last);
    if (LAST && last)
        direct_wgmma_body<MODE, TAPS, LAST ? LAST : DIRECT_WGMMA_PITCH>(P, b, t, smem);
    else
        direct_wgmma_body<MODE, TAPS, DIRECT_WGMMA_PITCH>(P, b, t, smem);
#else
    __trap(); /* can_implement keeps it off builds and devices without sm_90a */
#endif
}

/* The tf32 kernel for a last column strip of source pitch `last` (P.last_pitch: 0, or a
 * multiple of 8 under DIRECT_WGMMA_PITCH). */
template <int MODE, int TAPS> static void (*direct_wgmma_pick(int last))(const direct_params)
{
    switch (last) {
    case 8: return direct_wgmma_kernel<MODE, TAPS, 8>;
    case 16: return direct_wgmma_kernel<MODE, TAPS, 16>;
    case 24: return direct_wgmma_kernel<MODE, TAPS, 24>;
    case 32: return direct_wgmma_kernel<MODE, TAPS, 32>;
    case 40: return direct_wgmma_kernel<MODE, TAPS, 40>;
    case 48: return direct_wgmma_kernel<MODE, TAPS, 48>;
    case 56: return direct_wgmma_kernel<MODE, TAPS, 56>;
    default: return direct_wgmma_kernel<MODE, TAPS, 0>;
    }
}

/* fp32 mode by 3xFP16 on wgmma (see the pieces above): the engine with 16 reduction
 * channels per stage (the k of one FP16 wgmma), the source values split in place by the
 * thread that copied them, the weights split once per call (direct_prepare_weights), and
 * per tap three wgmma into two accumulators, big += hi_w hi_x and small += hi_w lo_x +
 * lo_w hi_x: 2 x 64 registers per thread, so a warpgroup takes 2 rows (m64n128k16), a CTA
 * 4 rows x tw.  No flush: what the tensor cores chop is in big at 2^-24 of the sums, in
 * small 2^-11 lower.  Stages of 61 KB (3 x 3): 3 of them, copies one stage ahead while the
 * wgmma of the stage before stay in flight.
 *
 * The source's scale 2^ex is the CTA's: from the largest magnitude of its first stage, then
 * checked at every stage: where a scaled value reaches DIRECT_FP16_LIMIT (FP16 overflows at
 * 65520) the CTA lowers ex to fit that stage, rescales both accumulators by the same power
 * of two (exact), and copies and splits the stage again.  NaN stays NaN; an infinite value
 * leaves ex as it is (its lo is NaN: the output is NaN). */
template <int MODE, int TAPS>
__global__ void __launch_bounds__(256, 1) direct_wgmma_fp16_kernel(const direct_params P)
{
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    constexpr int TCO = 64, S = DIRECT_WGMMA_SPLIT_STAGES, AHEAD = S - 2, ROWS = DIRECT_WGMMA_SPLIT_ROWS;
    constexpr int PITCH = DIRECT_WGMMA_PITCH, CH = 16;
    extern __shared__ __align__(16) unsigned char direct_smem[];
    float *smem = (float *)direct_smem;
    __shared__ direct_taps t;
    __shared__ unsigned red;
    direct_block b;
    if (!direct_block_init<MODE, 2 * ROWS>(P, b, P.tw)) return;
    direct_block_tables<MODE, 256>(P, b, t, (int *)(smem + P.table));

    const int *table = (const int *)(smem + P.table);
    const int npix = t.chan; /* pixels of the source tile */
    const int wofs = direct_round4(CH * npix), wsize = CH * TAPS * TCO / 4; /* float4s: both pieces */
    const int64_t src_plane = (int64_t)P.ah.src_size * P.aw.src_size;
    const float *src = (const float *)P.src + ((int64_t)b.n * P.groups + b.g) * P.cr * src_plane;
    const float *wts = (const float *)P.prepared + direct_weights_offset(P, b.phase, b.g, b.cot, 0);
    const int nchunks = P.nchunks;
    const int wg = threadIdx.x / 128;

    auto copy_src = [&](int k) {
        direct_wgmma_copy<CH, 256>(smem + k % S * P.stage, src + (int64_t)k * CH * src_plane, src_plane, P.cr - k * CH,
                              table, npix);
    };
    auto copy = [&](int k) {
        copy_src(k);
        const float4 *w = (const float4 *)(wts + (int64_t)k * P.wchunk);
        float *st = smem + k % S * P.stage + wofs;
        for (int e = threadIdx.x; e < wsize; e += 256) cp_async<16>(st + 4 * e, w + e);
    };

    float big[64], small[64]; /* written first by the first tap's wgmma (scale-d 0) */
    for (int k = 0; k < AHEAD; ++k) {
        if (k < nchunks) copy(k);
        cp_async_commit();
    }
    int ex = 0;
    for (int k = 0; k < nchunks; ++k) {
        float *st = smem + k % S * P.stage;
        cp_async_wait<AHEAD - 1>();
        if (k == 0) ex = fp16_exponent(__float_as_uint(direct_cta_max(direct_wgmma_max(st, npix), &red)),
                                              DIRECT_FP16_X_TOP, 0);
        float m = direct_wgmma_split(st, npix, pow2f(ex));
        fence_proxy_async();
        wgmma_wait<1>(); /* this warpgroup's wgmma of stage k - 2 are done */
        if (__syncthreads_or(m * pow2f(ex) >= DIRECT_FP16_LIMIT)) {
            const int lower = fp16_exponent(__float_as_uint(direct_cta_max(m, &red)), DIRECT_FP16_X_TOP, ex);
            if (lower < ex) {
                wgmma_wait<0>();
                wgmma_pin(big);
                wgmma_pin(small);
                const float f = pow2f((lower - ex) / 2), g = pow2f((lower - ex) - (lower - ex) / 2);
#pragma unroll
                for (int i = 0; i < 64; ++i) {
                    big[i] = big[i] * f * g;
                    small[i] = small[i] * f * g;
                }
                ex = lower;
                copy_src(k);
                cp_async_commit();
                cp_async_wait<0>();
                direct_wgmma_split(st, npix, pow2f(ex));
                fence_proxy_async();
                __syncthreads();
            }
        }
        if (k + AHEAD < nchunks) copy(k + AHEAD);
        cp_async_commit();

        /* B hi, B lo 2 npix (16-byte units) on; A hi, A lo TAPS x 2 KB on */
        const uint32_t bhi = wgmma_desc_lo(st, npix * 16) + wg * ROWS * PITCH, blo = bhi + 2 * npix;
        const uint32_t ahi = wgmma_desc_lo(st + wofs, TCO * 16), alo = ahi + TAPS * (TCO * CH * 2 / 16);
        wgmma_fence();
#pragma unroll
        for (int tap = 0; tap < TAPS; ++tap) {
            const uint32_t a = tap * (TCO * CH * 2 / 16), off = t.tap_off[tap];
            wgmma_f16(big, ahi + a, bhi + off, k > 0 || tap > 0);
            wgmma_f16(small, ahi + a, blo + off, k > 0 || tap > 0);
            wgmma_f16(small, alo + a, bhi + off, 1);
        }
        wgmma_commit();
    }
    wgmma_wait<0>();
    wgmma_pin(big);
    wgmma_pin(small);
    cp_async_wait<0>();
    /* back to the products' scale: both scales are powers of two in [2^-120, 2^120] */
    const float unscale_x = pow2f(-ex), unscale_w = pow2f(-fp16_exponent(*P.wmax, DIRECT_FP16_W_TOP, 0));
#pragma unroll
    for (int i = 0; i < 64; ++i) big[i] = fmaf(small[i], 1.f / 2048.f, big[i]) * unscale_x * unscale_w;
    direct_wgmma_store<MODE, ROWS, PITCH>(P, b, big);
#else
    __trap(); /* can_implement keeps it off builds and devices without sm_90a */
#endif
}

#endif /* TCONV_CUDA_DIRECT_WGMMA_CUH */
