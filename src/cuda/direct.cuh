/*
 * direct.cuh - the direct-correlation engine behind forward_direct_* and grad_input_direct_*.
 *
 * Both passes are a correlation of a source tensor with the weight:
 *
 *   forward     source x (C_in channels),      destination y      (C_out channels)
 *   grad-input  source grad_y (C_out channels), destination grad_x (C_in channels)
 *
 *   dst[n, g*Co + o, pixel] = (bias) + sum over c < Cr, taps (kh, kw) of
 *                             src[n, g*Cr + c, source pixel of the tap] * weight(c, o, kh, kw)
 *
 * Along each axis a destination index i and tap k meet the source index
 *
 *   forward:    (i + padding - k*dilation) / stride, only where the division is exact
 *   grad-input: i*stride - padding + k*dilation
 *
 * To never multiply zeros, forward splits the destination into stride phases
 * (i = r + stride*i', r in [0, stride)): inside a phase the taps that land are fixed and
 * the source index is i' + q(k), a dense correlation.  Grad-input is already dense but
 * strided in the source; it de-interleaves the source into residue planes
 * (row = stride*m + res) so that every tap again reads m = i + q(k).  So, per axis and per
 * phase, a tap is (plane residue, q) and the source of destination index i is
 * plane[i + q]: in both passes a tap is a fixed offset into a shared-memory halo tile.
 *
 * One CTA computes TCO destination channels x (TH x TW) destination pixels of one phase of
 * one image; it walks the reduction channels in chunks of `cc` through a DIRECT_STAGES-deep
 * cp.async pipeline: the chunk's source halo tile (all residue planes, copied through a
 * per-CTA table of source offsets) and its weights (prepared once per call in the
 * workspace, in stage order) sit in shared memory.
 *
 * FMA tiles: each thread owns RCO channels x RPX = 8 consecutive pixels of one row.  Taps of
 * one (plane, row offset) with consecutive column offsets form a group: the thread loads the
 * RPX + nt - 1 source values of a group once into registers and reuses them for all nt taps
 * (for a 3x3 kernel: 10 loads and 6 vector weight loads feed 192 FMAs).
 * MMA tiles (float32): each warp owns a row of 32 pixels and all 64 channels, and every tap
 * is one mma.m16n8k8 step over the 8 channels of a stage: TF32 in tf32 mode, 3xTF32 (three
 * products of big and small TF32 pieces, flushed into float32 sums after every stage) in
 * fp32 mode.
 * Both leave through a per-warp shared-memory transpose, so that every store writes whole rows.
 * The warpgroup tile (direct_wgmma.cuh, sm_90a, tf32 mode) keeps the phases, planes and tap
 * and tile tables but interleaves a stage's channels by quads, so that Hopper's wgmma reads
 * both operands from shared memory, one wgmma per tap for 4 rows of 64 pixels.
 */
#ifndef TCONV_CUDA_DIRECT_CUH
#define TCONV_CUDA_DIRECT_CUH

#include <type_traits>

#include "cuda/common.cuh"
#include "cuda/variant.h"

#define DIRECT_MAX_TAPS 64   /* taps of one phase kept in shared-memory tables */
#define DIRECT_MAX_GROUP 4   /* taps sharing one register window */
#define DIRECT_MAX_STRIDE 32 /* residues of an axis are a 32-bit mask */
#define DIRECT_RPX 8         /* consecutive pixels per thread */
#define DIRECT_TW 32         /* tile width: 4 threads x 8 pixels */
#define DIRECT_NARROW_ROWS 4 /* FMA float tiles' narrow tiles: 4 x the rows, 1 thread x 8 pixels wide */
#define DIRECT_WGMMA_PITCH 64 /* source row pitch of the warpgroup tile (direct_wgmma.cuh) */
#define DIRECT_MMA_EPI (64 * 36) /* per-warp epilogue tile of the MMA kernel */
#define DIRECT_STAGES 3                 /* shared-memory stages of the channel pipeline */
#define DIRECT_STAGE_BYTES (104 * 1024) /* all stages, so that 2 CTAs fit on an SM */
#define DIRECT_SPLIT_STAGE_BYTES (156 * 1024) /* one CTA per SM: fits sm_80's 163 KB per CTA */

enum { DIRECT_FORWARD = 0, DIRECT_GRAD_INPUT = 1 };

/* How a tile multiplies: FP32 FMA, one TF32 mma per product (tf32 mode), three
 * (3xTF32: big*big + big*small + small*big, fp32 mode), or Hopper's warpgroup mma on operands
 * in shared memory: one TF32 product (tf32 mode) or three FP16 products of split operands
 * (3xFP16, fp32 mode; direct_wgmma.cuh). */
