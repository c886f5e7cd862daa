/*
 * grad_weight_direct.cu - grad_weight as a deterministic split-K direct convolution on CUDA
 * cores, variant "grad_weight_direct_32x32": any stride, dilation and padding, float32 (both
 * modes), float16 and bfloat16.  The GEMM (M, N, K) = (Cig, Cog*kH*kW, batch*H_in*W_in) is
 * split along K into fixed slices of input rows (blockIdx.y); a CTA owns one slice and one
 * tile (16*wci input channels x 32 output channels x all kH tap rows x KWT tap columns) and
 * stages x and grad_y (with the halo) chunk by chunk in shared memory, so that every tap is
 * a shared-memory offset.  Where stride_w == dilation_w a sliding window along each row
 * shares grad_y between pixels; other strides stage one plane per tap column.  Inner sums of
 * at most 64 products flush into shared-memory sums per chunk; the slices are added in a
 * fixed order in double (slices.cuh): bitwise deterministic.  docs/algorithm.md,
 * "grad-weight", has the details.
 */
#include <stdint.h>

#include "cuda/common.cuh"
#include "cuda/grad_weight/slices.cuh"
#include "cuda/variant.h"

/* One thread's register tile: 4 input channels x 4 output channels (x KWT tap columns). */
#define GW_DIRECT_RCI 4
#define GW_DIRECT_RCO 4
/* Output channels per CTA: 8 thread columns of a warp x GW_DIRECT_RCO. */
#define GW_DIRECT_CO_TILE 32
/* Input channels per warp: 4 thread rows x GW_DIRECT_RCI. */
#define GW_DIRECT_CI_WARP 16
/* At most 8 warps (kH * wci <= 8): 256 threads. */
#define GW_DIRECT_MAX_THREADS 256
/* Up to 3 tap columns, 2 CTAs per SM (128 registers); KWT = 4 keeps 64 accumulators, so 1 CTA
 * (255 registers). */
#define GW_DIRECT_MIN_CTAS(kwt) ((kwt) <= 3 ? 2 : 1)
/* Slices per tile: 8 waves of the CTAs the GPU holds at once, rows split evenly, so every
 * SM slot runs about the same number of rows. */
#define GW_DIRECT_WAVES 8
/* The sliding window always stages 64-pixel chunks with rows of 68 floats (an odd multiple of
 * 4, 64 + 4 for the window), so its shared-memory offsets are compile-time. */
#define GW_DIRECT_SLIDE_PIX 64
#define GW_DIRECT_SLIDE_STRIDE 68
#define GW_DIRECT_SLIDE_GROUPS ((GW_DIRECT_SLIDE_PIX + 4) / 4) /* 4-float groups of a grad_y row */

typedef struct gw_direct_params {
    const void *x;        /* (N, C_in, H_in, W_in) */
    const void *grad_y;   /* (N, C_out, H_out, W_out) */
    float *partial;       /* (slices, C_in, Cog, kH, kW) */
    int c_in, h_in, w_in, c_out, h_out, w_out;
    int kernel_h, kernel_w, stride_h, stride_w, padding_h, padding_w, dilation_h, dilation_w;
    int cig, cog;
    int64_t rows_total;   /* N * H_in: the rows (n, ih) that K is made of */
    int slices;           /* slice s owns rows [s*rows_total/slices, (s+1)*rows_total/slices) */
    int pix;              /* pixels per chunk: 16, 32 or 64 */
    int group_shift;      /* pix / 4 == 1 << group_shift */
    int nseg;             /* chunks per row: ceil(W_in / pix) */
    int ci_tiles, co_tiles, kw_groups;
    int wci;              /* warps per tap row; the CTA's ci tile is 16 * wci */
    int x_stride, g_stride;            /* shared-memory row strides, in floats */
    int tf32;
    int64_t weight_elems;
} gw_direct_params;

/* ---- staging: global -> shared, zero outside the tensor ---- */

