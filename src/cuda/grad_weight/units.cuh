/*
 * grad_weight/units.cuh - what the unit-tiled grad_weight variants share: grad_weight_mma_*
 * (tensor cores) and grad_weight_fma_64x16 (FP32 FMA); stride 1, kW <= 3, dilation_w <= 2.
 * The GEMM (M, N, K) = (Cig, Cog*kH*kW, batch*H_in*W_in) is split along K into units of one
 * input row x UNITS_PX = 64 pixels; slice s (blockIdx.y) owns units [s*U/S, (s+1)*U/S), in
 * row order or in bands of segments (units_advance).  A CTA owns one slice and one tile of 64
 * ci x CO co x 3 x 3 taps, and a cp.async pipeline stages per unit the tile's x and grad_y's
 * three tap rows with their halo (zero outside the tensors), so that every tap is a shifted
 * read of a staged row.  Inner sums flush into outer float sums every few units; each slice's
 * sums go to the workspace with plain stores and slices.cuh adds them in a fixed order in
 * double: bitwise deterministic.  docs/algorithm.md ("grad-weight") has the details.
 */
#ifndef TCONV_CUDA_GRAD_WEIGHT_UNITS_CUH
#define TCONV_CUDA_GRAD_WEIGHT_UNITS_CUH

#include <stdint.h>

#include "cuda/common.cuh"
#include "cuda/variant.h"

#define UNITS_CI 64       /* input channels per CTA (M tile) */
#define UNITS_CO 32       /* output channels per CTA: the most (a variant may take fewer) */
#define UNITS_KH 3        /* tap rows per CTA; kH > 3 takes several tiles along kh */
#define UNITS_KW 3        /* tap columns: kW <= 3 (columns past kW are computed, not written) */
#define UNITS_PX 64       /* pixels of one unit */
#define UNITS_GY_PITCH 68       /* gs row stride: >= UNITS_PX + 4 (the window of DW <= 2), = 4 mod 8 */
#define UNITS_GY_FLOATS(co) (UNITS_KH * (co) * UNITS_GY_PITCH) /* gs of a CTA of co output channels */
#define UNITS_STAGES 3    /* cp.async pipeline depth */
/* Slices: UNITS_WAVES waves of the CTAs the GPU holds at once. */
#define UNITS_WAVES 2

typedef struct units_params {
    const float *x;      /* (N, C_in, H_in, W_in) */
    const float *grad_y; /* (N, C_out, H_out, W_out) */
    float *partial;      /* (slices, C_in, Cog, kH, kW) */
    int c_in, h_in, w_in, c_out, h_out, w_out;
    int kernel_h, kernel_w, padding_h, padding_w, dilation_h;
    int cig, cog;
    int ci_tiles, co_tiles, kh_groups;
    int nseg;            /* units per row: ceil(W_in / UNITS_PX) */
    int64_t units;       /* N * H_in * nseg */
    int slices;
    int64_t weight_elems;
} units_params;

typedef void (*units_kernel)(const units_params);

/* Where a CTA's next unit to stage is: image n, row ih, pixels [seg*UNITS_PX, +UNITS_PX). */
typedef struct units_cursor {
    int64_t n;
    int ih, seg;
} units_cursor;

/* The order of the units, image by image: BAND = 0, row by row (segments fastest); else in
 * bands of BAND segments (the last band of a row maybe narrower), each band row by row:
 * the three tap rows' reads of a grad_y row are then BAND units apart instead of a row's
 * segments (16 for the seed), and come from L2 rather than DRAM. */
template <int BAND> __device__ __forceinline__ void units_advance(const units_params &p, units_cursor &c)
{
    if constexpr (BAND == 0) {
        if (++c.seg == p.nseg) {
            c.seg = 0;
            if (++c.ih == p.h_in) {
                c.ih = 0;
                ++c.n;
            }
        }
    } else {
        const int b0 = c.seg / BAND * BAND, b1 = min(b0 + BAND, p.nseg); /* the band */
        if (++c.seg == b1) {
            c.seg = b0;
            if (++c.ih == p.h_in) {
                c.ih = 0;
                c.seg = b1 == p.nseg ? 0 : b1;
                if (b1 == p.nseg) ++c.n;
            }
        }
    }
}