enum { DIRECT_FMA = 0, DIRECT_MMA_TF32 = 1, DIRECT_MMA_3XTF32 = 2, DIRECT_WGMMA_TF32 = 3, DIRECT_WGMMA_3XFP16 = 4 };

__host__ __device__ constexpr bool direct_is_wgmma(int mma) { return mma == DIRECT_WGMMA_TF32 || mma == DIRECT_WGMMA_3XFP16; }

/* One spatial axis of the correlation. */
typedef struct direct_axis {
    int kernel, stride, padding, dilation;
    int src_size; /* H or W of the source tensor */
    int dst_size; /* H or W of the destination tensor */
} direct_axis;

/* What one axis looks like in one phase r. */
typedef struct direct_axis_plan {
    int ntaps;     /* taps of the kernel that land in this phase */
    int qmin, qmax;
    unsigned res;  /* mask of the source residues (planes) these taps read */
    int count;     /* destination indices in this phase */
} direct_axis_plan;

typedef struct direct_params {
    const void *src;    /* (N, groups*Cr, src H, src W) */
    const void *weight; /* (C_in, C_out/groups, kH, kW) */
    const void *bias;   /* (groups*Co) or NULL; forward only */
    void *dst;          /* (N, groups*Co, dst H, dst W) */
    int cr, co;         /* reduction and destination channels per group */
    int groups;
    int tw;             /* destination columns of a tile (in the padding before the int64s: moving
                         * the later fields' offsets made ptxas spill the FMA tiles) */
    int64_t w_red, w_out, w_group; /* weight strides of a reduction channel, destination channel, group */
    direct_axis ah, aw;
    int phases_h, phases_w; /* the strides for forward, 1 for grad-input */
    int tiles_h, tiles_w, co_tiles;
    int cc;             /* reduction channels per shared-memory stage */
    int stage;          /* elements of one stage */
    int wchunk;         /* workspace elements of one chunk's prepared weights */
    int nchunks;        /* chunks of cc reduction channels */
    const void *prepared; /* the weights prepared by direct_prepare_weights (workspace) */
    const struct direct_taps *taps; /* the tap tables of every phase (workspace) */
    int table;          /* elements of the shared-memory stages, where the tile table starts */
    int tf32;           /* round both operands to nearest TF32 */
    const unsigned *wmax; /* 3xFP16: the weights' largest magnitude, float bits (workspace) */
    /* the last column strip's own tiles, whose tap tables follow the others' (0: none) */
    int last_pitch;     /* tf32 warpgroup tile: their source pitch, under DIRECT_WGMMA_PITCH */
    int tiles_hn;       /* FMA float tiles: narrow tiles per phase */
    int pairs;          /* FMA float tiles: source rows of even pitch, windows read 8 bytes at a time */
} direct_params;

/* Whether the last column strip's tiles have tap tables of their own (after the others'). */
__host__ __device__ inline bool direct_last_tables(const direct_params &P) { return P.last_pitch || P.tiles_hn; }

/* Tap k of axis a in phase r: returns 0 when it does not land, else its residue and q. */
__host__ __device__ inline int direct_tap(const direct_axis *a, int mode, int r, int k, int *res, int *q)
{
    const int s = a->stride;
    if (mode == DIRECT_FORWARD) {
        const int num = r + a->padding - k * a->dilation; /* = stride * (source index - i') */
        if (num % s != 0) return 0;
        *res = 0;
        *q = num / s;
        return 1;
    }
    const int num = k * a->dilation - a->padding; /* source = stride*i + num */
    const int m = ((num % s) + s) % s;
    *res = m;
    *q = (num - m) / s;
    return 1;
}

/* Destination indices of phase r along an axis. */
__host__ __device__ inline int direct_count(const direct_axis *a, int mode, int r)
{
    if (mode != DIRECT_FORWARD) return a->dst_size;
    return r < a->dst_size ? (a->dst_size - r + a->stride - 1) / a->stride : 0;
}

__host__ __device__ inline direct_axis_plan direct_plan_axis(const direct_axis *a, int mode, int r)
{
    direct_axis_plan p = {0, 0, 0, 0u, 0};
    for (int k = 0; k < a->kernel; ++k) {
        int res, q;
        if (!direct_tap(a, mode, r, k, &res, &q)) continue;
        if (p.ntaps == 0 || q < p.qmin) p.qmin = q;
        if (p.ntaps == 0 || q > p.qmax) p.qmax = q;
        p.res |= 1u << res;
        ++p.ntaps;
    }
    p.count = direct_count(a, mode, r);
    return p;
}