/* dst[e] = row[c + e*step] for e < 4, 0 where the column is outside [0, limit) or the
 * whole row is outside the tensor (row == NULL); dst is 16-byte aligned.  float: cp.async,
 * one 16-byte or two 8-byte copies where the source allows; other types: widened to float
 * with plain loads. */
template <typename T>
__device__ __forceinline__ void stage_group(float *dst, const T *row, int c, int step, int limit)
{
#pragma unroll
    for (int e = 0; e < 4; e++) {
        const int ce = c + e * step;
        dst[e] = (row != NULL && ce >= 0 && ce < limit) ? to_acc(row[ce]) : 0.0f;
    }
}

template <>
__device__ __forceinline__ void stage_group<float>(float *dst, const float *row, int c, int step,
                                                   int limit)
{
    if (row == NULL) {
        *(float4 *)dst = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        return;
    }
    if (step == 1 && c >= 0 && c + 4 <= limit) {
        const int a = (int)(((uintptr_t)(row + c) >> 2) & 3);
        if (a == 0) {
            cp_async_floats(dst, row + c, 4);
            return;
        }
        if (a == 2) {
            cp_async_floats(dst, row + c, 2);
            cp_async_floats(dst + 2, row + c + 2, 2);
            return;
        }
    }
#pragma unroll
    for (int e = 0; e < 4; e++) {
        const int ce = c + e * step;
        const bool ok = ce >= 0 && ce < limit;
        cp_async_zfill<4>(dst + e, ok ? row + ce : row, ok);
    }
}

/* Copy width (in floats) that keeps every row of a set aligned: 4 or 2 when the first row's
 * source `first` and the row pitch `channel` allow it and the rows lie inside the tensor's
 * columns, else 0. */
__device__ __forceinline__ int aligned_width(const void *first, int64_t channel, bool inside)
{
    if (!inside) return 0;
    const int a = (int)(((uintptr_t)first >> 2) & 3);
    if (a == 0 && channel % 4 == 0) return 4;
    if (a % 2 == 0 && channel % 2 == 0) return 2;
    return 0;
}

/* Rows k = k0, k0 + kstep, ... < nrows: dst[k*dst_stride + m] = src[k*channel + m] for
 * m < copies*vw by cp.async of vw floats, rows k >= kvalid zero.  One warp; every source
 * row is inside the tensor and vw-aligned (aligned_width), so no per-element checks:
 * about 10 instructions per row against ~60 per 4-float group of stage_group. */
__device__ __forceinline__ void stage_rows_aligned(float *dst, int dst_stride, const float *src,
                                                   int64_t channel, int nrows, int kvalid, int k0,
                                                   int kstep, int copies, int vw, int lane)
{
    for (int k = k0; k < nrows; k += kstep)
        for (int m = lane; m < copies; m += 32) {
            float *d = dst + k * dst_stride + m * vw;
            if (k < kvalid) cp_async_floats(d, src + k * channel + m * vw, vw);
            else if (vw == 4) *(float4 *)d = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            else *(float2 *)d = make_float2(0.0f, 0.0f);
        }
}

/* Stages chunk (row r = n*H_in + ih, pixels [iw0, iw0 + pix)) into buf: the x rows first
 * (16*wci of them), then grad_y rows ordered (kh, plane, co); Q planes per tap row.  The
 * wci warps of tap row kh stage that tap row's grad_y rows, whose sources differ only by
 * the channel stride.  float rows that are aligned and inside take stage_rows_aligned (the
 * seed's every x row and all but the last chunk's grad_y rows); the rest go by 4-float
 * groups through stage_group. */
