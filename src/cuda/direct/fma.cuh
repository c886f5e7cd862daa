/*
 * direct/fma.cuh - the direct engine on FP32 (FP64) FMA: every dtype and precision.  Each
 * thread owns RCO destination channels x DIRECT_RPX = 8 consecutive pixels of one row.  Taps
 * of one (plane, row offset) with consecutive column offsets form a group: the thread loads
 * the 8 + nt - 1 source values of a group once and reuses them for all nt taps (3 x 3: 10
 * loads and 6 vector weight loads feed 192 FMAs).  PAIRS kernels read those windows 8 bytes
 * at a time; NARROWT kernels take a last column strip of at most 8 columns with a lane per
 * row.  Tiles leave through a per-warp shared-memory transpose, so stores write whole rows.
 */
#ifndef TCONV_CUDA_DIRECT_FMA_CUH
#define TCONV_CUDA_DIRECT_FMA_CUH

#include "cuda/direct/pipeline.cuh"

template <int RCO, typename A> __device__ __forceinline__ void load_weights(A (&w)[RCO], const A *p)
{
#pragma unroll
    for (int o = 0; o < RCO; ++o) w[o] = p[o];
}
template <> __device__ __forceinline__ void load_weights<8, float>(float (&w)[8], const float *p)
{
    const float4 a = ((const float4 *)p)[0], b = ((const float4 *)p)[1];
    w[0] = a.x; w[1] = a.y; w[2] = a.z; w[3] = a.w;
    w[4] = b.x; w[5] = b.y; w[6] = b.z; w[7] = b.w;
}
template <> __device__ __forceinline__ void load_weights<4, float>(float (&w)[4], const float *p)
{
    const float4 a = ((const float4 *)p)[0];
    w[0] = a.x; w[1] = a.y; w[2] = a.z; w[3] = a.w;
}

/* FMA tiles: each thread owns RCO channels x RPX consecutive pixels of one row.  PAIRS: the
 * float tiles of direct_pairs problems outside tf32 mode (every tap group 3 taps from an even
 * column of rows of even pitch), whose windows are read 8 bytes at a time. */
template <typename A, int RCO, int TCO, bool PAIRS> struct direct_fma {
    A acc[RCO][DIRECT_RPX];
    const direct_taps *t;
    int tbase, o0;
    int cc;
    bool tf32; /* round the source values (the prepared weights already are) */
    /* One group of taps over the stage's channels; NTG > 0 is the group's tap count known at
     * compile time (the 3-tap rows of 3x3 kernels: no predicates), 0 takes any count.  The
     * channel loop is unrolled by two where the registers allow it without spills: float
     * tiles unroll the 3-tap path, float64 tiles (no 3-tap path) the general one. */
    template <int NTG>
    __device__ __forceinline__ void group(const A *p, const A *wc, int nt, int chan, int wstep)
    {
        constexpr int RPX = DIRECT_RPX, TAPS = NTG ? NTG : DIRECT_MAX_GROUP, WIN = RPX + TAPS - 1;
        constexpr int UNROLL = NTG || sizeof(A) != 4 ? 2 : 1;
        static_assert(!PAIRS || sizeof(A) == 4, "8-byte windows: float tiles");
#pragma unroll UNROLL
        for (int c = 0; c < cc; ++c, p += chan, wc += wstep) {
            A win[WIN];
            if constexpr (PAIRS && NTG == 3) {
#pragma unroll
                for (int j = 0; j < WIN / 2; ++j) {
                    const float2 v = ((const float2 *)p)[j];
                    win[2 * j] = v.x;
                    win[2 * j + 1] = v.y;
                }
            } else {
#pragma unroll
                for (int j = 0; j < WIN; ++j)
                    if (NTG || j < RPX + nt - 1) win[j] = p[j];
            }
            if (!PAIRS && tf32) { /* PAIRS tiles never run in tf32 mode (direct_shape_make) */
#pragma unroll
                for (int j = 0; j < WIN; ++j) win[j] = operand(win[j], true);
            }
#pragma unroll
            for (int tap = 0; tap < TAPS; ++tap) {
                if (NTG || tap < nt) {
                    A w[RCO];
                    load_weights<RCO>(w, wc + tap * TCO);
#pragma unroll
                    for (int o = 0; o < RCO; ++o)
#pragma unroll
                        for (int j = 0; j < RPX; ++j) acc[o][j] = fma(w[o], win[j + tap], acc[o][j]);
                }
            }
        }
    }
    /* groups outside, channels inside: a group's offsets and tap count are read once per
     * stage and its predicates stay fixed over the channel loop */
    __device__ __forceinline__ void operator()(const A *src_stage, const A *w_stage)
    {
        const int chan = t->chan, wstep = t->ntaps * TCO;
        for (int gi = 0; gi < t->ngroups; ++gi) {
            const A *p = src_stage + tbase + t->group_off[gi];
            const int nt = t->group_tap[gi] >> 16, t0 = t->group_tap[gi] & 0xffff;
            const A *wc = w_stage + t0 * TCO + o0;
            if constexpr (sizeof(A) == 4) {
                /* PAIRS: 8-byte windows from an even column only; direct_pairs promises that
                 * every group is one, any other would take the general path */
                if (nt == 3 && (!PAIRS || !(t->group_off[gi] & 1))) {
                    group<3>(p, wc, nt, chan, wstep);
                    continue;
                }
            }
            group<0>(p, wc, nt, chan, wstep);
        }
    }
};

