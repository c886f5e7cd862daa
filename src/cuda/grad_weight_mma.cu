/*
 * grad_weight_mma.cu - grad_weight as a deterministic split-K implicit GEMM on TF32 tensor
 * cores (mma.sync m16n8k8), variants "grad_weight_mma_64x32" (tf32 mode) and
 * "grad_weight_mma_3xtf32_64x32" (fp32 mode, 3xTF32).
 *
 *   grad_weight[g*Cig + ci, co, kh, kw] = sum over n, ih, iw of x[n, g*Cig + ci, ih, iw]
 *       * grad_y[n, g*Cog + co, ih - padding_h + kh*dilation_h, iw - padding_w + kw*dilation_w]
 *
 * (stride 1 on both axes; zero where the grad_y index is outside).  GEMM view: M = Cig,
 * N = Cog*kH*kW, K = N*H_in*W_in.  The tensor-core roles: A (16 x 8) = x[ci][pixel],
 * B (8 x 8) = grad_y[pixel + tap shift][co], one accumulator tile per (ci, co, tap).
 *
 * Work: K is cut into units of one input row (n, ih) x GWM_PX = 64 pixels; slice s of the
 * grid's y axis owns units [s*U/S, (s+1)*U/S).  A CTA owns one slice and one output tile:
 * 64 ci x 32 co x 3 tap rows (kh0 .. kh0 + 2) x 3 tap columns.  A 3-deep cp.async
 * pipeline stages per unit
 *   x     the 64 ci rows x 64 pixels, raw (each thread's own 4 x 16 bytes),
 *   gs    [3 kh][32 co][GWM_GS]: grad_y rows ih - padding_h + kh*dilation_h, columns
 *         iw0 - padding_w + c for c < 68 (the pixels plus the halo of the tap columns),
 * zero wherever the source is outside its tensor or the tile, so every tap is a shifted
 * read of one staged row.  After its own copies land, each thread rounds its x to TF32 and
 * stores it in A-fragment order (gwm_arrange), into one of two buffers; then the unit's
 * single barrier.  Warp w computes ci 32*(w%2) .. +31 (two 16-row A tiles) x co 8*(w/2)
 * .. +7 (one 8-column B tile) x all 9 taps: 18 accumulator tiles (72 registers).
 *
 * K order inside a 32-pixel step: lane (g = lane/4, t = lane%4) owns pixels 8t .. 8t+7 and
 * k-step j (0..3) maps k = t to pixel 8t + 2j and k = t + 4 to pixel 8t + 2j + 1 (any
 * permutation of k is a valid GEMM as long as A and B agree).  Then
 *   A: one LDS.128 per fragment from the arranged buffer, registers in HMMA order;
 *   B: for tap column kw the lane needs grad_y columns 8t + 2j + kw*DW (+1), so the
 *      4 k-steps x 3 tap columns of one tap row are a window of 8 + 2*DW <= 12
 *      consecutive floats of one staged row: 3 LDS.128 feed 12 B fragments.
 * Per 32-pixel step and warp: 8 + 9 LDS.128 for 72 mma.
 *
 * Banks: a quarter warp of a window LDS.128 is lanes g = 2i, 2i+1, t = 0..3, reading rows g
 * at column offsets 8t.  With the row stride = 4 mod 8 floats (GWM_GS = 68) row g+1 sits 4
 * banks off row g: the 8 lanes cover 8 disjoint bank quads, one wavefront each.  The A
 * fragments and the raw x slots are 512 contiguous bytes per warp access.
 *
 * Precision: float32.  In tf32 mode both operands are rounded to nearest TF32 (half a TF32
 * ulp added to the bits, which the tensor core then truncates: tf32_operand_bits): x once
 * per unit when it is arranged, grad_y as the windows are loaded.  In fp32 mode (3xTF32,
 * grad_weight_mma_3xtf32_64x32) both are split into big and small TF32 pieces the same
 * way, and each product is three mma.  The tensor core chops each
 * mma's sum at the accumulator's ulp (a bias toward zero), so the accumulators only ever
 * hold one unit (64 pixels = 8 k-steps): the first mma of a unit starts from zero and at
 * the unit's end they are added into outer float sums (round to nearest).  Each slice's
 * outer sums go to the workspace with plain stores and a second kernel adds the slices
 * in a fixed order in double.  No atomics: bitwise deterministic.
 */