template <typename T, bool SLIDE, int Q>
__device__ void stage_chunk(const gw_direct_params &p, float *buf, int64_t r, int iw0, int g, int ci0,
                            int co0, int kw0)
{
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
    const int64_t n = r / p.h_in;
    const int ih = (int)(r - n * p.h_in);
    const int ci_tile = GW_DIRECT_CI_WARP * p.wci;
    const int gx = p.group_shift, gx_mask = (1 << gx) - 1; /* pix / 4 == 1 << gx groups */

    const int64_t x_channel = (int64_t)p.h_in * p.w_in;
    const T *x_row0 = (const T *)p.x + ((n * p.c_in + (int64_t)g * p.cig + ci0) * p.h_in + ih) * p.w_in;
    int vx = 0; /* the aligned path is cp.async: float only */
    if constexpr (sizeof(T) == 4) vx = aligned_width(x_row0 + iw0, x_channel, iw0 + p.pix <= p.w_in);
    if (vx) {
        stage_rows_aligned(buf, p.x_stride, (const float *)x_row0 + iw0, x_channel, ci_tile,
                           p.cig - ci0, warp, nwarps, p.pix / vx, vx, lane);
    } else {
        for (int e = threadIdx.x; e < (ci_tile << gx); e += blockDim.x) {
            const int row = e >> gx, grp = e & gx_mask;
            const T *src = ci0 + row < p.cig ? x_row0 + row * x_channel : NULL;
            stage_group<T>(buf + row * p.x_stride + 4 * grp, src, iw0 + 4 * grp, 1, p.w_in);
        }
    }

    const int kh = warp / p.wci, wc = warp % p.wci;
    const int oh = ih * p.stride_h - p.padding_h + kh * p.dilation_h;
    const bool oh_ok = oh >= 0 && oh < p.h_out;
    const int64_t g_channel = (int64_t)p.h_out * p.w_out;
    const T *g_row0 = (const T *)p.grad_y
                    + ((n * p.c_out + (int64_t)g * p.cog + co0) * p.h_out + (oh_ok ? oh : 0)) * p.w_out;
    const int groups = SLIDE ? GW_DIRECT_SLIDE_GROUPS : 1 << gx;
#pragma unroll
    for (int plane = 0; plane < Q; plane++) {
        float *g_dst = buf + ci_tile * p.x_stride + (kh * Q + plane) * GW_DIRECT_CO_TILE * p.g_stride;
        /* position m of plane q holds column (iw0 + m)*stride_w - padding_w
         * + (kw0 + q)*dilation_w; with the sliding window (q == 0, stride == dilation)
         * position m is the tap kw0 + kk of pixel iw0 + m - kk. */
        const int c0 = iw0 * p.stride_w - p.padding_w + (kw0 + plane) * p.dilation_w;
        const bool inside = p.stride_w == 1 && c0 >= 0 && c0 + 4 * groups <= p.w_out;
        int vg = 0;
        if constexpr (sizeof(T) == 4)
            vg = !oh_ok ? 4 : (inside ? aligned_width(g_row0 + c0, g_channel, true) : 0);
        if (vg) {
            stage_rows_aligned(g_dst, p.g_stride, (const float *)g_row0 + c0, g_channel, GW_DIRECT_CO_TILE,
                               oh_ok ? p.cog - co0 : 0, wc, p.wci, 4 * groups / vg, vg, lane);
            continue;
        }
        for (int e = wc * 32 + lane; e < GW_DIRECT_CO_TILE * groups; e += 32 * p.wci) {
            const int co = SLIDE ? e / GW_DIRECT_SLIDE_GROUPS : e >> gx;
            const int grp = SLIDE ? e - co * GW_DIRECT_SLIDE_GROUPS : e & gx_mask;
            const T *src = (oh_ok && co0 + co < p.cog) ? g_row0 + co * g_channel : NULL;
            stage_group<T>(g_dst + co * p.g_stride + 4 * grp, src, c0 + 4 * grp * p.stride_w,
                           p.stride_w, p.w_out);
        }
    }
}

/* ---- the main kernel ---- */

__device__ __forceinline__ void f4_to(float (&a)[4], float4 v)
{
    a[0] = v.x; a[1] = v.y; a[2] = v.z; a[3] = v.w;
}

/* Grid: x = tile (g, ci tile, co tile, kw group), y = slice.  Block: 32 * wci * kH threads.
 * Dynamic shared memory: two buffers of (16*wci*x_stride + kH*q*32*g_stride) floats, then
 * 16*KWT sums per thread. */