/* Source rows (or columns) of a tile of `tile` destination indices; 0 without taps. */
__host__ __device__ inline int direct_span(const direct_axis_plan *p, int tile)
{
    return p->ntaps ? tile + p->qmax - p->qmin : 0;
}

__host__ __device__ inline int direct_popc(unsigned v)
{
    int n = 0;
    for (; v; v &= v - 1u) ++n;
    return n;
}

__host__ __device__ inline int direct_round4(int v) { return (v + 3) & ~3; }

/* Where the prepared weights of (phase, group, channel tile, chunk) start in the workspace. */
__host__ __device__ inline int64_t direct_weights_offset(const direct_params &P, int phase, int g, int cot, int chunk)
{
    return (((int64_t)g * P.co_tiles + cot) * P.phases_h * P.phases_w + phase) * P.nchunks * P.wchunk +
           (int64_t)chunk * P.wchunk;
}

/* Row pitch of a source tile of `cols` columns: odd, so that the 32 lanes of a warp (8 rows x
 * 4 column groups of 8) hit 32 banks with 4-byte loads; with `pairs` (FMA float tiles whose
 * tap groups all start at even columns, see direct_pairs) 2 mod 4, so that they hit 16 bank
 * pairs per half warp with 8-byte loads.  The warpgroup tile's rows are `wpitch` pixels, 64
 * (its tile width is chosen to fill them) or fewer in the last column strip (see
 * direct_shape_make). */
__host__ __device__ inline int direct_pitch(int cols, int mma, int wpitch, int pairs)
{
    return direct_is_wgmma(mma) ? wpitch : pairs ? cols + ((2 - cols % 4) & 3) : cols | 1;
}

/* Whether FMA tiles of `elem`-byte elements read their windows 8 bytes at a time: a kernel 3
 * wide at stride and dilation 1 makes every tap group 3 taps from column 0 of the tile's
 * rows (the 3-tap path of direct_fma), in both passes. */
__host__ __device__ inline int direct_pairs(const direct_axis *aw, int mma, int elem)
{
    return mma == DIRECT_FMA && elem == 4 && aw->kernel == 3 && aw->stride == 1 && aw->dilation == 1;
}

/* Elements of one reduction channel's source tile.  For mma.sync tiles the channel stride
 * is 8 mod 32 banks: the 4 channels of an mma fragment's k then sit in 4 disjoint bank
 * octets.  Warpgroup tiles interleave channels by quads instead (direct_wgmma.cuh). */
__host__ __device__ inline int direct_chan_elems(const direct_axis_plan *h, const direct_axis_plan *w, int th, int tw,
                                                 int mma, int wpitch, int pairs)
{
    const int planes = direct_popc(h->res) * direct_popc(w->res);
    const int chan = planes * direct_span(h, th) * direct_pitch(direct_span(w, tw), mma, wpitch, pairs);
    return (mma == DIRECT_MMA_TF32 || mma == DIRECT_MMA_3XTF32) && chan ? chan + ((8 - chan % 32) + 32) % 32 : chan;
}

/* ---- device side ---- */

template <typename A> __device__ __forceinline__ void cp_async(A *smem, const A *gmem, bool valid)
{
    const unsigned s = (unsigned)__cvta_generic_to_shared(smem);
    if (sizeof(A) == 4)
        asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(s), "l"(gmem), "r"(valid ? 4 : 0));
    else
        asm volatile("cp.async.ca.shared.global [%0], [%1], 8, %2;\n" ::"r"(s), "l"(gmem), "r"(valid ? 8 : 0));
}
__device__ __forceinline__ void cp_async16(void *smem, const void *gmem)
{
    const unsigned s = (unsigned)__cvta_generic_to_shared(smem);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(s), "l"(gmem));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> __device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

/* One shared-memory element from global memory: cp.async where storage and arithmetic
 * types agree (float, double), else a converting load. */
template <typename T> __device__ __forceinline__ void stage_elem(acc_t<T> *s, const T *g, bool valid)
{
    *s = valid ? to_acc(*g) : acc_t<T>(0);
}
template <> __device__ __forceinline__ void stage_elem<float>(float *s, const float *g, bool valid) { cp_async(s, g, valid); }
template <> __device__ __forceinline__ void stage_elem<double>(double *s, const double *g, bool valid) { cp_async(s, g, valid); }