#include <stdint.h>

#include "cuda/common.cuh"
#include "cuda/variant.h"

#define GWM_CI 64       /* input channels per CTA (M tile) */
#define GWM_CO 32       /* output channels per CTA */
#define GWM_KH 3        /* tap rows per CTA; kH > 3 takes several tiles along kh */
#define GWM_KW 3        /* tap columns: kW <= 3 (columns past kW are computed, not written) */
#define GWM_PX 64       /* pixels of one unit (two 32-pixel steps) */
#define GWM_GS 68       /* gs row stride: >= GWM_PX + 4 (the window of DW <= 2), = 4 mod 8 */
#define GWM_STAGES 3    /* cp.async pipeline depth */
#define GWM_THREADS 256 /* 8 warps: 2 (ci) x 4 (co) */
#define GWM_X_FLOATS (GWM_CI * GWM_PX) /* x of one unit, raw or in fragment order */
#define GWM_STAGE_FLOATS (GWM_X_FLOATS + GWM_KH * GWM_CO * GWM_GS)
/* the stages, then two buffers of x in fragment order (each a big and a small piece for
 * 3xTF32): 160,256 bytes, 193,024 for 3xTF32 */
#define GWM_SMEM_BYTES(split) ((GWM_STAGES * GWM_STAGE_FLOATS + 2 * ((split) + 1) * GWM_X_FLOATS) * (int)sizeof(float))
/* Slices: GWM_WAVES waves of the CTAs the GPU holds at once. */
#define GWM_WAVES 2
/* Workspace cap for the per-slice partial sums: 256 MiB. */
#define GWM_MAX_WORKSPACE ((int64_t)256 << 20)

typedef struct gwm_params {
    const float *x;      /* (N, C_in, H_in, W_in) */
    const float *grad_y; /* (N, C_out, H_out, W_out) */
    float *partial;      /* (slices, C_in, Cog, kH, kW) */
    int c_in, h_in, w_in, c_out, h_out, w_out;
    int kernel_h, kernel_w, padding_h, padding_w, dilation_h;
    int cig, cog;
    int ci_tiles, co_tiles, kh_groups;
    int nseg;            /* units per row: ceil(W_in / GWM_PX) */
    int64_t units;       /* N * H_in * nseg */
    int slices;
    int64_t weight_elems;
} gwm_params;

/* Where a CTA's next unit to stage is: image n, row ih, pixels [seg*GWM_PX, +GWM_PX). */
typedef struct gwm_cursor {
    int64_t n;
    int ih, seg;
} gwm_cursor;

__device__ __forceinline__ void gwm_advance(const gwm_params &p, gwm_cursor &c)
{
    if (++c.seg == p.nseg) {
        c.seg = 0;
        if (++c.ih == p.h_in) {
            c.ih = 0;
            ++c.n;
        }
    }
}

/* cp.async of V floats (4, 2 or 1); zero fill when !ok. */
template <int V> __device__ __forceinline__ void gwm_copy(float *dst, const float *src, bool ok)
{
    const unsigned s = (unsigned)__cvta_generic_to_shared(dst);
    if (V == 4)
        asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(src), "r"(ok ? 16 : 0));
    else if (V == 2)
        asm volatile("cp.async.ca.shared.global [%0], [%1], 8, %2;\n" ::"r"(s), "l"(src), "r"(ok ? 8 : 0));
    else
        asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(s), "l"(src), "r"(ok ? 4 : 0));
}
__device__ __forceinline__ void gwm_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> __device__ __forceinline__ void gwm_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

/* The x copies of one thread: tile M = T / 64 (ci rows 16*M ..), u = T % 64 / 32,
 * g = T % 32 / 4, t = T % 4: rows 16*M + g and 16*M + g + 8, pixels 32*u + 8*t .. + 7 of the
 * unit, exactly the values of lane (g, t)'s four A fragments of tile M in step u (see
 * gwm_arrange).  Raw slot (h, q) (row + 8*h, pixels + 4*q) of thread T is the 16 bytes at
 * raw[(2*h + q)*1024 + 4*T]: a warp's accesses to one slot are 512 contiguous bytes. */