template <typename T, int KWT, bool SLIDE>
__global__ void __launch_bounds__(GW_DIRECT_MAX_THREADS, GW_DIRECT_MIN_CTAS(KWT))
grad_weight_direct_kernel(gw_direct_params p)
{
    extern __shared__ float4 gw_direct_smem4[];
    float *smem = (float *)gw_direct_smem4;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;

    int t = blockIdx.x;
    const int kwg = t % p.kw_groups; t /= p.kw_groups;
    const int cot = t % p.co_tiles; t /= p.co_tiles;
    const int cit = t % p.ci_tiles;
    const int g = t / p.ci_tiles;
    const int ci_tile = GW_DIRECT_CI_WARP * p.wci;
    const int ci0 = cit * ci_tile, co0 = cot * GW_DIRECT_CO_TILE, kw0 = kwg * KWT;

    const int64_t r_begin = blockIdx.y * p.rows_total / p.slices;
    const int64_t r_end = (blockIdx.y + 1) * p.rows_total / p.slices;
    const int nchunks = r_end > r_begin ? (int)(r_end - r_begin) * p.nseg : 0;
    constexpr int Q = SLIDE ? 1 : KWT; /* grad_y planes per tap row */
    const int buf_floats = ci_tile * p.x_stride + p.kernel_h * Q * GW_DIRECT_CO_TILE * p.g_stride;
    const int x_stride = SLIDE ? GW_DIRECT_SLIDE_STRIDE : p.x_stride;
    const int g_stride = SLIDE ? GW_DIRECT_SLIDE_STRIDE : p.g_stride;
    const int nb = (SLIDE ? GW_DIRECT_SLIDE_PIX : p.pix) / 4;

    /* This thread: tap row kh, input channels ci_l + 4*i, output channels co_l + 8*j (local
     * to the tile): per LDS.128 a warp reads 4 (x) or 8 (grad_y) consecutive rows, whose
     * odd-multiple-of-4 strides put them in distinct banks. */
    const int kh = warp / p.wci;
    const int ci_l = (warp % p.wci) * GW_DIRECT_CI_WARP + (lane & 3);
    const int co_l = lane >> 2;

    /* The slice's sums live in shared memory (entry e of thread t at e*blockDim.x + t: no bank
     * conflicts), which keeps two CTAs per SM; each 64-pixel chunk flushes into them. */
    float *outer = smem + 2 * buf_floats;
    for (int e = 0; e < GW_DIRECT_RCI * GW_DIRECT_RCO * KWT; e++) outer[e * blockDim.x + threadIdx.x] = 0.0f;
    float inner[GW_DIRECT_RCI][GW_DIRECT_RCO][KWT];

    if (nchunks > 0) stage_chunk<T, SLIDE, Q>(p, smem, r_begin, 0, g, ci0, co0, kw0);
    for (int c = 0; c < nchunks; c++) {
        float *buf = smem + (c & 1) * buf_floats;
        cp_async_wait_all();
        __syncthreads();
        if (p.tf32) {
            for (int i = threadIdx.x; i < buf_floats; i += blockDim.x) buf[i] = round_tf32(buf[i]);
            __syncthreads();
        }
        if (c + 1 < nchunks) {
            const int cn = c + 1;
            stage_chunk<T, SLIDE, Q>(p, smem + (cn & 1) * buf_floats, r_begin + cn / p.nseg,
                           (cn % p.nseg) * p.pix, g, ci0, co0, kw0);
        }

        const float *xs = buf + ci_l * x_stride;
        const float *gs = buf + ci_tile * x_stride + ((kh * Q) * GW_DIRECT_CO_TILE + co_l) * g_stride;
#pragma unroll
        for (int i = 0; i < GW_DIRECT_RCI; i++)
#pragma unroll
            for (int j = 0; j < GW_DIRECT_RCO; j++)
#pragma unroll
                for (int k = 0; k < KWT; k++) inner[i][j][k] = 0.0f;

        if (SLIDE) {
            /* w[j][0..3] = positions 4b..4b+3 (kept from the last step), w[j][4..7] = 4b+4..
             * 4b+7 (loaded): pixel 4b+jj's tap kw0+kk is w[j][jj + kk], KWT <= 4. */
            float w[GW_DIRECT_RCO][8];
#pragma unroll
            for (int j = 0; j < GW_DIRECT_RCO; j++)
                f4_to(*(float(*)[4])&w[j][0], *(const float4 *)(gs + 8 * j * g_stride));
#pragma unroll 2
            for (int b = 0; b < nb; b++) {
                float xv[GW_DIRECT_RCI][4];
#pragma unroll
                for (int i = 0; i < GW_DIRECT_RCI; i++)
                    f4_to(xv[i], *(const float4 *)(xs + 4 * i * x_stride + 4 * b));
#pragma unroll
                for (int j = 0; j < GW_DIRECT_RCO; j++)
                    f4_to(*(float(*)[4])&w[j][4],
                          *(const float4 *)(gs + 8 * j * g_stride + 4 * b + 4));
#pragma unroll
                for (int jj = 0; jj < 4; jj++)
#pragma unroll
                    for (int k = 0; k < KWT; k++)
#pragma unroll
                        for (int i = 0; i < GW_DIRECT_RCI; i++)
#pragma unroll
                            for (int j = 0; j < GW_DIRECT_RCO; j++)
                                inner[i][j][k] = fmaf(xv[i][jj], w[j][jj + k], inner[i][j][k]);
#pragma unroll
                for (int j = 0; j < GW_DIRECT_RCO; j++)
#pragma unroll
                    for (int e = 0; e < 4; e++) w[j][e] = w[j][e + 4];
            }
        } else {
#pragma unroll 2
            for (int b = 0; b < nb; b++) {
                float xv[GW_DIRECT_RCI][4];
#pragma unroll
                for (int i = 0; i < GW_DIRECT_RCI; i++)
                    f4_to(xv[i], *(const float4 *)(xs + 4 * i * x_stride + 4 * b));
#pragma unroll
                for (int k = 0; k < KWT; k++) {
                    float gv[GW_DIRECT_RCO][4];
#pragma unroll
                    for (int j = 0; j < GW_DIRECT_RCO; j++)
                        f4_to(gv[j], *(const float4 *)(gs + (k * GW_DIRECT_CO_TILE + 8 * j) * g_stride
                                                       + 4 * b));
#pragma unroll
                    for (int jj = 0; jj < 4; jj++)
#pragma unroll
                        for (int i = 0; i < GW_DIRECT_RCI; i++)
#pragma unroll
                            for (int j = 0; j < GW_DIRECT_RCO; j++)
                                inner[i][j][k] = fmaf(xv[i][jj], gv[j][jj], inner[i][j][k]);
                }
            }
        }
#pragma unroll
        for (int i = 0; i < GW_DIRECT_RCI; i++)
#pragma unroll
            for (int j = 0; j < GW_DIRECT_RCO; j++)
#pragma unroll
                for (int k = 0; k < KWT; k++)
                    outer[((i * GW_DIRECT_RCO + j) * KWT + k) * blockDim.x + threadIdx.x] += inner[i][j][k];
    }

    /* The slice's partial sums: every element of partial[slice] is written by exactly one
     * thread of one CTA (tiles partition the weight). */
    float *out = p.partial + (int64_t)blockIdx.y * p.weight_elems;
#pragma unroll
    for (int i = 0; i < GW_DIRECT_RCI; i++) {
        const int ci = ci0 + ci_l + 4 * i;
        if (ci >= p.cig) continue;
#pragma unroll
        for (int j = 0; j < GW_DIRECT_RCO; j++) {
            const int co = co0 + co_l + 8 * j;
            if (co >= p.cog) continue;
            const int64_t base = (((int64_t)g * p.cig + ci) * p.cog + co) * p.kernel_h + kh;
#pragma unroll
            for (int k = 0; k < KWT; k++)
                if (kw0 + k < p.kernel_w)
                    out[base * p.kernel_w + kw0 + k] =
                        outer[((i * GW_DIRECT_RCO + j) * KWT + k) * blockDim.x + threadIdx.x];
        }
    }
}