/* The tap tables of a phase, built once per call (direct_prepare_weights) and copied into each
 * CTA's shared memory. */
struct direct_taps {
    int ngroups, ntaps;
    int rows, pitch, plane, chan;    /* source tile geometry, in elements */
    int nplanes;
    int qmin_h, qmin_w;
    int nres_w;
    int res_h[DIRECT_MAX_STRIDE], res_w[DIRECT_MAX_STRIDE]; /* residue of plane index */
    int group_off[DIRECT_MAX_TAPS];  /* offset of the group's first tap in a channel's tile */
    int group_tap[DIRECT_MAX_TAPS];  /* first tap slot (bits 0-15) and tap count (bits 16+) */
    int tap_k[DIRECT_MAX_TAPS];      /* kh*kW + kw of each tap slot */
    int tap_off[DIRECT_MAX_TAPS];    /* offset of each tap slot in a channel's tile */
};

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

/* Weight values a stage holds per (channel, tap, output channel): 3xTF32 keeps a big and
 * a small TF32 piece; 3xFP16's two FP16 pieces take the room of one. */
__host__ __device__ constexpr int direct_pieces(int mma) { return mma == DIRECT_MMA_3XTF32 ? 2 : 1; }

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
    for (int e = threadIdx.x * V; e < P.cc * t.ntaps * TCO * PIECES; e += NTHREADS * V) cp_async16(sw + e, wchunk + e);
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
    const T *weight = (const T *)P.weight + (int64_t)g * P.w_group;
    acc_t<T> *out = prepared + direct_weights_offset(P, blockIdx.x, g, obase / TCO, chunk);
    const float wscale = MMA == DIRECT_WGMMA_3XFP16 ? pow2f(fp16_exponent(*P.wmax, DIRECT_FP16_W_TOP, 0)) : 1.f;
    for (int e = part * blockDim.x + threadIdx.x; e < P.cc * t.ntaps * TCO; e += parts * blockDim.x) {
        const int o = e % TCO, tap = e / TCO % t.ntaps, c = e / (TCO * t.ntaps);
        const bool ok = c0 + c < P.cr && obase + o < P.co;
        const acc_t<T> v = ok ? to_acc(weight[(int64_t)(c0 + c) * P.w_red + (int64_t)(obase + o) * P.w_out + t.tap_k[tap]]) : 0;
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
            /* this lane's column in the warp's first row, then one destination row per r:
             * the 64-bit products once per channel, not per store (they were ~2/3 of the
             * float tiles' epilogue instructions); float64 tiles, at their register limit,
             * keep one product per store (the row pointer spilled there) */
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

/* D += A * B on the tensor cores: A (16 x 8, o x c) from one LDS.128 of a pre-ordered
 * fragment, B (8 x 8, c x pixel) as two operand registers, D (16 x 8) in four. */
__device__ __forceinline__ void mma_tf32(float (&d)[4], const float4 &a, uint32_t b0, uint32_t b1)
{
    asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 "
                 "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(__float_as_uint(a.x)), "r"(__float_as_uint(a.y)), "r"(__float_as_uint(a.z)),
                   "r"(__float_as_uint(a.w)), "r"(b0), "r"(b1));
}

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
                for (int nt = 0; nt < NT; ++nt) mma_tf32(acc[mt][nt], a_small, big[nt][0], big[nt][1]);
#pragma unroll
                for (int nt = 0; nt < NT; ++nt) mma_tf32(acc[mt][nt], a_big, small[nt][0], small[nt][1]);
            }
#pragma unroll
            for (int nt = 0; nt < NT; ++nt) mma_tf32(acc[mt][nt], a_big, big[nt][0], big[nt][1]);
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

#include "cuda/direct_wgmma.cuh"

/* ---- host side ---- */

/* The tile configurations of the engine; a variant is one of them.  MMA tiles run
 * direct_mma_kernel (64 channels x 8 rows x 32 pixels, fixed), the warpgroup tiles
 * direct_wgmma_kernel (64 channels x 12 rows x up to 62 pixels) and direct_wgmma_fp16_kernel
 * (64 channels x 4 rows x up to 62 pixels). */