struct gwm_xpart {
    int row, px; /* ci row 16*M + g within the tile, pixel 32*u + 8*t within the unit */
};
__device__ __forceinline__ gwm_xpart gwm_xpart_of(int tid)
{
    gwm_xpart r;
    r.row = tid / 64 * 16 + tid % 32 / 4;
    r.px = tid % 64 / 32 * 32 + tid % 4 * 8;
    return r;
}

/* One copy of grad_y: V floats of row (kh, co) of the tile at staged column col; g_kh is
 * the row of channel co0 for tap row kh, shifted so that staged column 0 is its column 0. */
template <int V>
__device__ __forceinline__ void gwm_gy_copy(const gwm_params &p, float *gs, const float *g_kh, bool kh_ok, int kh, int co,
                                            int co0, int c0, int col)
{
    const int gc = c0 + col;
    const bool ok = kh_ok && co0 + co < p.cog && gc >= 0 && gc < p.w_out;
    gwm_copy<V>(gs + (kh * GWM_CO + co) * GWM_GS + col, ok ? g_kh + co * ((int64_t)p.h_out * p.w_out) + col : p.grad_y,
                ok);
}

/* Issues the copies of one unit into stage st, V floats per cp.async.  A vector is either
 * wholly inside its row or wholly outside: W_in, W_out, padding_w and the vector's first
 * column are multiples of V (the plan picks V so).  Every staged float is written (data or
 * zero): stale shared memory could hold NaN, and NaN * 0 is not 0.  V is compile-time:
 * with a runtime width every copy sat behind a branch (and ptxas put three dummy LDS
 * before each LDGSTS that follows a branch). */
template <int V>
__device__ __forceinline__ void gwm_stage(const gwm_params &p, float *st, const gwm_cursor &c, int grp, int ci0,
                                          int co0, int kh0)
{
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int iw0 = c.seg * GWM_PX;

    /* x: this thread's 4 raw slots of 16 bytes */
    const gwm_xpart xp = gwm_xpart_of(threadIdx.x);
    const int64_t x_chan = (int64_t)p.h_in * p.w_in;
    const float *x_row = p.x + ((c.n * p.c_in + (int64_t)grp * p.cig + ci0 + xp.row) * p.h_in + c.ih) * (int64_t)p.w_in +
                         iw0 + xp.px;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        const bool row_ok = ci0 + xp.row + 8 * h < p.cig;
#pragma unroll
        for (int e = 0; e < 8; e += V) {
            const bool ok = row_ok && iw0 + xp.px + e < p.w_in;
            gwm_copy<V>(st + (2 * h + e / 4) * 1024 + 4 * threadIdx.x + e % 4, ok ? x_row + 8 * h * x_chan + e : p.x, ok);
        }
    }

    /* grad_y: 3 x 32 rows of 64 + 4 columns.  Warp w stages the 4 rows co = w + 8*i of
     * each tap row kh: first the 64 columns of the unit's pixels (M copies per row, a
     * power of 2: whole warp instructions covering 1 or 2 rows), then the 4 halo columns. */
    constexpr int M = GWM_PX / V, H = 4 / V;
    const int c0 = iw0 - p.padding_w; /* grad_y column of staged column 0 */
    const float *g_unit = p.grad_y + (c.n * p.c_out + (int64_t)grp * p.cog + co0) * (int64_t)p.h_out * p.w_out + c0;
    float *gs = st + GWM_X_FLOATS;
