/*
 * grad_weight_fma.cu - grad_weight on CUDA cores (FP32 FMA), variant "grad_weight_fma_64x16":
 * the unit-tiled split-K GEMM of units.cuh with a tile of 64 ci x 16 co x 9 taps, float32 in
 * fp32 mode.  x is staged as 64 plain rows of a unit's 64 pixels (row stride GW_FMA_XS = 68
 * floats, 4 mod 32: conflict-free), grad_y by units_stage_gy.  Each lane owns 4 ci x 1 co x
 * 3 x 3 taps (36 sums, 128 registers, two CTAs per SM): per step of 4 pixels 7 LDS.128 feed
 * 144 FFMA, the grad_y window of a tap row carried from one step to the next.  The register
 * sums flush into shared-memory sums every GW_FMA_FLUSH units; two stages.  docs/algorithm.md
 * ("grad-weight") has the details.
 */
#include "cuda/grad_weight/units.cuh"

#define GW_FMA_THREADS 256 /* 8 warps: 2 (ci) x 4 (co) */
#define GW_FMA_CO 16       /* output channels per CTA */
#define GW_FMA_XS 68       /* x row stride, = 4 mod 32 */
#define GW_FMA_X_FLOATS (UNITS_CI * GW_FMA_XS)
#define GW_FMA_STAGE_FLOATS (GW_FMA_X_FLOATS + UNITS_GY_FLOATS(GW_FMA_CO))
#define GW_FMA_STAGES 2
#define GW_FMA_SUMS (4 * UNITS_KH * UNITS_KW) /* sums per thread */
#define GW_FMA_SMEM_BYTES ((GW_FMA_STAGES * GW_FMA_STAGE_FLOATS + GW_FMA_SUMS * GW_FMA_THREADS) * (int)sizeof(float))
#define GW_FMA_FLUSH 16 /* units per inner sum */

/* This thread's share of a unit's x copies, the same for every unit (computed once per
 * CTA): rows row + (GW_FMA_THREADS / R)*k (k < UNITS_CI * R / GW_FMA_THREADS) at column col, where
 * R = UNITS_PX / V copies make a row, row = threadIdx.x / R, col = threadIdx.x % R * V. */
struct gw_fma_x_lane {
    int64_t src, step; /* row * H_in*W_in + col; the source distance of consecutive k */
    int dst;           /* row * GW_FMA_XS + col */
    int col;
    unsigned row_ok;   /* bit k: ci0 + row + (GW_FMA_THREADS / R)*k < Cig */
};
template <int V> __device__ __forceinline__ gw_fma_x_lane gw_fma_x_lane_of(const units_params &p, const units_tile &t)
{
    constexpr int R = UNITS_PX / V;
    const int row = threadIdx.x / R;
    const int64_t x_chan = (int64_t)p.h_in * p.w_in;
    gw_fma_x_lane l;
    l.col = threadIdx.x % R * V;
    l.src = row * x_chan + l.col;
    l.step = GW_FMA_THREADS / R * x_chan;
    l.dst = row * GW_FMA_XS + l.col;
    l.row_ok = 0;
    for (int k = 0; k < UNITS_CI * R / GW_FMA_THREADS; ++k)
        if (t.ci0 + row + GW_FMA_THREADS / R * k < p.cig) l.row_ok |= 1u << k;
    return l;
}

/* Issues the copies of one unit into stage st: the 64 x rows of UNITS_PX / X_WIDTH copies of X_WIDTH
 * floats each (zero where outside the tensor or the tile), then grad_y by GY_WIDTH floats
 * (units_stage_gy). */
template <int X_WIDTH, int GY_WIDTH> __device__ __forceinline__ void
gw_fma_stage(const units_params &p, float *st, const units_cursor &c, const units_tile &t, const gw_fma_x_lane &xl)
{
    constexpr int R = UNITS_PX / X_WIDTH;
    const int iw0 = c.seg * UNITS_PX;
    const float *x0 =
        p.x + ((c.n * p.c_in + (int64_t)t.grp * p.cig + t.ci0) * p.h_in + c.ih) * (int64_t)p.w_in + iw0 + xl.src;
    const bool col_ok = iw0 + xl.col < p.w_in;
#pragma unroll
    for (int k = 0; k < UNITS_CI * R / GW_FMA_THREADS; ++k) {
        const bool ok = col_ok && (xl.row_ok >> k & 1u);
        cp_async_zfill<4 * X_WIDTH>(st + xl.dst + GW_FMA_THREADS / R * GW_FMA_XS * k, x0 + k * xl.step, ok);
    }
    units_stage_gy<GY_WIDTH, GW_FMA_THREADS, GW_FMA_CO>(p, st + GW_FMA_X_FLOATS, c, t, threadIdx.x);
}

