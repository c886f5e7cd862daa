/*
 * direct/pipeline.cuh - what every kernel of the direct engine shares on the device: the
 * tap tables and the CTA's tile table (the source offset of each element of a halo tile);
 * the weight prep, once per call into the workspace in stage order (converted, rounded to
 * TF32, or split for 3xTF32 and 3xFP16); the CTA's place in the grid; and the cp.async
 * pipeline over the reduction channels, DIRECT_STAGES deep with one barrier per chunk.
 */
#ifndef TCONV_CUDA_DIRECT_PIPELINE_CUH
#define TCONV_CUDA_DIRECT_PIPELINE_CUH

#include "cuda/common.cuh"
#include "cuda/direct/geometry.cuh"
#include "cuda/ptx.cuh"

/* One shared-memory element from global memory: cp.async where storage and arithmetic
 * types agree (float, double), else a converting load. */
template <typename T> __device__ __forceinline__ void stage_elem(acc_t<T> *s, const T *g, bool valid)
{
    *s = valid ? to_acc(*g) : acc_t<T>(0);
}
template <> __device__ __forceinline__ void stage_elem<float>(float *s, const float *g, bool valid) { cp_async_zfill<sizeof(*s)>(s, g, valid); }
template <> __device__ __forceinline__ void stage_elem<double>(double *s, const double *g, bool valid) { cp_async_zfill<sizeof(*s)>(s, g, valid); }

/* Copies a tap table, as ints, by the CTA's first `n` threads. */
__device__ __forceinline__ void direct_copy_taps(direct_taps *dst, const direct_taps *src, int n)
{
    for (int i = threadIdx.x; i < (int)(sizeof(direct_taps) / sizeof(int)); i += n) ((int *)dst)[i] = ((const int *)src)[i];
}

template <int MODE, int MMA>
__device__ void direct_build_taps(const direct_params &P, int rh, int rw, int th, int tw, int wpitch, direct_taps *t)
{
    const direct_axis_plan ph = direct_plan_axis(&P.ah, MODE, rh);
    const direct_axis_plan pw = direct_plan_axis(&P.aw, MODE, rw);
    t->rows = direct_span(&ph, th);
    t->pitch = direct_pitch(direct_span(&pw, tw), MMA, wpitch, P.pairs);
    t->plane = t->rows * t->pitch;
    t->nres_w = direct_popc(pw.res);
    t->chan = direct_chan_elems(&ph, &pw, th, tw, MMA, wpitch, P.pairs);
    t->nplanes = direct_popc(ph.res) * t->nres_w;
    t->qmin_h = ph.qmin;
    t->qmin_w = pw.qmin;
    for (int r = 0, i = 0; r < P.ah.stride; ++r) if (ph.res >> r & 1u) t->res_h[i++] = r;
    for (int r = 0, i = 0; r < P.aw.stride; ++r) if (pw.res >> r & 1u) t->res_w[i++] = r;

    int ng = 0, nt = 0;
    for (int kh = 0; kh < P.ah.kernel; ++kh) {
        int resh, qh;
        if (!direct_tap(&P.ah, MODE, rh, kh, &resh, &qh)) continue;
        const int plane_h = direct_popc(ph.res & ((1u << resh) - 1u));
        for (int pwi = 0; pwi < t->nres_w; ++pwi) {
            int last_q = 0, open = 0;
            /* q is monotonic in kw: decreasing for forward, increasing for grad-input */
            for (int step = 0; step < P.aw.kernel; ++step) {
                const int kw = MODE == DIRECT_FORWARD ? P.aw.kernel - 1 - step : step;
                int resw, qw;
                if (!direct_tap(&P.aw, MODE, rw, kw, &resw, &qw) || resw != t->res_w[pwi]) continue;
                const int count = ng ? t->group_tap[ng - 1] >> 16 : 0;
                if (open && qw == last_q + 1 && count < DIRECT_MAX_GROUP) {
                    t->group_tap[ng - 1] += 1 << 16;
                } else {
                    t->group_off[ng] = (plane_h * t->nres_w + pwi) * t->plane +
                                       (qh - ph.qmin) * t->pitch + (qw - pw.qmin);
                    t->group_tap[ng] = nt | 1 << 16;
                    ++ng;
                    open = 1;
                }
                last_q = qw;
                t->tap_off[nt] = t->group_off[ng - 1] + (t->group_tap[ng - 1] >> 16) - 1;
                t->tap_k[nt++] = kh * P.aw.kernel + kw;
            }
        }
    }
    t->ngroups = ng;
    t->ntaps = nt;
}