/* ---- host side ---- */

typedef struct gw_direct_plan {
    int kwt, slide;
    int slices;
    int64_t ci_tiles, co_tiles;
    size_t smem_bytes;
    gw_direct_params prm;        /* everything but the pointers */
} gw_direct_plan;

static int odd_quad_stride(int width) /* smallest odd multiple of 4 >= width */
{
    int q = (width + 3) / 4;
    return 4 * (q % 2 == 0 ? q + 1 : q);
}

template <typename T, int KWT> static void (*gw_direct_kernel_kwt(int slide))(gw_direct_params)
{
    return slide ? grad_weight_direct_kernel<T, KWT, true> : grad_weight_direct_kernel<T, KWT, false>;
}

template <typename T> static void (*gw_direct_kernel(int kwt, int slide))(gw_direct_params)
{
    switch (kwt) {
    case 1: return gw_direct_kernel_kwt<T, 1>(slide);
    case 2: return gw_direct_kernel_kwt<T, 2>(slide);
    case 3: return gw_direct_kernel_kwt<T, 3>(slide);
    default: return gw_direct_kernel_kwt<T, 4>(slide);
    }
}

/* The main kernel for a dtype (float64 is never planned). */
static void (*gw_direct_kernel_for(tconv_dtype dtype, int kwt, int slide))(gw_direct_params)
{
    switch (dtype) {
    case TCONV_FLOAT16: return gw_direct_kernel<__half>(kwt, slide);
    case TCONV_BFLOAT16: return gw_direct_kernel<__nv_bfloat16>(kwt, slide);
    default: return gw_direct_kernel<float>(kwt, slide);
    }
}