template <int RCO, int WARPS_CO, int WARPS_PX, int MMA = DIRECT_FMA> struct direct_tile {
    static constexpr int rco = RCO, warps_co = WARPS_CO, warps_px = WARPS_PX, tco = RCO * WARPS_CO,
                         th = MMA == DIRECT_WGMMA_3XFP16 ? 4
                              : MMA == DIRECT_WGMMA_TF32 ? DIRECT_WGMMA_GROUPS * DIRECT_WGMMA_ROWS
                                                         : 8 * WARPS_PX,
                         nwarps = MMA == DIRECT_WGMMA_TF32 ? 4 * DIRECT_WGMMA_GROUPS : WARPS_CO * WARPS_PX,
                         pieces = direct_pieces(MMA),
                         stages = MMA == DIRECT_WGMMA_TF32     ? DIRECT_WGMMA_STAGES
                                  : MMA == DIRECT_WGMMA_3XFP16 ? DIRECT_WGMMA_SPLIT_STAGES
                                                               : DIRECT_STAGES,
                         stage_bytes = MMA == DIRECT_MMA_3XTF32 ? DIRECT_SPLIT_STAGE_BYTES
                                       : direct_is_wgmma(MMA)   ? DIRECT_WGMMA_STAGE_BYTES
                                                                : DIRECT_STAGE_BYTES;
    static constexpr int mma = MMA;
};
typedef direct_tile<8, 8, 1, DIRECT_MMA_TF32> direct_tf32_tile;
typedef direct_tile<8, 8, 1, DIRECT_MMA_3XTF32> direct_3xtf32_tile;
typedef direct_tile<8, 8, 1, DIRECT_WGMMA_TF32> direct_wgmma_tile;
typedef direct_tile<8, 8, 1, DIRECT_WGMMA_3XFP16> direct_wgmma_3xfp16_tile;

/* The geometry of one pass as the engine sees it. */
typedef struct direct_shape {
    direct_params P;
    size_t smem_bytes;
    size_t taps_bytes;      /* the tap tables (and wmax) at the start of the workspace */
    size_t wmax_offset;     /* where 3xFP16's wmax sits in it */
    size_t workspace_bytes; /* then the prepared weights */
    int taps;               /* the taps of every phase where all phases have as many, else 0 */
} direct_shape;

/* Fills s for tile Tile and arithmetic elements of `elem` bytes.  Returns 1 when the
 * engine can run it (taps, strides, shared memory, grid limits). */
