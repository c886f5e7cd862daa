/*
 * grad_weight_mma.cu - grad_weight on TF32 tensor cores (mma.sync m16n8k8), variants
 * "grad_weight_mma_64x32" (tf32 mode) and "grad_weight_mma_3xtf32_64x32" (fp32 mode,
 * 3xTF32): the unit-tiled split-K GEMM of grad_weight_units.cuh.  The tensor-core roles:
 * A (16 x 8) = x[ci][pixel], B (8 x 8) = grad_y[pixel + tap shift][co], one accumulator
 * tile per (ci, co, tap).
 *
 * Staging: x as the 64 ci rows x 64 pixels of the unit, raw (each thread's own 4 x 16
 * bytes); after its own copies land, each thread rounds its x to TF32 and stores it in
 * A-fragment order (gwm_arrange), into one of two buffers; then the unit's single
 * barrier.  Warp w computes ci 32*(w%2) .. +31 (two 16-row A tiles) x co 8*(w/2) .. +7
 * (one 8-column B tile) x all 9 taps: 18 accumulator tiles (72 registers).
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
 * at column offsets 8t.  With the row stride = 4 mod 8 floats (GWU_GS = 68) row g+1 sits 4
 * banks off row g: the 8 lanes cover 8 disjoint bank quads, one wavefront each.  The A
 * fragments and the raw x slots are 512 contiguous bytes per warp access.
 *
 * Precision: float32.  In tf32 mode both operands are rounded to nearest TF32 (half a TF32
 * ulp added to the bits, which the tensor core then truncates: tf32_operand_bits): x once
 * per unit when it is arranged, grad_y as the windows are loaded.  In fp32 mode (3xTF32,
 * grad_weight_mma_3xtf32_64x32) both are split into big and small TF32 pieces the same
 * way, and each product is three mma.  The tensor core chops each mma's sum at the
 * accumulator's ulp (a bias toward zero), so the accumulators only ever hold one unit
 * (64 pixels = 8 k-steps): the first mma of a unit starts from zero and at the unit's end
 * they are added into the outer float sums (round to nearest).
 */
#include "cuda/grad_weight_units.cuh"

#define GWM_THREADS 256 /* 8 warps: 2 (ci) x 4 (co) */
#define GWM_X_FLOATS (GWU_CI * GWU_PX) /* x of one unit, raw or in fragment order */
#define GWM_STAGE_FLOATS (GWM_X_FLOATS + GWU_GS_FLOATS(GWU_CO))
/* the stages, then two buffers of x in fragment order (each a big and a small piece for
 * 3xTF32): 160,256 bytes, 193,024 for 3xTF32 */
#define GWM_SMEM_BYTES(split) ((GWU_STAGES * GWM_STAGE_FLOATS + 2 * ((split) + 1) * GWM_X_FLOATS) * (int)sizeof(float))

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

/* Issues the copies of one unit into stage st, V floats per cp.async: x into this
 * thread's raw slots (zero where outside the tensor or the tile), then grad_y
 * (gwu_stage_gy). */
template <int V>
__device__ __forceinline__ void gwm_stage(const gwu_params &p, float *st, const gwu_cursor &c, const gwu_tile &t)
{
    const int iw0 = c.seg * GWU_PX;
    const gwm_xpart xp = gwm_xpart_of(threadIdx.x);
    const int64_t x_chan = (int64_t)p.h_in * p.w_in;
    const float *x_row = p.x + ((c.n * p.c_in + (int64_t)t.grp * p.cig + t.ci0 + xp.row) * p.h_in + c.ih) * (int64_t)p.w_in +
                         iw0 + xp.px;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        const bool row_ok = t.ci0 + xp.row + 8 * h < p.cig;
#pragma unroll
        for (int e = 0; e < 8; e += V) {
            const bool ok = row_ok && iw0 + xp.px + e < p.w_in;
            gwu_copy<V>(st + (2 * h + e / 4) * 1024 + 4 * threadIdx.x + e % 4, x_row + 8 * h * x_chan + e, ok);
        }
    }
    gwu_stage_gy<V, GWM_THREADS, GWU_CO>(p, st + GWM_X_FLOATS, c, t);
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