/* The tiling of p: warps per tap row (wci) and the CTA's tiles. */
static void gw_direct_tiles(const tconv_problem *p, gw_direct_plan *pl)
{
    gw_direct_params *q = &pl->prm;
    const int64_t cig = p->c_in / p->groups, cog = p->c_out / p->groups;
    q->kw_groups = (int)((p->kernel_w + 3) / 4);
    pl->kwt = (int)((p->kernel_w + q->kw_groups - 1) / q->kw_groups); /* kW 5, 6, 7: 3+2, 3+3, 4+3 */
    int wci = (int)(GW_DIRECT_MAX_THREADS / 32 / p->kernel_h);
    if (wci < 1) wci = 1; /* (kH > 8: can_implement refuses it) */
    if (wci > 4) wci = 4;
    if (wci > (cig + GW_DIRECT_CI_WARP - 1) / GW_DIRECT_CI_WARP)
        wci = (int)((cig + GW_DIRECT_CI_WARP - 1) / GW_DIRECT_CI_WARP);
    q->wci = wci;
    pl->ci_tiles = (cig + GW_DIRECT_CI_WARP * wci - 1) / (GW_DIRECT_CI_WARP * wci);
    pl->co_tiles = (cog + GW_DIRECT_CO_TILE - 1) / GW_DIRECT_CO_TILE;
}

void grad_weight_direct_tile_fill(const tconv_problem *p, int64_t *used, int64_t *tile)
{
    gw_direct_plan pl;
    gw_direct_tiles(p, &pl);
    *used = (p->c_in / p->groups) * (p->c_out / p->groups);
    *tile = pl.ci_tiles * GW_DIRECT_CI_WARP * pl.prm.wci * pl.co_tiles * GW_DIRECT_CO_TILE;
}

/* The staging layout of p in a CTA of at most smem_max bytes: the sliding window where the
 * stride allows it and its 64-pixel chunks fit, else the gathered layout with the widest
 * chunks that fit.  Returns 0 when none fits. */