#pragma unroll 1
    for (int kh = 0; kh < GWM_KH; ++kh) {
        const int oh = c.ih - p.padding_h + (kh0 + kh) * p.dilation_h;
        const bool kh_ok = kh0 + kh < p.kernel_h && oh >= 0 && oh < p.h_out;
        const float *g_kh = g_unit + (int64_t)(kh_ok ? oh : 0) * p.w_out;
#pragma unroll
        for (int k = 0; k < 4 * M / 32; ++k) {
            const int row = 32 * k / M + (M < 32 ? lane / M : 0), col = (32 * k + lane) % M * V;
            gwm_gy_copy<V>(p, gs, g_kh, kh_ok, kh, warp + 8 * row, co0, c0, col);
        }
        /* the 4 halo columns of the kh's 4 rows: 4 * H copies, the other lanes idle */
        if (lane < 4 * H)
            gwm_gy_copy<V>(p, gs, g_kh, kh_ok, kh, warp + 8 * (lane / H), co0, c0, GWM_PX + lane % H * V);
    }
}

/* This thread's raw x of a landed unit (its own copies: visible to it after its own
 * cp.async wait, no barrier needed), as TF32 operands rounded to nearest (tf32_operand_bits;
 * for 3xTF32 split by tf32_split into a big piece at xa and a small one at
 * xa + GWM_X_FLOATS) and stored in A-fragment order:
 * xa[((M*2 + u)*4 + j)*128 + lane*4 + r] is register r of lane (g, t)'s A fragment of tile
 * M, step u, k-step j: (row g, pixel 2j), (row g+8, 2j), (g, 2j+1), (g+8, 2j+1), pixels
 * counted from 32*u + 8*t.  So a warp loads a fragment with one LDS.128 of 512 contiguous
 * bytes, and the registers land in the order HMMA wants them (no moves).  The stores: a
 * quarter warp (one g pair, t = 0..3, one u) writes lanes 8i .. 8i+7, 128 contiguous bytes. */
template <bool SPLIT> __device__ __forceinline__ void gwm_arrange(const float *raw, float *xa)
{
    const int T = threadIdx.x;
    float v[2][8], w[2][8];
#pragma unroll
    for (int h = 0; h < 2; ++h)
#pragma unroll
        for (int q = 0; q < 2; ++q) {
            const float4 f = *(const float4 *)(raw + (2 * h + q) * 1024 + 4 * T);
            const float e[4] = {f.x, f.y, f.z, f.w};
#pragma unroll
            for (int i = 0; i < 4; ++i) {
                if (SPLIT) {
                    uint32_t big, small;
                    tf32_split(e[i], big, small);
                    v[h][4 * q + i] = __uint_as_float(big);
                    w[h][4 * q + i] = __uint_as_float(small);
                } else {
                    v[h][4 * q + i] = __uint_as_float(tf32_operand_bits(e[i]));
                }
            }
        }
    float *dst = xa + ((T / 64 * 2 + T % 64 / 32) * 4) * 128 + T % 32 * 4;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
        *(float4 *)(dst + j * 128) = make_float4(v[0][2 * j], v[1][2 * j], v[0][2 * j + 1], v[1][2 * j + 1]);
        if (SPLIT)
            *(float4 *)(dst + GWM_X_FLOATS + j * 128) = make_float4(w[0][2 * j], w[1][2 * j], w[0][2 * j + 1], w[1][2 * j + 1]);
    }
}

/* D = A * B + C on the tensor cores, C = D (acc) or zero (first k-step of a unit). */
__device__ __forceinline__ void gwm_mma(float (&d)[4], const float4 &a, uint32_t b0, uint32_t b1, bool zero)
{
    if (zero)
        asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 "
                     "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%10,%10,%10,%10};\n"
                     : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
                     : "r"(__float_as_uint(a.x)), "r"(__float_as_uint(a.y)), "r"(__float_as_uint(a.z)),
                       "r"(__float_as_uint(a.w)), "r"(b0), "r"(b1), "f"(0.f));
    else
        asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 "
                     "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                     : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                     : "r"(__float_as_uint(a.x)), "r"(__float_as_uint(a.y)), "r"(__float_as_uint(a.z)),
                       "r"(__float_as_uint(a.w)), "r"(b0), "r"(b1));
}

/* 4 floats from shared memory (16-byte aligned) as TF32 mma operands rounded to nearest
 * into big[0..3]; for 3xTF32 split into big and small pieces. */
