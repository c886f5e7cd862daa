/*
 * grad_weight_fma.cu - grad_weight on CUDA cores (FP32 FMA), variant "grad_weight_fma_64x16":
 * the unit-tiled split-K GEMM of units.cuh with a tile of 64 ci x 16 co x 9 taps,
 * float32 in fp32 mode.
 *
 * Staging: x as 64 plain rows (ci) of the unit's 64 pixels, row stride GWF_XS = 68 floats,
 * VX floats per cp.async (whole warps on consecutive rows); grad_y by VG floats
 * (gwu_stage_gy).  x takes 16-byte copies wherever W_in and the pointer allow it, also when
 * grad_y cannot (the seed: W_out = 1026).
 *
 * Register tile: 8 warps; warp w computes ci 32*(w%2) .. +31 x co 4*(w/2) .. +3 x all 9
 * taps; lane (li = lane%8, lc = lane/8) owns ci 32*(w%2) + li + 8i (i < 4) x co
 * 4*(w/2) + lc x 3 tap rows x 3 tap columns: 36 sums, so that 128 registers suffice and
 * two CTAs (16 warps) share an SM.  Per step of 4 pixels 4b .. 4b+3 a lane loads its 4 x
 * rows' 4 pixels (4 LDS.128, issued a step ahead) and, for each of its 3 grad_y rows (one
 * per kh), the staged columns 4b+4 .. 4b+7 (3 LDS.128), keeping 4b .. 4b+3 from the step
 * before: pixel 4b + jj's tap kw is column 4b + jj + kw*DW of the row, inside those 8
 * (DW <= 2).  7 LDS.128 feed 144 FFMA.
 *
 * Banks: an x LDS.128 reads 8 rows (li) at stride 68 = 4 mod 32 floats: 8 disjoint bank
 * quads, one wavefront (lanes of equal li share an address); a grad_y LDS.128 reads 4 rows
 * (lc), also disjoint.
 *
 * Accuracy: the 36 register sums hold at most sixteen units (1,024 products each) and are then
 * added into 36 outer float sums in shared memory (sum e of thread T at e*256 + T: no bank
 * conflicts); the slices are added in double (units.cuh).
 *
 * Pipeline: two stages (one unit in flight while one is computed: a unit is 2,304 FFMA per
 * thread, far longer than a copy's latency); stages and sums take 97,792 bytes, so two
 * CTAs fit an SM of sm_90 (one of sm_80): while one waits at its barrier, the other
 * computes.  docs/perf-notes.md has the variants measured on the way (72 sums per thread,
 * 16-warp CTAs: 15.3 and 14.5 ms on the seed against 14.4 ms for this one).
 */
#include "cuda/grad_weight/units.cuh"

#define GWF_THREADS 256 /* 8 warps: 2 (ci) x 4 (co) */
#define GWF_CO 16       /* output channels per CTA */
#define GWF_XS 68       /* x row stride, = 4 mod 32 */
#define GWF_X_FLOATS (GWU_CI * GWF_XS)
#define GWF_STAGE_FLOATS (GWF_X_FLOATS + GWU_GS_FLOATS(GWF_CO))
#define GWF_STAGES 2
#define GWF_SUMS (4 * GWU_KH * GWU_KW) /* sums per thread */
#define GWF_SMEM_BYTES ((GWF_STAGES * GWF_STAGE_FLOATS + GWF_SUMS * GWF_THREADS) * (int)sizeof(float))
#define GWF_FLUSH 16 /* units per inner sum */

/* This thread's share of a unit's x copies, the same for every unit (computed once per
 * CTA): rows row + (GWF_THREADS / R)*k (k < GWU_CI * R / GWF_THREADS) at column col, where
 * R = GWU_PX / V copies make a row, row = threadIdx.x / R, col = threadIdx.x % R * V. */
struct gwf_x_lane {
    int64_t src, step; /* row * H_in*W_in + col; the source distance of consecutive k */
    int dst;           /* row * GWF_XS + col */
    int col;
    unsigned row_ok;   /* bit k: ci0 + row + (GWF_THREADS / R)*k < Cig */
};
template <int V> __device__ __forceinline__ gwf_x_lane gwf_x_lane_of(const gwu_params &p, const gwu_tile &t)
{
    constexpr int R = GWU_PX / V;
    const int row = threadIdx.x / R;
    const int64_t x_chan = (int64_t)p.h_in * p.w_in;
    gwf_x_lane l;
    l.col = threadIdx.x % R * V;
    l.src = row * x_chan + l.col;
    l.step = GWF_THREADS / R * x_chan;
    l.dst = row * GWF_XS + l.col;
    l.row_ok = 0;
    for (int k = 0; k < GWU_CI * R / GWF_THREADS; ++k)
        if (t.ci0 + row + GWF_THREADS / R * k < p.cig) l.row_ok |= 1u << k;
    return l;
}