/* ---- 3xFP16 (fp32 mode) ----
 * The pieces of common.cuh (fp16_split) with lo scaled by 2^11, which keeps it out of FP16's
 * subnormals (where it would lose bits) and puts its products in an accumulator of their
 * own:  w x = 2^-(ew + ex) (big + small 2^-11),  big = sum hi_w hi_x,
 * small = sum hi_w lo_x + lo_w hi_x  (lo_w lo_x, 2^-22 of the product, is dropped).  The
 * weights' exponent ew puts their largest magnitude in [2^14, 2^15); the source's, ex, is
 * chosen per CTA, see direct_wgmma_fp16_kernel. */
#define DIRECT_FP16_W_TOP 14 /* the weights' largest magnitude, scaled: [2^14, 2^15) */
#define DIRECT_FP16_X_TOP 8  /* the source's, per CTA: [2^8, 2^9), leaving 2^6 for later stages */
#define DIRECT_FP16_LIMIT 32768.f /* a scaled source value this large makes the CTA rescale */

/* Where piece `piece` of weight(c, tap, o) of a stage goes: [c][tap][o] for FMA tiles; for
 * mma.sync the A-fragment order of mma.m16n8k8 (row o, column c within the 8 channels of a
 * stage), [tap][o / 16][piece][lane][register], so that a lane loads a fragment with one
 * conflict-free LDS.128; for warpgroup mma the K-major layout of its A operand without swizzle
 * (core matrices of 8 channels o x 16 bytes of channels c, 128 bytes): TF32
 * [tap][c / 4][o][c % 4] in floats, 3xFP16 [piece][tap][c / 8][o][c % 8] in halves. */
template <int TCO, int MMA> __device__ __forceinline__ int direct_weight_slot(int c, int tap, int o, int ntaps, int piece)
{
    if (MMA == DIRECT_FMA) return (c * ntaps + tap) * TCO + o;
    if (MMA == DIRECT_WGMMA_TF32) return ((tap * 2 + c / 4) * TCO + o) * 4 + c % 4;
    if (MMA == DIRECT_WGMMA_3XFP16) return (((piece * ntaps + tap) * 2 + c / 8) * TCO + o) * 8 + c % 8;
    const int r = o % 16, lane = (r % 8) * 4 + c % 4, reg = r / 8 + 2 * (c / 4);
    return (((tap * (TCO / 16) + o / 16) * direct_pieces(MMA) + piece) * 32 + lane) * 4 + reg;
}

/* The source offset (in one channel) of each element of a channel's halo tile, -1 where the
 * tile reaches past the source (zero padding): computed once per CTA, so that the copies of
 * every chunk are a table look-up and a cp.async. */
template <int MODE, int NTHREADS>
__device__ void direct_tile_table(const direct_params &P, const direct_taps &t, int i0, int j0, int *table)
{
    const int sh = MODE == DIRECT_FORWARD ? 1 : P.ah.stride;
    const int sw = MODE == DIRECT_FORWARD ? 1 : P.aw.stride;
    for (int e = threadIdx.x; e < t.nplanes * t.plane; e += NTHREADS) {
        const int plane = e / t.plane, m = e % t.plane / t.pitch, col = e % t.pitch;
        const int y = sh * (i0 + t.qmin_h + m) + t.res_h[plane / t.nres_w];
        const int x = sw * (j0 + t.qmin_w + col) + t.res_w[plane % t.nres_w];
        const bool ok = y >= 0 && y < P.ah.src_size && x >= 0 && x < P.aw.src_size;
        table[e] = ok ? y * P.aw.src_size + x : -1;
    }
}

/* Issues the copies of reduction channels [c0, c0 + cc) into one stage: the source halo
 * tile through the CTA's table, and the chunk's weights, already in stage order (and
 * TF32-rounded where asked) in the workspace, as 16-byte copies. */
template <typename T, int NTHREADS, int TCO, int PIECES>
__device__ __forceinline__ void direct_stage(const direct_params &P, const direct_taps &t, const int *table,
                                             acc_t<T> *stage, const T *src_c0, int c0, const acc_t<T> *wchunk)
{
    typedef acc_t<T> A;
    const int64_t src_plane = (int64_t)P.ah.src_size * P.aw.src_size;
    for (int e = threadIdx.x; e < t.nplanes * t.plane; e += NTHREADS) {
        const int go = table[e];
        const T *g = src_c0 + go;
        A *sm = stage + e;
        /* channels past cr are zero-filled too: shared memory may hold NaN patterns */
        for (int c = 0; c < P.cc; ++c, g += src_plane, sm += t.chan) {
            const bool ok = go >= 0 && c0 + c < P.cr;
            stage_elem<T>(sm, ok ? g : src_c0, ok);
        }
    }
    A *sw = stage + direct_round4(P.cc * t.chan);
    constexpr int V = 16 / sizeof(A);
    for (int e = threadIdx.x * V; e < P.cc * t.ntaps * TCO * PIECES; e += NTHREADS * V) cp_async<16>(sw + e, wchunk + e);
}