template <bool SPLIT> __device__ __forceinline__ void gwm_load4(uint32_t *big, uint32_t *small, const float *s)
{
    const float4 q = *(const float4 *)s;
    const float e[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        if (SPLIT) tf32_split(e[i], big[i], small[i]);
        else big[i] = tf32_operand_bits(e[i]);
    }
}

/* Grid: x = tile (group, ci tile, co tile, kh group), fastest the kh group and co tile, so
 * the CTAs that read the same x rows run side by side (L2 hits); y = slice.
 * DW: dilation_w (1 or 2), compile-time so that the window indices are registers;
 * V: the cp.async width in floats; SPLIT: 3xTF32 (fp32 mode), three mma per product
 * (small x * big grad_y, big x * small grad_y, big * big) into the same accumulators. */
template <int DW, int V, bool SPLIT> __device__ __forceinline__ void grad_weight_mma_body(const gwm_params &p)
{
    constexpr int NQ = 3; /* LDS.128 per window of 8 + 2*DW <= 12 floats */
    extern __shared__ __align__(16) float gwm_smem[];
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
    const int wm = warp % 2, wc = warp / 2;

    int tile = blockIdx.x;
    const int khg = tile % p.kh_groups;
    tile /= p.kh_groups;
    const int cot = tile % p.co_tiles;
    tile /= p.co_tiles;
    const int cit = tile % p.ci_tiles, grp = tile / p.ci_tiles;
    const int ci0 = cit * GWM_CI, co0 = cot * GWM_CO, kh0 = khg * GWM_KH;

    const int64_t u0 = blockIdx.y * p.units / p.slices, u1 = (blockIdx.y + 1) * p.units / p.slices;
    const int nunits = (int)(u1 - u0); /* the plan keeps it in int */
    gwm_cursor cur;
    {
        const int64_t row = u0 / p.nseg;
        cur.seg = (int)(u0 - row * p.nseg);
        cur.n = row / p.h_in;
        cur.ih = (int)(row - cur.n * p.h_in);
    }

    /* outer[m][tap][r]: ci 32*wm + 16*m + g + 8*(r/2), co 8*wc + 2*t + r%2 (the C layout) */
    float outer[2][GWM_KH * GWM_KW][4], acc[2][GWM_KH * GWM_KW][4];
#pragma unroll
    for (int m = 0; m < 2; ++m)
#pragma unroll
        for (int tap = 0; tap < GWM_KH * GWM_KW; ++tap)
#pragma unroll
            for (int r = 0; r < 4; ++r) outer[m][tap][r] = 0.f;

    /* every step commits one (maybe empty) group, so that wait<STAGES - 2> means "unit k landed" */
    for (int k = 0; k < GWM_STAGES - 1; ++k) {
        if (k < nunits) {
            gwm_stage<V>(p, gwm_smem + k * GWM_STAGE_FLOATS, cur, grp, ci0, co0, kh0);
            gwm_advance(p, cur);
        }
        gwm_commit();
    }
    float *xa_buf = gwm_smem + GWM_STAGES * GWM_STAGE_FLOATS;
    for (int k = 0; k < nunits; ++k) {
        gwm_wait<GWM_STAGES - 2>();
        const float *st = gwm_smem + k % GWM_STAGES * GWM_STAGE_FLOATS;
        /* x buffer k % 2 was last read for unit k - 2, before the previous barrier */
        float *xa = xa_buf + k % 2 * (SPLIT + 1) * GWM_X_FLOATS;
        gwm_arrange<SPLIT>(st, xa);
        /* unit k is visible to all; every warp is done with unit k - 1, whose stage the
         * copies of unit k + STAGES - 1 reuse */
        __syncthreads();
        if (k + GWM_STAGES - 1 < nunits) {
            gwm_stage<V>(p, gwm_smem + (k + GWM_STAGES - 1) % GWM_STAGES * GWM_STAGE_FLOATS, cur, grp, ci0, co0, kh0);
            gwm_advance(p, cur);
        }
        gwm_commit();

        const float4 *xf = (const float4 *)xa + wm * 2 * 2 * 4 * 32 + lane;
        const float *gs = st + GWM_X_FLOATS + (8 * wc + g) * GWM_GS + 8 * t;
#pragma unroll
        for (int u = 0; u < GWM_PX / 32; ++u) {
            /* a[m][j]: the A fragment of ci tile 2*wm + m, step u, k-step j (as[m][j]: its
             * small piece, 3xTF32) */
            float4 a[2][4], as[2][4];
#pragma unroll
            for (int m = 0; m < 2; ++m)
#pragma unroll
                for (int j = 0; j < 4; ++j) {
                    a[m][j] = xf[((m * 2 + u) * 4 + j) * 32];
                    if (SPLIT) as[m][j] = xf[GWM_X_FLOATS / 4 + ((m * 2 + u) * 4 + j) * 32];
                }
#pragma unroll
            for (int kh = 0; kh < GWM_KH; ++kh) {
                /* w[e]: grad_y of co row g, tap row kh, staged column 32*u + 8*t + e (ws: small) */
                uint32_t w[4 * NQ], ws[4 * NQ];
#pragma unroll
                for (int q = 0; q < NQ; ++q)
                    gwm_load4<SPLIT>(&w[4 * q], &ws[4 * q], gs + kh * GWM_CO * GWM_GS + 32 * u + 4 * q);
#pragma unroll
                for (int kw = 0; kw < GWM_KW; ++kw)
#pragma unroll
                    for (int j = 0; j < 4; ++j)
#pragma unroll
                        for (int m = 0; m < 2; ++m) {
                            float(&d)[4] = acc[m][kh * GWM_KW + kw];
                            const int e0 = 2 * j + kw * DW, e1 = e0 + 1;
                            const bool first = u == 0 && j == 0;
                            if (SPLIT) {
                                gwm_mma(d, as[m][j], w[e0], w[e1], first);
                                gwm_mma(d, a[m][j], ws[e0], ws[e1], false);
                            }
                            gwm_mma(d, a[m][j], w[e0], w[e1], first && !SPLIT);
                        }
            }
        }
#pragma unroll
        for (int m = 0; m < 2; ++m)
#pragma unroll
            for (int tap = 0; tap < GWM_KH * GWM_KW; ++tap)
#pragma unroll
                for (int r = 0; r < 4; ++r) outer[m][tap][r] += acc[m][tap][r];
    }
    gwm_wait<0>();

    /* The slice's partial sums: every element of partial[slice] is written by exactly one
     * thread of one CTA (the tiles partition the weight). */
    float *out = p.partial + (int64_t)blockIdx.y * p.weight_elems;
#pragma unroll
    for (int m = 0; m < 2; ++m)
#pragma unroll
        for (int r = 0; r < 4; ++r) {
            const int ci = ci0 + 32 * wm + 16 * m + g + 8 * (r / 2), co = co0 + 8 * wc + 2 * t + r % 2;
            if (ci >= p.cig || co >= p.cog) continue;
            const int64_t base = (((int64_t)grp * p.cig + ci) * p.cog + co) * p.kernel_h;
#pragma unroll
            for (int tap = 0; tap < GWM_KH * GWM_KW; ++tap) {
                const int kh = kh0 + tap / GWM_KW, kw = tap % GWM_KW;
                if (kh < p.kernel_h && kw < p.kernel_w) out[(base + kh) * p.kernel_w + kw] = outer[m][tap][r];
            }
        }
}