/* Issues the copies of one unit into stage st: the 64 x rows of GWU_PX / VX copies of VX
 * floats each (zero where outside the tensor or the tile), then grad_y by VG floats
 * (gwu_stage_gy). */
template <int VX, int VG>
__device__ __forceinline__ void gwf_stage(const gwu_params &p, float *st, const gwu_cursor &c, const gwu_tile &t,
                                          const gwf_x_lane &xl)
{
    constexpr int R = GWU_PX / VX;
    const int iw0 = c.seg * GWU_PX;
    const float *x0 = p.x + ((c.n * p.c_in + (int64_t)t.grp * p.cig + t.ci0) * p.h_in + c.ih) * (int64_t)p.w_in + iw0 + xl.src;
    const bool col_ok = iw0 + xl.col < p.w_in;
#pragma unroll
    for (int k = 0; k < GWU_CI * R / GWF_THREADS; ++k) {
        const bool ok = col_ok && (xl.row_ok >> k & 1u);
        cp_async_zfill<4 * VX>(st + xl.dst + GWF_THREADS / R * GWF_XS * k, x0 + k * xl.step, ok);
    }
    gwu_stage_gy<VG, GWF_THREADS, GWF_CO>(p, st + GWF_X_FLOATS, c, t, threadIdx.x);
}

__device__ __forceinline__ void gwf_load4(float *r, const float *s)
{
    const float4 q = *(const float4 *)s;
    r[0] = q.x; r[1] = q.y; r[2] = q.z; r[3] = q.w;
}

/* DW: dilation_w (1 or 2); VX, VG: the cp.async widths in floats of x and grad_y. */
template <int DW, int VX, int VG>
__global__ void __launch_bounds__(GWF_THREADS, 2) grad_weight_fma_kernel(const gwu_params p)
{
    extern __shared__ __align__(16) float gwf_smem[];
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int wm = warp % 2, wc = warp / 2, li = lane % 8, lc = lane / 8;
    const gwu_tile tile = gwu_tile_of<GWF_CO>(p);
    const gwf_x_lane xl = gwf_x_lane_of<VX>(p, tile);
    gwu_cursor cur;
    const int nunits = gwu_slice<0>(p, cur);

    /* acc[i][kh][kw]: ci 32*wm + li + 8*i, co 4*wc + lc, tap (kh, kw); its outer sum is
     * outer[sum index * GWF_THREADS]; each(f) calls f(acc, outer) for every sum */
    float acc[4][GWU_KH][GWU_KW];
    float *outer = gwf_smem + GWF_STAGES * GWF_STAGE_FLOATS + threadIdx.x;
    auto each = [&](auto f) {
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
            for (int kh = 0; kh < GWU_KH; ++kh)
#pragma unroll
                for (int kw = 0; kw < GWU_KW; ++kw) f(acc[i][kh][kw], outer[((i * GWU_KH + kh) * GWU_KW + kw) * GWF_THREADS]);
    };
    each([](float &a, float &o) { a = o = 0.f; });

    if (nunits > 0) {
        gwf_stage<VX, VG>(p, gwf_smem, cur, tile, xl);
        gwu_advance<0>(p, cur);
    }
    cp_async_commit();
    for (int k = 0; k < nunits; ++k) {
        cp_async_wait<0>();
        /* unit k is visible to all; every warp is done with unit k - 1, whose stage the
         * copies of unit k + 1 reuse */
        __syncthreads();
        if (k + 1 < nunits) {
            gwf_stage<VX, VG>(p, gwf_smem + (k + 1) % GWF_STAGES * GWF_STAGE_FLOATS, cur, tile, xl);
            gwu_advance<0>(p, cur);
        }
        cp_async_commit();

        const float *st = gwf_smem + k % GWF_STAGES * GWF_STAGE_FLOATS;
        const float *xs = st + (32 * wm + li) * GWF_XS;
        const float *gs = st + GWF_X_FLOATS + (4 * wc + lc) * GWU_GS;
        /* g[kh][e]: staged column 4b + e of grad_y row (kh, co 4*wc + lc); x[s][i][e]:
         * pixel 4b + e of the lane's x row i, two steps' worth: step b + 1's loads are
         * issued before step b's products */
        float g[GWU_KH][8], x[2][4][4];
#pragma unroll
        for (int kh = 0; kh < GWU_KH; ++kh) gwf_load4(&g[kh][0], gs + kh * GWF_CO * GWU_GS);
#pragma unroll
        for (int i = 0; i < 4; ++i) gwf_load4(x[0][i], xs + 8 * i * GWF_XS);
#pragma unroll 2
        for (int b = 0; b < GWU_PX / 4; ++b) {
            const int s = b % 2;
            if (b + 1 < GWU_PX / 4) {
#pragma unroll
                for (int i = 0; i < 4; ++i) gwf_load4(x[s ^ 1][i], xs + 8 * i * GWF_XS + 4 * b + 4);
            }
#pragma unroll
            for (int kh = 0; kh < GWU_KH; ++kh) gwf_load4(&g[kh][4], gs + kh * GWF_CO * GWU_GS + 4 * b + 4);
#pragma unroll
            for (int jj = 0; jj < 4; ++jj)
#pragma unroll
                for (int kh = 0; kh < GWU_KH; ++kh)
#pragma unroll
                    for (int kw = 0; kw < GWU_KW; ++kw)
#pragma unroll
                        for (int i = 0; i < 4; ++i)
                            acc[i][kh][kw] = fmaf(x[s][i][jj], g[kh][jj + kw * DW], acc[i][kh][kw]);
#pragma unroll
            for (int kh = 0; kh < GWU_KH; ++kh)
#pragma unroll
                for (int e = 0; e < 4; ++e) g[kh][e] = g[kh][e + 4];
        }
        if (k % GWF_FLUSH == GWF_FLUSH - 1 || k == nunits - 1) each([](float &a, float &o) {
            o += a;
            a = 0.f;
        });
    }

#pragma unroll
    for (int i = 0; i < 4; ++i)
        gwu_store(p, tile, 32 * wm + li + 8 * i, 4 * wc + lc,
                  [&](int tap) { return outer[(i * GWU_KH * GWU_KW + tap) * GWF_THREADS]; });
}