static int gw_direct_layout(const tconv_problem *p, int smem_max, gw_direct_plan *pl)
{
    gw_direct_params *q = &pl->prm;
    /* narrow rows take the gathered layout with 16- or 32-pixel chunks */
    pl->slide = p->stride_w == p->dilation_w && p->w_in > 32;
    for (;;) {
        const int planes = pl->slide ? 1 : pl->kwt;
        int pix = pl->slide ? GW_DIRECT_SLIDE_PIX : (p->w_in <= 16 ? 16 : (p->w_in <= 32 ? 32 : 64));
        for (;; pix /= 2) {
            q->pix = pix;
            /* the sliding window reads 4 positions past the chunk */
            q->g_stride = pl->slide ? GW_DIRECT_SLIDE_STRIDE : odd_quad_stride(pix);
            q->x_stride = pl->slide ? GW_DIRECT_SLIDE_STRIDE : odd_quad_stride(pix);
            const int64_t buf = (int64_t)GW_DIRECT_CI_WARP * q->wci * q->x_stride
                              + p->kernel_h * planes * GW_DIRECT_CO_TILE * q->g_stride;
            const int64_t sums = (int64_t)GW_DIRECT_RCI * GW_DIRECT_RCO * pl->kwt * 32 * q->wci * p->kernel_h;
            pl->smem_bytes = (size_t)((2 * buf + sums) * sizeof(float));
            if (pl->smem_bytes <= (size_t)smem_max || pl->slide || pix == 16) break;
        }
        if (pl->smem_bytes <= (size_t)smem_max) return 1;
        if (!pl->slide) return 0;
        pl->slide = 0; /* the sliding window's 64-pixel chunks do not fit: gathered layout */
    }
}

/* float32, float16 and bfloat16; at most 8 tap rows (a warp each); every count in range; a
 * staging layout that fits the device's CTA. */
static int gw_direct_can_implement(const tconv_problem *p, const tconv_config *config, const tconv_device_caps *d)
{
    if (config->dtype != TCONV_FLOAT32 && config->dtype != TCONV_FLOAT16 && config->dtype != TCONV_BFLOAT16)
        return 0;
    if (p->kernel_h > GW_DIRECT_MAX_THREADS / 32) return 0;
    /* grad_y rows and columns are computed in int, up to a chunk (68 pixels) past the input
     * (checked in double: the int64 products could overflow for absurd strides) */
    if ((double)(p->h_in + 68) * p->stride_h + (double)p->kernel_h * p->dilation_h
            + (double)p->padding_h > INT32_MAX ||
        (double)(p->w_in + 68) * p->stride_w + (double)p->kernel_w * p->dilation_w
            + (double)p->padding_w > INT32_MAX)
        return 0;
    if (p->n * p->h_in > ((int64_t)1 << 40)) return 0; /* blockIdx.y * rows stays in int64 */
    gw_direct_plan pl;
    gw_direct_tiles(p, &pl);
    if (p->groups * pl.ci_tiles * pl.co_tiles * pl.prm.kw_groups > INT32_MAX) return 0;
    return gw_direct_layout(p, d->smem_optin, &pl);
}

/* The tiling and layout, the main kernel's shared-memory limit, and the slices: GW_DIRECT_WAVES
 * waves of the CTAs the device holds at once, at least one row each. */