/* 3xTF32 needs more shared memory per CTA than sm_80 has (the plan declines there) and
 * spills when compiled for it: its body exists for sm_90 and newer only. */
template <int DW, int V, bool SPLIT>
__global__ void __launch_bounds__(GWM_THREADS, 1) grad_weight_mma_kernel(const gwm_params p)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 900
    if constexpr (SPLIT) return;
#endif
    grad_weight_mma_body<DW, V, SPLIT>(p);
}

/* grad_weight[i] = sum over slices s, in order, of partial[s][i], in double.
 * partial is (slices, weight_elems), grad_weight is (C_in, Cog, kH, kW). */
__global__ void grad_weight_mma_reduce(const float *partial, float *grad_weight, int slices, int64_t weight_elems)
{
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < weight_elems;
         i += (int64_t)gridDim.x * blockDim.x) {
        double s = 0.0;
        for (int k = 0; k < slices; ++k) s += (double)partial[k * weight_elems + i];
        grad_weight[i] = (float)s;
    }
}

/* ---- host side: one plan, used by can_implement, workspace_size and launch ---- */

/* 3xTF32 copies 2-float vectors one at a time: with V = 2 its kernel spilled (every
 * copy width is valid where a wider one is). */
template <int DW, bool SPLIT> static void (*gwm_kernel_dw(int v))(const gwm_params)
{
    if (v == 4) return grad_weight_mma_kernel<DW, 4, SPLIT>;
    if constexpr (!SPLIT)
        if (v == 2) return grad_weight_mma_kernel<DW, 2, SPLIT>;
    return grad_weight_mma_kernel<DW, 1, SPLIT>;
}