/* The CTA's output tile (CO output channels).  Grid: x = tile (group, ci tile, co tile,
 * kh group), fastest the kh group and co tile, so the CTAs that read the same x rows run
 * side by side (L2 hits); y = slice. */
struct units_tile {
    int grp, ci0, co0, kh0;
};
template <int CO> __device__ __forceinline__ units_tile units_tile_of(const units_params &p)
{
    int tile = blockIdx.x;
    const int khg = tile % p.kh_groups;
    tile /= p.kh_groups;
    const int cot = tile % p.co_tiles;
    tile /= p.co_tiles;
    units_tile r;
    r.grp = tile / p.ci_tiles;
    r.ci0 = tile % p.ci_tiles * UNITS_CI;
    r.co0 = cot * CO;
    r.kh0 = khg * UNITS_KH;
    return r;
}

/* The CTA's slice: its first unit in *c, the number of its units returned (in the order of
 * units_advance<BAND>). */
template <int BAND> __device__ __forceinline__ int units_slice(const units_params &p, units_cursor &c)
{
    const int64_t u0 = blockIdx.y * p.units / p.slices, u1 = (blockIdx.y + 1) * p.units / p.slices;
    if constexpr (BAND == 0) {
        const int64_t row = u0 / p.nseg;
        c.seg = (int)(u0 - row * p.nseg);
        c.n = row / p.h_in;
        c.ih = (int)(row - c.n * p.h_in);
    } else {
        const int64_t image = (int64_t)p.h_in * p.nseg; /* units per image */
        c.n = u0 / image;
        const int64_t r = u0 - c.n * image; /* within the image */
        const int band = (int)min(r / ((int64_t)p.h_in * BAND), (int64_t)(p.nseg - 1) / BAND);
        const int64_t rb = r - (int64_t)band * p.h_in * BAND; /* within the band */
        const int width = min(BAND, p.nseg - band * BAND);
        c.ih = (int)(rb / width);
        c.seg = band * BAND + (int)(rb - (int64_t)c.ih * width);
    }
    return (int)(u1 - u0); /* the plan keeps it in int */
}

/* Issues the grad_y copies of one unit into gs, V floats per cp.async, from NT threads.
 * A vector is either wholly inside its row or wholly outside: W_in, W_out, padding_w and
 * the vector's first column are multiples of V (the plan picks V so).  Every staged float
 * is written (data or zero): stale shared memory could hold NaN, and NaN * 0 is not 0.
 * V is compile-time: a runtime width puts every copy behind a branch.  Warp w of NW stages the rows
 * co = w + NW*i of each tap row: first the 64 columns of the unit's pixels (M copies per
 * row, a power of 2: whole warp instructions covering one row, two, or half of one), then
 * the 4 halo columns.  tid: the thread's index among the NT that stage. */
template <int V, int NT, int CO> __device__ __forceinline__ void
units_stage_gy(const units_params &p, float *gs, const units_cursor &c, const units_tile &t, unsigned tid)
{
    constexpr int NW = NT / 32, M = UNITS_PX / V, H = 4 / V, ROWS = CO / NW; /* rows per warp */
    /* the tap rows unrolled, so that what they share is computed once, where that does not
     * spill (4-byte copies: 3 times as many) */
    constexpr int KH_UNROLL = V == 1 ? 1 : UNITS_KH;
    const int warp = tid / 32, lane = tid % 32;
    const int c0 = c.seg * UNITS_PX - p.padding_w; /* grad_y column of staged column 0 */
    const int64_t plane = (int64_t)p.h_out * p.w_out;
    const float *g_unit = p.grad_y + (c.n * p.c_out + (int64_t)t.grp * p.cog + t.co0 + warp) * plane + c0;
#pragma unroll KH_UNROLL
    for (int kh = 0; kh < UNITS_KH; ++kh) {
        const int oh = c.ih - p.padding_h + (t.kh0 + kh) * p.dilation_h;
        const bool kh_ok = t.kh0 + kh < p.kernel_h && oh >= 0 && oh < p.h_out;
        const float *g_kh = g_unit + (int64_t)oh * p.w_out; /* row co = warp; read where kh_ok */
        float *d = gs + (kh * CO + warp) * UNITS_GY_PITCH;
#pragma unroll
        for (int k = 0; k < ROWS * M / 32; ++k) {
            const int row = 32 * k / M + (M < 32 ? lane / M : 0), col = (32 * k + lane) % M * V;
            const bool ok = kh_ok && t.co0 + warp + NW * row < p.cog && c0 + col >= 0 && c0 + col < p.w_out;
            cp_async_zfill<4 * V>(d + NW * row * UNITS_GY_PITCH + col, g_kh + NW * row * plane + col, ok);
        }
        /* the 4 halo columns of the warp's rows: ROWS * H copies, the other lanes idle */
        if (lane < ROWS * H) {
            const int row = lane / H, col = UNITS_PX + lane % H * V;
            const bool ok = kh_ok && t.co0 + warp + NW * row < p.cog && c0 + col >= 0 && c0 + col < p.w_out;
            cp_async_zfill<4 * V>(d + NW * row * UNITS_GY_PITCH + col, g_kh + NW * row * plane + col, ok);
        }
    }
}