__device__ __forceinline__ void gw_fma_load4(float *r, const float *s)
{
    const float4 q = *(const float4 *)s;
    r[0] = q.x; r[1] = q.y; r[2] = q.z; r[3] = q.w;
}

/* DW: dilation_w (1 or 2); X_WIDTH, GY_WIDTH: the cp.async widths in floats of x and grad_y. */
template <int DW, int X_WIDTH, int GY_WIDTH>
__global__ void __launch_bounds__(GW_FMA_THREADS, 2) grad_weight_fma_kernel(const units_params p)
{
    extern __shared__ __align__(16) float gw_fma_smem[];
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int wm = warp % 2, wc = warp / 2, li = lane % 8, lc = lane / 8;
    const units_tile tile = units_tile_of<GW_FMA_CO>(p);
    const gw_fma_x_lane xl = gw_fma_x_lane_of<X_WIDTH>(p, tile);
    units_cursor cur;
    const int nunits = units_slice<0>(p, cur);

    /* acc[i][kh][kw]: ci 32*wm + li + 8*i, co 4*wc + lc, tap (kh, kw); its outer sum is
     * outer[sum index * GW_FMA_THREADS]; each(f) calls f(acc, outer) for every sum */
    float acc[4][UNITS_KH][UNITS_KW];
    float *outer = gw_fma_smem + GW_FMA_STAGES * GW_FMA_STAGE_FLOATS + threadIdx.x;
    auto each = [&](auto f) {
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
            for (int kh = 0; kh < UNITS_KH; ++kh)
#pragma unroll
                for (int kw = 0; kw < UNITS_KW; ++kw)
                    f(acc[i][kh][kw], outer[((i * UNITS_KH + kh) * UNITS_KW + kw) * GW_FMA_THREADS]);
    };
    each([](float &a, float &o) { a = o = 0.f; });

    if (nunits > 0) {
        gw_fma_stage<X_WIDTH, GY_WIDTH>(p, gw_fma_smem, cur, tile, xl);
        units_advance<0>(p, cur);
    }
    cp_async_commit();
    for (int k = 0; k < nunits; ++k) {
        cp_async_wait<0>();
        /* unit k is visible to all; every warp is done with unit k - 1, whose stage the
         * copies of unit k + 1 reuse */
        __syncthreads();
        if (k + 1 < nunits) {
            gw_fma_stage<X_WIDTH, GY_WIDTH>(p, gw_fma_smem + (k + 1) % GW_FMA_STAGES * GW_FMA_STAGE_FLOATS, cur, tile,
                                            xl);
            units_advance<0>(p, cur);
        }
        cp_async_commit();

        const float *st = gw_fma_smem + k % GW_FMA_STAGES * GW_FMA_STAGE_FLOATS;
        const float *xs = st + (32 * wm + li) * GW_FMA_XS;
        const float *gs = st + GW_FMA_X_FLOATS + (4 * wc + lc) * UNITS_GY_PITCH;
        /* g[kh][e]: staged column 4b + e of grad_y row (kh, co 4*wc + lc); x[s][i][e]:
         * pixel 4b + e of the lane's x row i, two steps' worth: step b + 1's loads are
         * issued before step b's products */
        float g[UNITS_KH][8], x[2][4][4];
#pragma unroll
        for (int kh = 0; kh < UNITS_KH; ++kh) gw_fma_load4(&g[kh][0], gs + kh * GW_FMA_CO * UNITS_GY_PITCH);
#pragma unroll
        for (int i = 0; i < 4; ++i) gw_fma_load4(x[0][i], xs + 8 * i * GW_FMA_XS);
#pragma unroll 2
        for (int b = 0; b < UNITS_PX / 4; ++b) {
            const int s = b % 2;
            if (b + 1 < UNITS_PX / 4) {
#pragma unroll
                for (int i = 0; i < 4; ++i) gw_fma_load4(x[s ^ 1][i], xs + 8 * i * GW_FMA_XS + 4 * b + 4);
            }
#pragma unroll
            for (int kh = 0; kh < UNITS_KH; ++kh)
                gw_fma_load4(&g[kh][4], gs + kh * GW_FMA_CO * UNITS_GY_PITCH + 4 * b + 4);
#pragma unroll
            for (int jj = 0; jj < 4; ++jj)
#pragma unroll
                for (int kh = 0; kh < UNITS_KH; ++kh)
#pragma unroll
                    for (int kw = 0; kw < UNITS_KW; ++kw)
#pragma unroll
                        for (int i = 0; i < 4; ++i)
                            acc[i][kh][kw] = fmaf(x[s][i][jj], g[kh][jj + kw * DW], acc[i][kh][kw]);
#pragma unroll
            for (int kh = 0; kh < UNITS_KH; ++kh)
#pragma unroll
                for (int e = 0; e < 4; ++e) g[kh][e] = g[kh][e + 4];
        }
        if (k % GW_FMA_FLUSH == GW_FMA_FLUSH - 1 || k == nunits - 1) each([](float &a, float &o) {
            o += a;
            a = 0.f;
        });
    }

#pragma unroll
    for (int i = 0; i < 4; ++i)
        units_store(p, tile, 32 * wm + li + 8 * i, 4 * wc + lc,
                  [&](int tap) { return outer[(i * UNITS_KH * UNITS_KW + tap) * GW_FMA_THREADS]; });
}