template <bool SPLIT> static void (*gwm_kernel(int dilation_w, int v))(const gwm_params)
{
    return dilation_w == 1 ? gwm_kernel_dw<1, SPLIT>(v) : gwm_kernel_dw<2, SPLIT>(v);
}

/* The widest cp.async (in floats) that keeps every vector of every row aligned and either
 * wholly inside or wholly outside its row: it divides both row lengths and padding_w
 * (units start at multiples of GWM_PX; staged grad_y column 0 is column -padding_w). */
static int gwm_width(const tconv_problem *p)
{
    for (int v = 4; v > 1; v /= 2)
        if (p->w_in % v == 0 && p->w_out % v == 0 && p->padding_w % v == 0) return v;
    return 1;
}

/* Fills *q (all but the pointers), or returns 0 when this variant cannot run the problem:
 * float32 only, TF32 in tf32 mode, 3xTF32 (SPLIT) in fp32 mode. */
template <bool SPLIT> static int gwm_make_plan(const tconv_problem *p, const tconv_config *config, gwm_params *q)
{
    if (config->dtype != TCONV_FLOAT32 || (config->precision == TCONV_PRECISION_TF32) == SPLIT) return 0;
    if (p->stride_h != 1 || p->stride_w != 1 || p->kernel_w > GWM_KW || p->dilation_w > 2) return 0;
    /* rows and columns are computed in int: ih - padding_h + kh*dilation_h, and a unit's
     * columns up to GWM_PX + 8 past the input (checked in double against overflow) */
    if ((double)p->h_in + (double)p->padding_h + (double)p->kernel_h * p->dilation_h > INT32_MAX ||
        (double)p->w_in + GWM_PX + 8 + (double)p->padding_w > INT32_MAX)
        return 0;
    const int64_t cig = p->c_in / p->groups, cog = p->c_out / p->groups;
    const int64_t ci_tiles = (cig + GWM_CI - 1) / GWM_CI, co_tiles = (cog + GWM_CO - 1) / GWM_CO;
    const int64_t kh_groups = (p->kernel_h + GWM_KH - 1) / GWM_KH;
    /* a CTA computes GWM_KH x GWM_KW taps per kh group whatever the kernel: kernels that
     * would use less than half of them (1x1, 1x3) go to the FMA variant, which was faster
     * there (pointwise layer, H200: 0.65 against 1.84 ms in fp32 mode by 3xTF32, 0.82
     * against 0.95 ms in tf32 mode) */
    if (2 * p->kernel_h * p->kernel_w < kh_groups * GWM_KH * GWM_KW) return 0;
    const int64_t tiles = p->groups * ci_tiles * co_tiles * kh_groups;
    if (tiles > INT32_MAX) return 0;

    int dev = 0, smem_max = 0, sms = 0, per_sm = 0;
    void (*kernel)(const gwm_params) = gwm_kernel<SPLIT>((int)p->dilation_w, gwm_width(p));
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&smem_max, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev) != cudaSuccess ||
        smem_max < GWM_SMEM_BYTES(SPLIT) ||
        cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess ||
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, GWM_SMEM_BYTES(SPLIT)) != cudaSuccess ||
        cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, GWM_THREADS, GWM_SMEM_BYTES(SPLIT)) != cudaSuccess ||
        per_sm < 1)
        return 0;

    const int64_t nseg = (p->w_in + GWM_PX - 1) / GWM_PX;
    const int64_t units = p->n * p->h_in * nseg;
    if (units > ((int64_t)1 << 40)) return 0; /* blockIdx.y * units stays in int64 */
    const int64_t weight_elems = p->c_in * cog * p->kernel_h * p->kernel_w;
    int64_t slices = ((int64_t)GWM_WAVES * sms * per_sm + tiles - 1) / tiles;
    const int64_t cap = GWM_MAX_WORKSPACE / (weight_elems * (int64_t)sizeof(float));
    if (slices > cap) slices = cap;
    if (slices > units) slices = units;
    if (slices > 65535) slices = 65535;
    if (slices < 1) slices = 1;
    if (units / slices + 1 > INT32_MAX) return 0; /* a CTA counts its units in int */

    q->x = q->grad_y = NULL;
    q->partial = NULL;
    q->c_in = (int)p->c_in; q->h_in = (int)p->h_in; q->w_in = (int)p->w_in;
    q->c_out = (int)p->c_out; q->h_out = (int)p->h_out; q->w_out = (int)p->w_out;
    q->kernel_h = (int)p->kernel_h; q->kernel_w = (int)p->kernel_w;
    q->padding_h = (int)p->padding_h; q->padding_w = (int)p->padding_w;
    q->dilation_h = (int)p->dilation_h;
    q->cig = (int)cig; q->cog = (int)cog;
    q->ci_tiles = (int)ci_tiles; q->co_tiles = (int)co_tiles; q->kh_groups = (int)kh_groups;
    q->nseg = (int)nseg;
    q->units = units;
    q->slices = (int)slices;
    /* unit starts are multiples of GWM_PX (a multiple of 4); staged grad_y column 0 is
     * column -padding_w of the unit */
    q->weight_elems = weight_elems;
    return 1;
}