/* Writes the slice's sums of tile channels (ci, co) (tile-local), tap (kh0 + tap / 3,
 * tap % 3) given by sum(tap), where inside the weight.  Every element of partial[slice]
 * is written by exactly one thread of one CTA (the tiles partition the weight). */
template <typename Sum>
__device__ __forceinline__ void units_store(const units_params &p, const units_tile &t, int ci, int co, Sum sum)
{
    if (t.ci0 + ci >= p.cig || t.co0 + co >= p.cog) return;
    float *out = p.partial + (int64_t)blockIdx.y * p.weight_elems;
    const int64_t base = (((int64_t)t.grp * p.cig + t.ci0 + ci) * p.cog + t.co0 + co) * p.kernel_h;
#pragma unroll
    for (int tap = 0; tap < UNITS_KH * UNITS_KW; ++tap) {
        const int kh = t.kh0 + tap / UNITS_KW, kw = tap % UNITS_KW;
        if (kh < p.kernel_h && kw < p.kernel_w) out[(base + kh) * p.kernel_w + kw] = sum(tap);
    }
}

/* ---- host side (units.cu) ---- */

/* The widest cp.async (in floats) that keeps every vector of every row aligned and either
 * wholly inside or wholly outside its row (units start at multiples of UNITS_PX; staged
 * grad_y column 0 is column -padding_w): for x it divides W_in and the pointer's offset
 * in floats, for grad_y W_out, padding_w and the pointer's.  A NULL pointer counts as
 * aligned (plans see none: they ready the kernels of every width). */
int units_width_x(const tconv_problem *p, const void *x);
int units_width_gy(const tconv_problem *p, const void *grad_y);

/* Whether the unit-tiled kernels can run p (stride 1, kW <= 3, dilation_w <= 2, every
 * count in range) in CTAs of smem_bytes of dynamic shared memory on device d. */
int units_can_implement(const tconv_problem *p, int smem_bytes, const tconv_device_caps *d);

/* Fills *q (all but the pointers) for kernels of `threads` threads, smem_bytes of dynamic
 * shared memory and co_tile output channels, and sets the shared-memory limit of the
 * `count` kernels a launch may pick (one per copy width) on d; kernels[0] gives the slices
 * their occupancy.  Returns 0 where no CTA fits an SM or a CTA's units leave int. */
int units_plan(const tconv_problem *p, const tconv_device_caps *d, const units_kernel *kernels, int count, int threads,
             int smem_bytes, int co_tile, units_params *q);

/* The partial sums of every slice; nothing else. */
size_t units_workspace_bytes(const units_params *q);

/* Queues kernel (one of those units_plan readied, for the tensors' copy widths) and then the
 * reduction of the slices on a->stream. */
cudaError_t units_launch(const tconv_args *a, const units_params *q, units_kernel kernel, int threads, int smem_bytes);

#endif /* TCONV_CUDA_GRAD_WEIGHT_UNITS_CUH */
