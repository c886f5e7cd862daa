/*
 * direct/plan.cuh - the host side of the direct engine: its tile configurations (a variant
 * is one of them), the shape of a problem for a tile (direct_shape_make: phases, stages,
 * shared memory, workspace, grid), the variants' can_implement, plan and launch, and
 * DIRECT_VARIANTS, which defines every variant of one pass.
 */
#ifndef TCONV_CUDA_DIRECT_PLAN_CUH
#define TCONV_CUDA_DIRECT_PLAN_CUH

#include <type_traits>

#include "cuda/direct/fma.cuh"
#include "cuda/direct/mma.cuh"
#include "cuda/direct/wgmma.cuh"
#include "cuda/variant.h"

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
    P->w_stride_red = fwd ? cog * khw : khw;
    P->w_stride_dst = fwd ? khw : cog * khw;
    P->w_stride_group = cig * cog * khw;
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

typedef void (*direct_kernel_fn)(const direct_params);

/* A variant's plan of one problem: the shape, and the kernels it launches: the main one and,
 * where P.tiles_hn asks for them, the narrow tiles' (FMA float tiles; else NULL). */
typedef struct direct_plan {
    direct_shape s;
    direct_kernel_fn main, narrow;
} direct_plan;
static_assert(sizeof(direct_plan) <= TCONV_VARIANT_STATE_BYTES, "a direct plan fits a variant's state");

/* Whether tile Tile has kernels for storage type T: tensor-core tiles take float only, wide
 * FMA tiles no float64 (too many accumulators).  The others are never instantiated
 * (direct_can_implement refuses them). */
template <typename Tile, typename T> constexpr bool direct_has_kernels()
{
    return Tile::mma != DIRECT_FMA ? std::is_same<T, float>::value
                                   : !(sizeof(acc_t<T>) == 8 && Tile::rco * DIRECT_RPX > 32);
}

/* Picks pl->main and pl->narrow for storage type T (the shape made).  The MMA kernel has a
 * fully unrolled form for the common 9 taps per phase (3x3, stride 1). */
template <int MODE, typename Tile> struct direct_pick {
    direct_plan *pl;
    template <typename T> cudaError_t operator()() const
    {
        const direct_shape &s = pl->s;
        pl->narrow = NULL;
        if constexpr (!direct_has_kernels<Tile, T>()) {
            return cudaErrorInvalidValue;
        } else if constexpr (Tile::mma == DIRECT_WGMMA_TF32) {
            if (s.taps != 9 && s.taps != 4) return cudaErrorInvalidValue;
            pl->main = s.taps == 9 ? direct_wgmma_pick<MODE, 9>(s.P.last_pitch) : direct_wgmma_pick<MODE, 4>(s.P.last_pitch);
        } else if constexpr (Tile::mma == DIRECT_WGMMA_3XFP16) {
            if (s.taps != 9 && s.taps != 4) return cudaErrorInvalidValue;
            pl->main = s.taps == 9 ? direct_wgmma_fp16_kernel<MODE, 9> : direct_wgmma_fp16_kernel<MODE, 4>;
        } else if constexpr (Tile::mma != DIRECT_FMA) {
            pl->main = s.taps == 9 ? direct_mma_kernel<MODE, Tile::mma, 9> : direct_mma_kernel<MODE, Tile::mma, 0>;
        } else if constexpr (sizeof(acc_t<T>) == 4) {
            if (s.P.pairs) {
                pl->main = direct_kernel<T, MODE, Tile::rco, Tile::warps_co, Tile::warps_px, false, true>;
                pl->narrow = direct_kernel<T, MODE, Tile::rco, Tile::warps_co, Tile::warps_px, true, true>;
            } else {
                pl->main = direct_kernel<T, MODE, Tile::rco, Tile::warps_co, Tile::warps_px>;
                pl->narrow = direct_kernel<T, MODE, Tile::rco, Tile::warps_co, Tile::warps_px, true>;
            }
        } else {
            pl->main = direct_kernel<T, MODE, Tile::rco, Tile::warps_co, Tile::warps_px>;
        }
        return cudaSuccess;
    }
};

/* Queues the weight prep and then the kernels of the plan, for storage type T. */
template <int MODE, typename Tile> struct direct_launch {
    const tconv_args *a;
    const direct_plan *pl;
    template <typename T> cudaError_t operator()() const
    {
        if constexpr (!direct_has_kernels<Tile, T>()) {
            return cudaErrorInvalidValue;
        } else {
            direct_shape s = pl->s;
            if constexpr (Tile::mma == DIRECT_WGMMA_3XFP16) {
                /* the weights' largest magnitude, for their scale (direct_prepare_weights) */
                unsigned *wmax = (unsigned *)((char *)a->workspace + s.wmax_offset);
                s.P.wmax = wmax;
                const int64_t nw = s.P.groups * s.P.w_stride_group;
                cudaError_t err = cudaMemsetAsync(wmax, 0, sizeof(unsigned), a->stream);
                if (err != cudaSuccess) return err;
                direct_weight_max<<<(unsigned)(nw < 64 * 1024 ? (nw + 1023) / 1024 : 64), 256, 0, a->stream>>>(
                    (const float *)a->weight, nw, wmax);
            }
            return launch<T>(s);
        }
    }
    /* The narrow tiles' kernel, where the plan has one, goes first with its own grid, then
     * the other tiles' kernel over the strips before. */
    template <typename T> cudaError_t launch(direct_shape &s) const
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
        if (s.P.tiles_hn && pl->narrow) {
            pl->narrow<<<dim3(phases * (unsigned)s.P.tiles_hn, grid_y, grid_z), 32 * Tile::nwarps, s.smem_bytes,
                         a->stream>>>(s.P);
            if (--rest.tiles_w == 0) return cudaGetLastError();
        }
        const dim3 grid(phases * (unsigned)(rest.tiles_h * rest.tiles_w), grid_y, grid_z);
        pl->main<<<grid, 32 * Tile::nwarps, s.smem_bytes, a->stream>>>(rest);
        return cudaGetLastError();
    }
};