/* ---- host side ---- */

/* x by 4 floats where it can, else both tensors by the narrower width. */
template <int DW> static units_kernel gw_fma_kernel_dw(int vx, int vg)
{
    if (vx == 4)
        return vg == 4   ? grad_weight_fma_kernel<DW, 4, 4>
               : vg == 2 ? grad_weight_fma_kernel<DW, 4, 2>
                         : grad_weight_fma_kernel<DW, 4, 1>;
    return vx == 2 && vg >= 2 ? grad_weight_fma_kernel<DW, 2, 2> : grad_weight_fma_kernel<DW, 1, 1>;
}

/* The kernel for p with tensors x and grad_y (NULL: only the shape is known yet). */
static units_kernel gw_fma_kernel(const tconv_problem *p, const void *x, const void *grad_y)
{
    const int vx = units_width_x(p, x), vg = units_width_gy(p, grad_y);
    return p->dilation_w == 1 ? gw_fma_kernel_dw<1>(vx, vg) : gw_fma_kernel_dw<2>(vx, vg);
}

/* float32 in fp32 mode. */
static int gw_fma_can_implement(const tconv_problem *p, const tconv_config *config, const tconv_device_caps *d)
{
    if (config->dtype != TCONV_FLOAT32 || config->precision != TCONV_PRECISION_FP32) return 0;
    return units_can_implement(p, GW_FMA_SMEM_BYTES, d);
}

/* The plan readies the kernel of every pair of copy widths of the problem's dilation_w; a
 * launch picks the one of its tensors' widths. */
static int gw_fma_plan(const tconv_problem *p, const tconv_config *, const tconv_device_caps *d, void *state,
                    size_t *workspace_bytes)
{
    units_params *q = (units_params *)state;
    const int dw1 = p->dilation_w == 1;
    const units_kernel kernels[6] = {gw_fma_kernel(p, NULL, NULL),
                                   dw1 ? gw_fma_kernel_dw<1>(4, 4) : gw_fma_kernel_dw<2>(4, 4),
                                   dw1 ? gw_fma_kernel_dw<1>(4, 2) : gw_fma_kernel_dw<2>(4, 2),
                                   dw1 ? gw_fma_kernel_dw<1>(4, 1) : gw_fma_kernel_dw<2>(4, 1),
                                   dw1 ? gw_fma_kernel_dw<1>(2, 2) : gw_fma_kernel_dw<2>(2, 2),
                                   dw1 ? gw_fma_kernel_dw<1>(1, 1) : gw_fma_kernel_dw<2>(1, 1)};
    if (!units_plan(p, d, kernels, 6, GW_FMA_THREADS, GW_FMA_SMEM_BYTES, GW_FMA_CO, q)) return 0;
    *workspace_bytes = units_workspace_bytes(q);
    return 1;
}

static cudaError_t gw_fma_launch(const tconv_args *a, const void *state)
{
    return units_launch(a, (const units_params *)state, gw_fma_kernel(a->p, a->x, a->grad_y), GW_FMA_THREADS,
                        GW_FMA_SMEM_BYTES);
}

const tconv_variant tconv_variant_grad_weight_fma_64x16 = {
    "grad_weight_fma_64x16", TCONV_PASS_GRAD_WEIGHT, gw_fma_can_implement, gw_fma_plan, gw_fma_launch,
};