template <typename Tile>
static int direct_shape_make(direct_shape *s, int mode, const tconv_problem *p, size_t elem, int tf32)
{
    direct_params *P = &s->P;
    const int fwd = mode == DIRECT_FORWARD;
    const int64_t cig = p->c_in / p->groups, cog = p->c_out / p->groups;
    P->groups = (int)p->groups;
    P->wmax = NULL;
    P->cr = (int)(fwd ? cig : cog);
    P->co = (int)(fwd ? cog : cig);
    const int64_t khw = p->kernel_h * p->kernel_w;
    P->w_red = fwd ? cog * khw : khw;
    P->w_out = fwd ? khw : cog * khw;
    P->w_group = cig * cog * khw;
    const direct_axis ah = {(int)p->kernel_h, (int)p->stride_h, (int)p->padding_h, (int)p->dilation_h,
                            (int)(fwd ? p->h_in : p->h_out), (int)(fwd ? p->h_out : p->h_in)};
    const direct_axis aw = {(int)p->kernel_w, (int)p->stride_w, (int)p->padding_w, (int)p->dilation_w,
                            (int)(fwd ? p->w_in : p->w_out), (int)(fwd ? p->w_out : p->w_in)};
    P->ah = ah;
    P->aw = aw;
    if (ah.stride > DIRECT_MAX_STRIDE || aw.stride > DIRECT_MAX_STRIDE) return 0;
    /* the tile table holds offsets within one channel of the source as int */
    if ((int64_t)ah.src_size * aw.src_size > INT32_MAX) return 0;
    P->phases_h = fwd ? ah.stride : 1;
    P->phases_w = fwd ? aw.stride : 1;

    P->tf32 = tf32;
    P->pairs = !tf32 && direct_pairs(&aw, Tile::mma, (int)elem); /* their kernels do not round */
    /* the largest stage over all phases decides the shared memory */
    int chan = 0, chan_narrow = 0, wts = 0, max_count_h = 0, max_count_w = 0, wspan = 0;
    s->taps = -1;
    for (int rh = 0; rh < P->phases_h; ++rh) {
        const direct_axis_plan ph = direct_plan_axis(&ah, mode, rh);
        if (ph.count > max_count_h) max_count_h = ph.count;
        for (int rw = 0; rw < P->phases_w; ++rw) {
            const direct_axis_plan pw = direct_plan_axis(&aw, mode, rw);
            if (pw.count > max_count_w) max_count_w = pw.count;
            if (pw.ntaps && pw.qmax - pw.qmin > wspan) wspan = pw.qmax - pw.qmin;
            if (ph.ntaps * pw.ntaps > DIRECT_MAX_TAPS) return 0;
            s->taps = s->taps < 0 || s->taps == ph.ntaps * pw.ntaps ? ph.ntaps * pw.ntaps : 0;
            const int e = direct_chan_elems(&ph, &pw, Tile::th, DIRECT_TW, Tile::mma, DIRECT_WGMMA_PITCH, P->pairs);
            if (e > chan) chan = e;
            if (Tile::mma == DIRECT_FMA) {
                const int en = direct_chan_elems(&ph, &pw, DIRECT_NARROW_ROWS * Tile::th, DIRECT_RPX, Tile::mma, 0, P->pairs);
                if (en > chan_narrow) chan_narrow = en;
            }
            if (ph.ntaps * pw.ntaps * Tile::tco * Tile::pieces > wts) wts = ph.ntaps * pw.ntaps * Tile::tco * Tile::pieces;
        }
    }
    /* [c][source tile] then the weights, 16-byte aligned for vector loads; an mma stage
     * holds exactly the channels of one k step: 8 (TF32), 16 (FP16) */
    int cc = Tile::mma == DIRECT_WGMMA_3XFP16 ? 16 : 8;
    while (!Tile::mma && cc > 1 &&
           Tile::stages * (size_t)(direct_round4(cc * chan) + cc * wts) * elem > Tile::stage_bytes)
        cc /= 2;
    P->cc = cc;

    P->tiles_h = (max_count_h + Tile::th - 1) / Tile::th;
    /* the warpgroup tile's columns and their halo fill its 64-pixel source rows; it takes
     * images at least that wide */
    P->tw = direct_is_wgmma(Tile::mma) ? DIRECT_WGMMA_PITCH - wspan : DIRECT_TW;
    if (P->tw < 16 || (direct_is_wgmma(Tile::mma) && max_count_w < P->tw)) return 0;
    P->tiles_w = (max_count_w + P->tw - 1) / P->tw;
    /* the last column strip: the tf32 warpgroup tile's in rows of the fewest 8-pixel groups
     * that hold its columns and halo (wgmma's N = 4 rows x pitch), where that is under 64;
     * FMA float tiles' (DIRECT_RPX columns at most) in narrow tiles, where their stage fits
     * with as many channels */
    const int last_cols = max_count_w - (P->tiles_w - 1) * P->tw;
    const int wgmma_pitch = (last_cols + wspan + 7) / 8 * 8;
    const bool narrow = Tile::mma == DIRECT_FMA && elem == 4 && last_cols <= DIRECT_RPX &&
                        Tile::stages * (size_t)(direct_round4(cc * chan_narrow) + cc * wts) * elem <= Tile::stage_bytes;
    P->last_pitch = Tile::mma == DIRECT_WGMMA_TF32 && wgmma_pitch < DIRECT_WGMMA_PITCH ? wgmma_pitch : 0;
    P->tiles_hn = narrow ? (max_count_h + DIRECT_NARROW_ROWS * Tile::th - 1) / (DIRECT_NARROW_ROWS * Tile::th) : 0;
    if (narrow && chan_narrow > chan) chan = chan_narrow;
    P->stage = direct_round4(direct_round4(cc * chan) + cc * wts);
    if (Tile::stages * (size_t)P->stage * elem > Tile::stage_bytes) return 0;
    /* the stages (the tiles leave through a per-warp transpose in their place: 8 rows x 33
     * for FMA tiles, 64 channels x 36 for MMA tiles; the warpgroup tile stores from its
     * registers), then the tile table: one int per element of a channel's tile */
    const int epilogue = direct_is_wgmma(Tile::mma) ? 0 : Tile::nwarps * (Tile::mma ? DIRECT_MMA_EPI : 8 * 33);
    P->table = Tile::stages * P->stage > epilogue ? Tile::stages * P->stage : epilogue;
    s->smem_bytes = (size_t)P->table * elem + (size_t)chan * sizeof(int);

    P->co_tiles = (int)((P->co + Tile::tco - 1) / Tile::tco);
    P->nchunks = (P->cr + cc - 1) / cc;
    P->wchunk = cc * wts;
    const int64_t grid_x = (int64_t)P->phases_h * P->phases_w * P->tiles_h * P->tiles_w;
    if (grid_x > INT32_MAX || (int64_t)P->groups * P->co_tiles > 65535 || p->n > 65535 || P->nchunks > 65535)
        return 0;
    /* the tap tables, then (3xFP16) the weights' largest magnitude, each in 256-byte units */
    const size_t tap_sets = direct_last_tables(*P) ? 2 : 1;
    s->taps_bytes = ((size_t)P->phases_h * P->phases_w * tap_sets * sizeof(direct_taps) + 255) / 256 * 256;
    s->wmax_offset = s->taps_bytes;
    if (Tile::mma == DIRECT_WGMMA_3XFP16) s->taps_bytes += 256;
    s->workspace_bytes = s->taps_bytes +
                         (size_t)P->groups * P->co_tiles * P->phases_h * P->phases_w * P->nchunks * P->wchunk * elem;
    return 1;
}