/* The weights of one (group, channel tile, phase, chunk) as a stage holds them, written
 * once per call into the workspace (see direct_weights_offset): converted to the
 * arithmetic type and, in tf32 mode, rounded, or for 3xTF32 split into
 * big = tf32(w) and small = tf32(w - big), for 3xFP16 scaled and split into FP16 hi and lo;
 * and the tap table of each phase.
 * Grid: (phases, chunks * parts, groups * co_tiles): `parts` CTAs share a chunk's weights, so
 * that each thread converts about one (the call waits for this kernel).  A table is built by
 * one thread (the last column strip's by another warp's, at the same time) and published by
 * all of them. */
template <typename T, int MODE, int TCO, int TH, int MMA>
__global__ void direct_prepare_weights(const direct_params P, acc_t<T> *prepared, direct_taps *taps)
{
    __shared__ direct_taps t, tl; /* this phase's tables; its last column strip's */
    const int rh = blockIdx.x / P.phases_w, rw = blockIdx.x % P.phases_w;
    const int g = blockIdx.z / P.co_tiles, obase = blockIdx.z % P.co_tiles * TCO;
    const int parts = gridDim.y / P.nchunks, chunk = blockIdx.y / parts, part = blockIdx.y % parts;
    const int c0 = chunk * P.cc;
    const bool publish = blockIdx.y == 0 && blockIdx.z == 0; /* for the CTAs of this phase */
    const bool last = publish && direct_last_tables(P);
    if (threadIdx.x == 0) direct_build_taps<MODE, MMA>(P, rh, rw, TH, DIRECT_TW, DIRECT_WGMMA_PITCH, &t);
    if (last && threadIdx.x == 32) {
        if (direct_is_wgmma(MMA))
            direct_build_taps<MODE, MMA>(P, rh, rw, TH, DIRECT_TW, P.last_pitch, &tl);
        else
            direct_build_taps<MODE, MMA>(P, rh, rw, DIRECT_NARROW_ROWS * TH, DIRECT_RPX, 0, &tl);
    }
    __syncthreads();
    if (publish) direct_copy_taps(taps + blockIdx.x, &t, blockDim.x);
    if (last) direct_copy_taps(taps + gridDim.x + blockIdx.x, &tl, blockDim.x);
    const T *weight = (const T *)P.weight + (int64_t)g * P.w_stride_group;
    acc_t<T> *out = prepared + direct_weights_offset(P, blockIdx.x, g, obase / TCO, chunk);
    const float wscale = MMA == DIRECT_WGMMA_3XFP16 ? pow2f(fp16_exponent(*P.wmax, DIRECT_FP16_W_TOP, 0)) : 1.f;
    for (int e = part * blockDim.x + threadIdx.x; e < P.cc * t.ntaps * TCO; e += parts * blockDim.x) {
        const int o = e % TCO, tap = e / TCO % t.ntaps, c = e / (TCO * t.ntaps);
        const bool ok = c0 + c < P.cr && obase + o < P.co;
        const acc_t<T> v = ok ? to_acc(weight[(int64_t)(c0 + c) * P.w_stride_red + (int64_t)(obase + o) * P.w_stride_dst + t.tap_k[tap]]) : 0;
        if constexpr (MMA == DIRECT_WGMMA_3XFP16) {
            __half2 hi, lo;
            fp16_split(v * wscale, 0.f, 2048.f, hi, lo);
            ((__half *)out)[direct_weight_slot<TCO, MMA>(c, tap, o, t.ntaps, 0)] = __low2half(hi);
            ((__half *)out)[direct_weight_slot<TCO, MMA>(c, tap, o, t.ntaps, 1)] = __low2half(lo);
        } else {
            const acc_t<T> big = P.tf32 || direct_pieces(MMA) == 2 ? operand(v, true) : v;
            out[direct_weight_slot<TCO, MMA>(c, tap, o, t.ntaps, 0)] = big;
            if (direct_pieces(MMA) == 2) out[direct_weight_slot<TCO, MMA>(c, tap, o, t.ntaps, 1)] = operand(v - big, true);
        }
    }
}