/* can_implement of a variant: wide FMA tiles hold too many float64 accumulators;
 * tensor-core tiles take float32 only, TF32 tiles in tf32 mode, 3xTF32 and 3xFP16 tiles in
 * fp32 mode; the warpgroup tiles only where the build and the device have sm_90a, and only
 * with 9 or 4 taps in every phase; the stages, tables and tap tables within what the device
 * lends a CTA (sm_80: 163 KB; the 3xTF32 budget leaves them little room there). */
template <int MODE, typename Tile>
static int direct_can_implement(const tconv_problem *p, const tconv_config *config, const tconv_device_caps *d)
{
    if (Tile::mma != DIRECT_FMA && config->dtype != TCONV_FLOAT32) return 0;
    const int tf32_tile = Tile::mma == DIRECT_MMA_TF32 || Tile::mma == DIRECT_WGMMA_TF32;
    if (Tile::mma != DIRECT_FMA && (config->precision == TCONV_PRECISION_TF32) != tf32_tile) return 0;
    if (config->dtype == TCONV_FLOAT64 && Tile::rco * DIRECT_RPX > 32) return 0;
    if (direct_is_wgmma(Tile::mma) && !d->sm90a) return 0;
    direct_shape s;
    if (!direct_shape_make<Tile>(&s, MODE, p, acc_bytes(config->dtype), tf32_mode(config))) return 0;
    if (direct_is_wgmma(Tile::mma) && s.taps != 9 && s.taps != 4) return 0;
    return s.smem_bytes + sizeof(direct_taps) <= (size_t)d->smem_optin;
}

/* The shape, the kernels (their shared-memory limit set on d), and the workspace: the tap
 * tables and the prepared weights (every tap once per group, channel tile and chunk, in
 * stage order). */
template <int MODE, typename Tile>
static int direct_plan_make(const tconv_problem *p, const tconv_config *config, const tconv_device_caps *d, void *state,
                            size_t *workspace_bytes)
{
    direct_plan *pl = (direct_plan *)state;
    if (!direct_shape_make<Tile>(&pl->s, MODE, p, acc_bytes(config->dtype), tf32_mode(config))) return 0;
    const direct_pick<MODE, Tile> pick = {pl};
    if (with_dtype(config->dtype, pick) != cudaSuccess ||
        tconv_kernel_smem((const void *)pl->main, pl->s.smem_bytes, d->ordinal) != cudaSuccess ||
        (pl->narrow && pl->s.P.tiles_hn &&
         tconv_kernel_smem((const void *)pl->narrow, pl->s.smem_bytes, d->ordinal) != cudaSuccess))
        return 0;
    *workspace_bytes = pl->s.workspace_bytes;
    return 1;
}

template <int MODE, typename Tile> static cudaError_t direct_run(const tconv_args *a, const void *state)
{
    const direct_launch<MODE, Tile> body = {a, (const direct_plan *)state};
    return with_dtype(a->config->dtype, body);
}

/* The variant PREFIX_direct_NAME of pass MODE (a TCONV_PASS_ value), tile Tile. */
#define DIRECT_VARIANT(PREFIX, NAME, MODE, PASS, Tile)                                                             \
    const tconv_variant tconv_variant_##PREFIX##_direct_##NAME = {#PREFIX "_direct_" #NAME, PASS,                    \
                                                                  direct_can_implement<MODE, Tile>,                \
                                                                  direct_plan_make<MODE, Tile>, direct_run<MODE, Tile>}

typedef direct_tile<8, 8, 1> direct_fma_tile_64x256;
typedef direct_tile<4, 4, 2> direct_fma_tile_16x512;
typedef direct_tile<4, 1, 4> direct_fma_tile_4x1024;

/* Every variant of the engine for one pass: wgmma_tf32_64x768 (Hopper's warpgroup mma, sm_90a
 * builds on 9.0 devices) and tf32_64x256 (mma.sync) for float32 in tf32 mode,
 * wgmma_3xfp16_64x256 (sm_90a; three FP16 products of split operands) and 3xtf32_64x256 (three
 * TF32 products) for float32 in fp32 mode, and the FMA tiles for every dtype and precision.
 * Tiles are named destination channels x pixels per CTA. */
#define DIRECT_VARIANTS(PREFIX, MODE, PASS)                                                   \
    DIRECT_VARIANT(PREFIX, wgmma_tf32_64x768, MODE, PASS, direct_wgmma_tile);               \
    DIRECT_VARIANT(PREFIX, tf32_64x256, MODE, PASS, direct_tf32_tile);                      \
    DIRECT_VARIANT(PREFIX, wgmma_3xfp16_64x256, MODE, PASS, direct_wgmma_3xfp16_tile);      \
    DIRECT_VARIANT(PREFIX, 3xtf32_64x256, MODE, PASS, direct_3xtf32_tile);                  \
    DIRECT_VARIANT(PREFIX, 64x256, MODE, PASS, direct_fma_tile_64x256);                     \
    DIRECT_VARIANT(PREFIX, 16x512, MODE, PASS, direct_fma_tile_16x512);                     \
    DIRECT_VARIANT(PREFIX, 4x1024, MODE, PASS, direct_fma_tile_4x1024)

#endif /* TCONV_CUDA_DIRECT_PLAN_CUH */