template <int MODE, typename Tile> struct direct_launch {
    const tconv_args *a;
    template <typename T> cudaError_t operator()() const
    {
        direct_shape s;
        if (!direct_shape_make<Tile>(&s, MODE, a->p, sizeof(acc_t<T>), tf32_mode(a->config))) return cudaErrorInvalidValue;
        /* combinations direct_can_implement refuses are not even instantiated; the MMA
         * kernel has a fully unrolled form for the common 9 taps per phase (3x3, stride 1) */
        if constexpr (Tile::mma != DIRECT_FMA && !std::is_same<T, float>::value) {
            return cudaErrorInvalidValue;
        } else if constexpr (Tile::mma == DIRECT_WGMMA_TF32) {
            if (s.taps != 9 && s.taps != 4) return cudaErrorInvalidValue;
            return launch<T>(s, s.taps == 9 ? direct_wgmma_pick<MODE, 9>(s.P.last_pitch)
                                            : direct_wgmma_pick<MODE, 4>(s.P.last_pitch));
        } else if constexpr (Tile::mma == DIRECT_WGMMA_3XFP16) {
            if (s.taps != 9 && s.taps != 4) return cudaErrorInvalidValue;
            /* the weights' largest magnitude, for their scale (direct_prepare_weights) */
            unsigned *wmax = (unsigned *)((char *)a->workspace + s.wmax_offset);
            s.P.wmax = wmax;
            const int64_t nw = s.P.groups * s.P.w_group;
            cudaError_t err = cudaMemsetAsync(wmax, 0, sizeof(unsigned), a->stream);
            if (err != cudaSuccess) return err;
            direct_weight_max<<<(unsigned)(nw < 64 * 1024 ? (nw + 1023) / 1024 : 64), 256, 0, a->stream>>>(
                (const float *)a->weight, nw, wmax);
            return launch<T>(s, s.taps == 9 ? direct_wgmma_fp16_kernel<MODE, 9> : direct_wgmma_fp16_kernel<MODE, 4>);
        } else if constexpr (Tile::mma != DIRECT_FMA) {
            return launch<T>(s, s.taps == 9 ? direct_mma_kernel<MODE, Tile::mma, 9> : direct_mma_kernel<MODE, Tile::mma, 0>);
        } else if constexpr (sizeof(acc_t<T>) == 8 && Tile::rco * DIRECT_RPX > 32) {
            return cudaErrorInvalidValue;
        } else {
            if constexpr (sizeof(acc_t<T>) == 4) {
                if (s.P.pairs)
                    return launch<T>(s, direct_kernel<T, MODE, Tile::rco, Tile::warps_co, Tile::warps_px, false, true>,
                                     direct_kernel<T, MODE, Tile::rco, Tile::warps_co, Tile::warps_px, true, true>);
                return launch<T>(s, direct_kernel<T, MODE, Tile::rco, Tile::warps_co, Tile::warps_px>,
                                 direct_kernel<T, MODE, Tile::rco, Tile::warps_co, Tile::warps_px, true>);
            }
            return launch<T>(s, direct_kernel<T, MODE, Tile::rco, Tile::warps_co, Tile::warps_px>);
        }
    }
    /* narrow: the kernel of the last column strip's narrow tiles, where P.tiles_hn asks for
     * them (FMA float tiles): launched first, with its own grid, then the other tiles' kernel
     * over the strips before */
    template <typename T>
    cudaError_t launch(direct_shape &s, void (*kernel)(const direct_params),
                       void (*narrow)(const direct_params) = NULL) const
    {
        const int fwd = MODE == DIRECT_FORWARD;
        s.P.src = fwd ? a->x : a->grad_y;
        s.P.weight = a->weight;
        s.P.bias = fwd ? a->bias : NULL;
        s.P.dst = fwd ? a->y : a->grad_x;
        s.P.taps = (const direct_taps *)a->workspace;
        s.P.prepared = (const char *)a->workspace + s.taps_bytes;
        /* a chunk's weights over as many CTAs of 256 threads as they need */
        const int need = (s.P.wchunk / Tile::pieces + 255) / 256, cap = 65535 / s.P.nchunks;
        const int parts = need < 1 ? 1 : need < cap ? need : cap;
        const dim3 prep((unsigned)(s.P.phases_h * s.P.phases_w), (unsigned)(s.P.nchunks * parts),
                        (unsigned)(s.P.groups * s.P.co_tiles));
        direct_prepare_weights<T, MODE, Tile::tco, Tile::th, Tile::mma>
            <<<prep, 256, 0, a->stream>>>(s.P, (acc_t<T> *)s.P.prepared, (direct_taps *)a->workspace);
        const unsigned phases = (unsigned)(s.P.phases_h * s.P.phases_w);
        const unsigned grid_y = (unsigned)(s.P.groups * s.P.co_tiles), grid_z = (unsigned)a->p->n;
        direct_params rest = s.P; /* the other tiles: every strip, or those before the narrow ones */
        if (s.P.tiles_hn && narrow) {
            cudaError_t err = cudaFuncSetAttribute(narrow, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)s.smem_bytes);
            if (err != cudaSuccess) return err;
            narrow<<<dim3(phases * (unsigned)s.P.tiles_hn, grid_y, grid_z), 32 * Tile::nwarps, s.smem_bytes, a->stream>>>(s.P);
            if (--rest.tiles_w == 0) return cudaGetLastError();
        }
        cudaError_t err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)s.smem_bytes);
        if (err != cudaSuccess) return err;
        const dim3 grid(phases * (unsigned)(rest.tiles_h * rest.tiles_w), grid_y, grid_z);
        kernel<<<grid, 32 * Tile::nwarps, s.smem_bytes, a->stream>>>(rest);
        return cudaGetLastError();
    }
};