template <bool SPLIT> static int gwm_can_implement(const tconv_problem *p, const tconv_config *config)
{
    gwm_params q;
    return gwm_make_plan<SPLIT>(p, config, &q);
}

/* The partial sums of every slice; nothing else. */
template <bool SPLIT> static size_t gwm_workspace_size(const tconv_problem *p, const tconv_config *config)
{
    gwm_params q;
    if (!gwm_make_plan<SPLIT>(p, config, &q)) return 0;
    return ((size_t)q.slices * (size_t)q.weight_elems * sizeof(float) + 255) / 256 * 256;
}

template <bool SPLIT> static cudaError_t gwm_launch(const tconv_args *a)
{
    gwm_params q;
    if (!gwm_make_plan<SPLIT>(a->p, a->config, &q)) return cudaErrorInvalidValue;
    q.x = (const float *)a->x;
    q.grad_y = (const float *)a->grad_y;
    q.partial = (float *)a->workspace;
    /* gwm_make_plan set the kernel's shared-memory limit */
    const dim3 grid((unsigned)((int64_t)a->p->groups * q.ci_tiles * q.co_tiles * q.kh_groups), (unsigned)q.slices);
    gwm_kernel<SPLIT>((int)a->p->dilation_w, gwm_width(a->p))<<<grid, GWM_THREADS, GWM_SMEM_BYTES(SPLIT), a->stream>>>(q);
    cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess) return err;
    const int64_t blocks = (q.weight_elems + 255) / 256;
    grad_weight_mma_reduce<<<(unsigned)(blocks < 65536 ? blocks : 65536), 256, 0, a->stream>>>(
        q.partial, (float *)a->grad_weight, q.slices, q.weight_elems);
    return cudaGetLastError();
}

const tconv_variant tconv_variant_grad_weight_mma_64x32 = {
    "grad_weight_mma_64x32", TCONV_PASS_GRAD_WEIGHT, gwm_can_implement<false>, gwm_workspace_size<false>,
    gwm_launch<false>,
};
const tconv_variant tconv_variant_grad_weight_mma_3xtf32_64x32 = {
    "grad_weight_mma_3xtf32_64x32", TCONV_PASS_GRAD_WEIGHT, gwm_can_implement<true>, gwm_workspace_size<true>,
    gwm_launch<true>,
};