static int gw_direct_plan_make(const tconv_problem *p, const tconv_config *config, const tconv_device_caps *d,
                               void *state, size_t *workspace_bytes)
{
    gw_direct_plan *pl = (gw_direct_plan *)state;
    static_assert(sizeof(gw_direct_plan) <= TCONV_VARIANT_STATE_BYTES,
                  "a grad_weight_direct plan fits a variant's state");
    gw_direct_params *q = &pl->prm;
    gw_direct_tiles(p, pl);
    if (!gw_direct_layout(p, d->smem_optin, pl)) return 0;
    const int64_t tiles = p->groups * pl->ci_tiles * pl->co_tiles * q->kw_groups;
    const int threads = 32 * q->wci * (int)p->kernel_h;
    void (*kernel)(gw_direct_params) = gw_direct_kernel_for(config->dtype, pl->kwt, pl->slide);
    int per_sm = 0;
    if (tconv_kernel_smem((const void *)kernel, pl->smem_bytes, d->ordinal) != cudaSuccess ||
        cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, threads, pl->smem_bytes) != cudaSuccess ||
        per_sm < 1)
        return 0;
    const int64_t cog = p->c_out / p->groups;
    const int64_t weight_elems = p->c_in * cog * p->kernel_h * p->kernel_w;
    const int64_t rows = p->n * p->h_in;
    const int64_t slices =
        grad_weight_slice_count(GW_DIRECT_WAVES, (int64_t)d->sms * per_sm, tiles, weight_elems, rows);
    const int64_t nseg = (p->w_in + q->pix - 1) / q->pix;
    if ((rows / slices + 1) * nseg > INT32_MAX) return 0; /* chunks of one CTA are counted in int */
    pl->slices = (int)slices;

    q->x = q->grad_y = NULL;
    q->partial = NULL;
    q->c_in = (int)p->c_in; q->h_in = (int)p->h_in; q->w_in = (int)p->w_in;
    q->c_out = (int)p->c_out; q->h_out = (int)p->h_out; q->w_out = (int)p->w_out;
    q->kernel_h = (int)p->kernel_h; q->kernel_w = (int)p->kernel_w;
    q->stride_h = (int)p->stride_h; q->stride_w = (int)p->stride_w;
    q->padding_h = (int)p->padding_h; q->padding_w = (int)p->padding_w;
    q->dilation_h = (int)p->dilation_h; q->dilation_w = (int)p->dilation_w;
    q->cig = (int)(p->c_in / p->groups); q->cog = (int)cog;
    q->rows_total = rows;
    q->slices = (int)slices;
    q->nseg = (int)nseg;
    q->group_shift = q->pix == 16 ? 2 : (q->pix == 32 ? 3 : 4);
    q->ci_tiles = (int)pl->ci_tiles; q->co_tiles = (int)pl->co_tiles;
    q->tf32 = tf32_mode(config);
    q->weight_elems = weight_elems;
    *workspace_bytes = (size_t)pl->slices * (size_t)weight_elems * sizeof(float);
    return 1;
}

struct gw_direct_launch_body {
    const tconv_args *a;
    const gw_direct_plan *pl;
    template <typename T> cudaError_t operator()() const;
};

template <typename T> cudaError_t gw_direct_launch_body::operator()() const
{
    gw_direct_params prm = pl->prm;
    prm.x = a->x;
    prm.grad_y = a->grad_y;
    prm.partial = (float *)a->workspace;
    /* (the plan set the kernel's shared-memory limit) */
    void (*kernel)(gw_direct_params) = gw_direct_kernel<T>(pl->kwt, pl->slide);
    const dim3 grid((unsigned)((int64_t)a->p->groups * prm.ci_tiles * prm.co_tiles * prm.kw_groups),
                    (unsigned)pl->slices);
    const int threads = 32 * prm.wci * prm.kernel_h;
    kernel<<<grid, threads, pl->smem_bytes, a->stream>>>(prm);
    cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess) return err;
    return grad_weight_launch_reduce<T>(prm.partial, (T *)a->grad_weight, pl->slices, prm.weight_elems, a->stream);
}

/* float64 is refused by can_implement. */
template <> cudaError_t gw_direct_launch_body::operator()<double>() const { return cudaErrorInvalidValue; }

static cudaError_t gw_direct_launch(const tconv_args *args, const void *state)
{
    gw_direct_launch_body body = {args, (const gw_direct_plan *)state};
    return with_dtype(args->config->dtype, body);
}

const tconv_variant tconv_variant_grad_weight_direct_32x32 = {
    "grad_weight_direct_32x32", TCONV_PASS_GRAD_WEIGHT, gw_direct_can_implement, gw_direct_plan_make, gw_direct_launch,
};