/* can_implement of a variant: `min_co` keeps wide tiles away from few channels, where
 * most of their lanes would idle; wide FMA tiles hold too many float64 accumulators;
 * tensor-core tiles take float32 only, TF32 tiles in tf32 mode, 3xTF32 tiles in fp32 mode;
 * the warpgroup tile runs only where the build holds it (sm_90a, a 9.0 device), and only
 * with 9 or 4 taps in every phase. */
template <int MODE, typename Tile>
static int direct_can_implement(const tconv_problem *p, const tconv_config *config, int min_co)
{
    const int64_t co = (MODE == DIRECT_FORWARD ? p->c_out : p->c_in) / p->groups;
    if (co < min_co) return 0;
    if (Tile::mma != DIRECT_FMA && config->dtype != TCONV_FLOAT32) return 0;
    const int tf32_tile = Tile::mma == DIRECT_MMA_TF32 || Tile::mma == DIRECT_WGMMA_TF32;
    if (Tile::mma != DIRECT_FMA && (config->precision == TCONV_PRECISION_TF32) != tf32_tile) return 0;
    if (config->dtype == TCONV_FLOAT64 && Tile::rco * DIRECT_RPX > 32) return 0;
    direct_shape s;
    if (!direct_shape_make<Tile>(&s, MODE, p, acc_bytes(config->dtype), tf32_mode(config))) return 0;
    if (direct_is_wgmma(Tile::mma) && s.taps != 9 && s.taps != 4) return 0;
    /* what this device lends a CTA (sm_80: 163 KB; the 3xTF32 budget leaves the table and
     * the tap tables little room there) */
    int dev = 0, optin = 0;
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev) != cudaSuccess)
        return 0;
    if (direct_is_wgmma(Tile::mma) && !sm90a_available(dev)) return 0;
    return s.smem_bytes + sizeof(direct_taps) <= (size_t)optin;
}

/* The prepared weights: every tap once per (group, channel tile, chunk), in stage order. */
template <int MODE, typename Tile> static size_t direct_workspace(const tconv_problem *p, const tconv_config *config)
{
    direct_shape s;
    return direct_shape_make<Tile>(&s, MODE, p, acc_bytes(config->dtype), tf32_mode(config)) ? s.workspace_bytes : 0;
}

template <int MODE, typename Tile> static cudaError_t direct_run(const tconv_args *a)
{
    const direct_launch<MODE, Tile> body = {a};
    return with_dtype(a->config->dtype, body);
}

#endif /* TCONV_CUDA_DIRECT_CUH */