/* DW: dilation_w (1 or 2), compile-time so that the window indices are registers;
 * V: the cp.async width in floats; SPLIT: 3xTF32 (fp32 mode), three mma per product
 * (small x * big grad_y, big x * small grad_y, big * big) into the same accumulators. */
template <int DW, int V, bool SPLIT> __device__ __forceinline__ void grad_weight_mma_body(const gwu_params &p)
{
    constexpr int NQ = 3; /* LDS.128 per window of 8 + 2*DW <= 12 floats */
    extern __shared__ __align__(16) float gwm_smem[];
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
    const int wm = warp % 2, wc = warp / 2;
    const gwu_tile tile = gwu_tile_of<GWU_CO>(p);
    gwu_cursor cur;
    const int nunits = gwu_slice(p, cur);

    /* outer[m][tap][r]: ci 32*wm + 16*m + g + 8*(r/2), co 8*wc + 2*t + r%2 (the C layout) */
    float outer[2][GWU_KH * GWU_KW][4], acc[2][GWU_KH * GWU_KW][4];
#pragma unroll
    for (int m = 0; m < 2; ++m)
#pragma unroll
        for (int tap = 0; tap < GWU_KH * GWU_KW; ++tap)
#pragma unroll
            for (int r = 0; r < 4; ++r) outer[m][tap][r] = 0.f;

    /* every step commits one (maybe empty) group, so that wait<STAGES - 2> means "unit k landed" */
    for (int k = 0; k < GWU_STAGES - 1; ++k) {
        if (k < nunits) {
            gwm_stage<V>(p, gwm_smem + k * GWM_STAGE_FLOATS, cur, tile);
            gwu_advance(p, cur);
        }
        gwu_commit();
    }
    float *xa_buf = gwm_smem + GWU_STAGES * GWM_STAGE_FLOATS;
    for (int k = 0; k < nunits; ++k) {
        gwu_wait<GWU_STAGES - 2>();
        const float *st = gwm_smem + k % GWU_STAGES * GWM_STAGE_FLOATS;
        /* x buffer k % 2 was last read for unit k - 2, before the previous barrier */
        float *xa = xa_buf + k % 2 * (SPLIT + 1) * GWM_X_FLOATS;
        gwm_arrange<SPLIT>(st, xa);
        /* unit k is visible to all; every warp is done with unit k - 1, whose stage the
         * copies of unit k + STAGES - 1 reuse */
        __syncthreads();
        if (k + GWU_STAGES - 1 < nunits) {
            gwm_stage<V>(p, gwm_smem + (k + GWU_STAGES - 1) % GWU_STAGES * GWM_STAGE_FLOATS, cur, tile);
            gwu_advance(p, cur);
        }
        gwu_commit();

        const float4 *xf = (const float4 *)xa + wm * 2 * 2 * 4 * 32 + lane;
        const float *gs = st + GWM_X_FLOATS + (8 * wc + g) * GWU_GS + 8 * t;
#pragma unroll
        for (int u = 0; u < GWU_PX / 32; ++u) {
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
            for (int kh = 0; kh < GWU_KH; ++kh) {
                /* w[e]: grad_y of co row g, tap row kh, staged column 32*u + 8*t + e (ws: small) */
                uint32_t w[4 * NQ], ws[4 * NQ];
#pragma unroll
                for (int q = 0; q < NQ; ++q)
                    gwm_load4<SPLIT>(&w[4 * q], &ws[4 * q], gs + kh * GWU_CO * GWU_GS + 32 * u + 4 * q);
#pragma unroll
                for (int kw = 0; kw < GWU_KW; ++kw)
#pragma unroll
                    for (int j = 0; j < 4; ++j)
#pragma unroll
                        for (int m = 0; m < 2; ++m) {
                            float(&d)[4] = acc[m][kh * GWU_KW + kw];
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
            for (int tap = 0; tap < GWU_KH * GWU_KW; ++tap)
#pragma unroll
                for (int r = 0; r < 4; ++r) outer[m][tap][r] += acc[m][tap][r];
    }
    gwu_wait<0>();

#pragma unroll
    for (int m = 0; m < 2; ++m)
#pragma unroll
        for (int r = 0; r < 4; ++r)
            gwu_store(p, tile, 32 * wm + 16 * m + g + 8 * (r / 2), 8 * wc + 2 * t + r % 2,
                      [&](int tap) { return outer[m][tap][r]; });
}

/* 3xTF32 needs more shared memory per CTA than sm_80 has (the plan declines there) and
 * spills when compiled for it: its body exists for sm_90 and newer only. */
template <int DW, int V, bool SPLIT>
__global__ void __launch_bounds__(GWM_THREADS, 1) grad_weight_mma_kernel(const gwu_params p)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 900
    if constexpr (SPLIT) return;
#endif
    grad_weight_mma_body<DW, V, SPLIT>(p);
}

/* ---- host side ---- */

/* 3xTF32 sits at 246-255 registers: its kernels copy at most 8 bytes at a time, and with
 * dilation_w 2 4 bytes, where wider copies spilled (every copy width is valid where a
 * wider one is). */
template <int DW, bool SPLIT> static gwu_kernel gwm_kernel_dw(int v)
{
    if constexpr (SPLIT && DW == 2)
        return grad_weight_mma_kernel<DW, 1, SPLIT>;
    else if constexpr (SPLIT)
        return v >= 2 ? grad_weight_mma_kernel<DW, 2, SPLIT> : grad_weight_mma_kernel<DW, 1, SPLIT>;
    else
        return v == 4 ? grad_weight_mma_kernel<DW, 4, SPLIT>
                      : v == 2 ? grad_weight_mma_kernel<DW, 2, SPLIT> : grad_weight_mma_kernel<DW, 1, SPLIT>;
}

/* The kernel for p with tensors x and grad_y (NULL: only the shape is known yet); one copy
 * width for both. */
template <bool SPLIT> static gwu_kernel gwm_kernel(const tconv_problem *p, const void *x, const void *grad_y)
{
    const int vx = gwu_width_x(p, x), vg = gwu_width_gy(p, grad_y), v = vx < vg ? vx : vg;
    return p->dilation_w == 1 ? gwm_kernel_dw<1, SPLIT>(v) : gwm_kernel_dw<2, SPLIT>(v);
}

/* Fills *q, or returns 0 when this variant cannot run the problem: float32 only, TF32 in
 * tf32 mode, 3xTF32 (SPLIT) in fp32 mode. */
template <bool SPLIT> static int gwm_make_plan(const tconv_problem *p, const tconv_config *config, gwu_params *q)
{
    if (config->dtype != TCONV_FLOAT32 || (config->precision == TCONV_PRECISION_TF32) == SPLIT) return 0;
    return gwu_make_plan(p, gwm_kernel<SPLIT>(p, NULL, NULL), GWM_THREADS, GWM_SMEM_BYTES(SPLIT), GWU_CO, q);
}

template <bool SPLIT> static int gwm_can_implement(const tconv_problem *p, const tconv_config *config)
{
    gwu_params q;
    return gwm_make_plan<SPLIT>(p, config, &q);
}

template <bool SPLIT> static size_t gwm_workspace_size(const tconv_problem *p, const tconv_config *config)
{
    gwu_params q;
    return gwm_make_plan<SPLIT>(p, config, &q) ? gwu_workspace_bytes(&q) : 0;
}

template <bool SPLIT> static cudaError_t gwm_launch(const tconv_args *a)
{
    gwu_params q;
    if (!gwm_make_plan<SPLIT>(a->p, a->config, &q)) return cudaErrorInvalidValue;
    return gwu_launch(a, &q, gwm_kernel<SPLIT>(a->p, a->x, a->grad_y), GWM_THREADS, GWM_SMEM_BYTES(SPLIT));
}

const tconv_variant tconv_variant_grad_weight_mma_64x32 = {
    "grad_weight_mma_64x32", TCONV_PASS_GRAD_WEIGHT, gwm_can_implement<false>, gwm_workspace_size<false>,
    gwm_launch<false>,
};
const tconv_variant tconv_variant_grad_weight_mma_3xtf32_64x32 = {
    "grad_weight_mma_3xtf32_64x32", TCONV_PASS_GRAD_WEIGHT, gwm_can_implement<true>, gwm_workspace_size<true>,
    gwm_launch<true>,
};