/* ---- host side ---- */

/* x by 4 floats where it can, else both tensors by the narrower width. */
template <int DW> static gwu_kernel gwf_kernel_dw(int vx, int vg)
{
    if (vx == 4) return vg == 4 ? grad_weight_fma_kernel<DW, 4, 4> : vg == 2 ? grad_weight_fma_kernel<DW, 4, 2> : grad_weight_fma_kernel<DW, 4, 1>;
    return vx == 2 && vg >= 2 ? grad_weight_fma_kernel<DW, 2, 2> : grad_weight_fma_kernel<DW, 1, 1>;
}

/* The kernel for p with tensors x and grad_y (NULL: only the shape is known yet). */
static gwu_kernel gwf_kernel(const tconv_problem *p, const void *x, const void *grad_y)
{
    const int vx = gwu_width_x(p, x), vg = gwu_width_gy(p, grad_y);
    return p->dilation_w == 1 ? gwf_kernel_dw<1>(vx, vg) : gwf_kernel_dw<2>(vx, vg);
}

/* float32 in fp32 mode. */
static int gwf_can_implement(const tconv_problem *p, const tconv_config *config, const tconv_device_caps *d)
{
    if (config->dtype != TCONV_FLOAT32 || config->precision != TCONV_PRECISION_FP32) return 0;
    return gwu_can_implement(p, GWF_SMEM_BYTES, d);
}

/* The plan readies the kernel of every pair of copy widths of the problem's dilation_w; a
 * launch picks the one of its tensors' widths. */
static int gwf_plan(const tconv_problem *p, const tconv_config *, const tconv_device_caps *d, void *state,
                    size_t *workspace_bytes)
{
    gwu_params *q = (gwu_params *)state;
    const int dw1 = p->dilation_w == 1;
    const gwu_kernel kernels[6] = {gwf_kernel(p, NULL, NULL),
                                   dw1 ? gwf_kernel_dw<1>(4, 4) : gwf_kernel_dw<2>(4, 4),
                                   dw1 ? gwf_kernel_dw<1>(4, 2) : gwf_kernel_dw<2>(4, 2),
                                   dw1 ? gwf_kernel_dw<1>(4, 1) : gwf_kernel_dw<2>(4, 1),
                                   dw1 ? gwf_kernel_dw<1>(2, 2) : gwf_kernel_dw<2>(2, 2),
                                   dw1 ? gwf_kernel_dw<1>(1, 1) : gwf_kernel_dw<2>(1, 1)};
    if (!gwu_plan(p, d, kernels, 6, GWF_THREADS, GWF_SMEM_BYTES, GWF_CO, q)) return 0;
    *workspace_bytes = gwu_workspace_bytes(q);
    return 1;
}

static cudaError_t gwf_launch(const tconv_args *a, const void *state)
{
    return gwu_launch(a, (const gwu_params *)state, gwf_kernel(a->p, a->x, a->grad_y), GWF_THREADS, GWF_SMEM_BYTES);
}

const tconv_variant tconv_variant_grad_weight_fma_64x16 = {
    "grad_weight_fma_64x16", TCONV_PASS_GRAD_WEIGHT, gwf_can_implement, gwf_plan, gwf_launch,
};