/* NARROWT: the narrow tiles of a last column strip of at most RPX columns (float tiles; a
 * lane owns a row: DIRECT_NARROW_ROWS x TH rows x RPX columns), a launch of their own
 * (direct_launch), so that the other tiles' kernel is as it would be alone.  PAIRS: the
 * 8-byte windows of direct_fma (P.pairs), kernels of their own for the same reason. */
template <typename T, int MODE, int RCO, int WARPS_CO, int WARPS_PX, bool NARROWT = false, bool PAIRS = false>
__global__ void __launch_bounds__(32 * WARPS_CO * WARPS_PX, WARPS_CO * WARPS_PX >= 8 ? 2 : 4)
direct_kernel(const direct_params P)
{
    typedef acc_t<T> A;
    constexpr int NWARPS = WARPS_CO * WARPS_PX, TCO = RCO * WARPS_CO, TH = 8 * WARPS_PX;
    constexpr int RPX = DIRECT_RPX;
    extern __shared__ __align__(16) unsigned char direct_smem[];
    A *smem = (A *)direct_smem;
    __shared__ direct_taps t;
    direct_block b;
    if (!direct_block_init<MODE, TH, NARROWT>(P, b)) return;
    direct_block_tables<MODE, NWARPS * 32>(P, b, t, (int *)(smem + P.table), NARROWT);

    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int wc = warp % WARPS_CO, wp = warp / WARPS_CO;
    const int tx = lane % 4;
    direct_fma<A, RCO, TCO, PAIRS> f;
    f.t = &t;
    f.cc = P.cc;
    f.tf32 = P.tf32;
    f.tbase = NARROWT ? (wp * 32 + lane) * t.pitch : (wp * 8 + lane / 4) * t.pitch + tx * RPX;
    f.o0 = wc * RCO;
#pragma unroll
    for (int o = 0; o < RCO; ++o)
#pragma unroll
        for (int j = 0; j < RPX; ++j) f.acc[o][j] = 0;
    direct_mainloop<T, NWARPS * 32, TCO, 1>(P, t, b, smem, f);
    const int oh_step = MODE == DIRECT_FORWARD ? P.ah.stride : 1;
    const int ow_step = MODE == DIRECT_FORWARD ? P.aw.stride : 1;
    const int64_t dst_plane = (int64_t)P.ah.dst_size * P.aw.dst_size;
    T *dst = (T *)P.dst;
    const T *bias = (const T *)P.bias;
    if constexpr (NARROWT) { /* a lane writes the few columns of its row, from registers */
        direct_block_init<MODE, TH, NARROWT>(P, b); /* again: fewer registers than keeping b */
        const int i = b.i0 + wp * 32 + lane, ch0 = b.cot * TCO + f.o0;
        if (i >= b.count_h) return;
        T *row = dst + ((int64_t)b.n * P.groups * P.co + (int64_t)b.g * P.co + ch0) * dst_plane +
                 (int64_t)(b.rh + oh_step * i) * P.aw.dst_size + b.rw + (int64_t)ow_step * b.j0;
#pragma unroll
        for (int o = 0; o < RCO; ++o, row += dst_plane) {
            if (ch0 + o >= P.co) continue;
            const A bv = bias ? to_acc(bias[(int64_t)b.g * P.co + ch0 + o]) : A(0);
#pragma unroll
            for (int jj = 0; jj < RPX; ++jj)
                if (b.j0 + jj < b.count_w) row[(int64_t)ow_step * jj] = from_acc<T>(f.acc[o][jj] + bv);
        }
        return;
    }
    __syncthreads(); /* the epilogue reuses the stages */

    /* epilogue: each warp transposes its 8 rows x 32 pixels per channel through shared
     * memory (row pitch 33 against bank conflicts), then writes whole rows */
    A *stage = smem + warp * 8 * 33;
    const int j = b.j0 + lane, ch0 = b.cot * TCO + f.o0;
#pragma unroll
    for (int o = 0; o < RCO; ++o) {
#pragma unroll
        for (int jj = 0; jj < RPX; ++jj) stage[(lane / 4) * 33 + tx * RPX + jj] = f.acc[o][jj];
        __syncwarp();
        if (ch0 + o < P.co && j < b.count_w) {
            const A bv = bias ? to_acc(bias[(int64_t)b.g * P.co + ch0 + o]) : A(0);
            /* this lane's column in the warp's first row, then one destination row per r: the
             * 64-bit products once per channel, not per store; float64 tiles, at their
             * register limit, keep one product per store */
            T *out = dst + ((int64_t)b.n * P.groups * P.co + (int64_t)b.g * P.co + ch0 + o) * dst_plane +
                     (int64_t)b.rw + (int64_t)ow_step * j;
            const int i0 = b.i0 + wp * 8;
            if constexpr (sizeof(A) == 4) out += (int64_t)(b.rh + oh_step * i0) * P.aw.dst_size;
            const int64_t step = (int64_t)oh_step * P.aw.dst_size;
            for (int r = 0; r < 8; ++r) {
                if constexpr (sizeof(A) == 4) {
                    if (i0 + r < b.count_h) *out = from_acc<T>(stage[r * 33 + lane] + bv);
                    out += step;
                } else if (i0 + r < b.count_h) {
                    out[(int64_t)(b.rh + oh_step * (i0 + r)) * P.aw.dst_size] = from_acc<T>(stage[r * 33 + lane] + bv);
                }
            }
        }
        __syncwarp();
    }
}

#endif /* TCONV_CUDA_DIRECT_FMA_CUH */