/* Where a CTA works: one phase, TH x tw destination pixels, one channel tile, one image. */
struct direct_block {
    int phase, rh, rw, i0, j0, count_h, count_w, g, cot, n;
};

/* Decodes blockIdx for tiles of TH x tw (P.tw; the FMA and mma.sync tiles keep the constant
 * default); returns false when the tile lies outside its (smaller) phase.  NARROW: the FMA
 * float tiles' narrow tiles of the last column strip (P.tiles_hn per phase, DIRECT_NARROW_ROWS
 * x TH rows each; direct_launch). */
template <int MODE, int TH, bool NARROW = false>
__device__ __forceinline__ bool direct_block_init(const direct_params &P, direct_block &b, int tw = DIRECT_TW)
{
    const int tiles = NARROW ? P.tiles_hn : P.tiles_h * P.tiles_w;
    b.phase = blockIdx.x / tiles;
    const int tile = blockIdx.x % tiles;
    b.rh = b.phase / P.phases_w;
    b.rw = b.phase % P.phases_w;
    b.i0 = NARROW ? tile * (DIRECT_NARROW_ROWS * TH) : tile / P.tiles_w * TH;
    b.j0 = NARROW ? (P.tiles_w - 1) * tw : tile % P.tiles_w * tw;
    b.count_h = direct_count(&P.ah, MODE, b.rh);
    b.count_w = direct_count(&P.aw, MODE, b.rw);
    b.g = blockIdx.y / P.co_tiles;
    b.cot = blockIdx.y % P.co_tiles;
    b.n = blockIdx.z;
    return b.i0 < b.count_h && b.j0 < b.count_w;
}

/* The CTA's tap tables (from the workspace; `last`: those of the last column strip's pitch)
 * and tile table (computed), in shared memory. */
template <int MODE, int NTHREADS>
__device__ __forceinline__ void direct_block_tables(const direct_params &P, const direct_block &b, direct_taps &t,
                                                    int *table, bool last = false)
{
    direct_copy_taps(&t, P.taps + (last ? P.phases_h * P.phases_w : 0) + b.phase, NTHREADS);
    __syncthreads();
    direct_tile_table<MODE, NTHREADS>(P, t, b.i0, b.j0, table);
    __syncthreads();
}

/* The walk over the reduction channels, DIRECT_STAGES deep: while chunk k is multiplied by
 * compute(source tile, weights), the copies of the next DIRECT_STAGES - 1 chunks are in
 * flight.  One barrier per chunk: after it, chunk k is visible to every thread and every
 * thread is done with chunk k - 1, whose buffer the copies of chunk k + STAGES - 1 reuse.
 * Returns with copies drained but without a final barrier. */
template <typename T, int NTHREADS, int TCO, int PIECES, typename Compute>
__device__ __forceinline__ void direct_mainloop(const direct_params &P, const direct_taps &t, const direct_block &b,
                                                acc_t<T> *smem, Compute &compute)
{
    typedef acc_t<T> A;
    constexpr int S = DIRECT_STAGES;
    const A *wts = (const A *)P.prepared + direct_weights_offset(P, b.phase, b.g, b.cot, 0);
    const int *table = (const int *)(smem + P.table);
    const int64_t src_plane = (int64_t)P.ah.src_size * P.aw.src_size;
    const T *src = (const T *)P.src + ((int64_t)b.n * P.groups + b.g) * P.cr * src_plane;
    const int nchunks = t.ntaps ? P.nchunks : 0;
    const int wofs = direct_round4(P.cc * t.chan);
    /* every step commits one (maybe empty) group, so that wait<S - 2> means "chunk k landed" */
    for (int k = 0; k < S - 1; ++k) {
        if (k < nchunks)
            direct_stage<T, NTHREADS, TCO, PIECES>(P, t, table, smem + k * P.stage, src + k * P.cc * src_plane, k * P.cc,
                                           wts + (int64_t)k * P.wchunk);
        cp_async_commit();
    }
    for (int k = 0; k < nchunks; ++k) {
        cp_async_wait<S - 2>();
        __syncthreads();
        const int next = k + S - 1;
        if (next < nchunks)
            direct_stage<T, NTHREADS, TCO, PIECES>(P, t, table, smem + next % S * P.stage, src + next * P.cc * src_plane,
                                           next * P.cc, wts + (int64_t)next * P.wchunk);
        cp_async_commit();
        A *cur = smem + k % S * P.stage;
        compute(cur, cur + wofs);
    }
    cp_async_wait<0>();
}

#endif /* TCONV_CUDA_DIRECT_PIPELINE_CUH */
