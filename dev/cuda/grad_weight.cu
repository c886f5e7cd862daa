/*
 * grad_weight.cu - the kernel lab of grad_weight, float32 (FP32 or TF32 products): every
 * version checked against the CPU float64 reference on small problems, then timed on the
 * seed shape.
 *
 *   grad_weight[g*Cig + ci, co, kh, kw] = sum over n, ih, iw of x[n, g*Cig + ci, ih, iw]
 *       * grad_y[n, g*Cog + co, ih*stride_h - padding_h + kh*dilation_h,
 *                               iw*stride_w - padding_w + kw*dilation_w]
 *
 * As a GEMM: M = Cig, N = Cog*kH*kW, K = N*H_in*W_in (seed: 64 x 576 x 8.39 M, 618.5 GFLOP).
 *
 * version 1: naive, one thread per weight; a float sum per input row flushed into a double.
 *            The lab's own, not in the library.
 * version 2 and up: the library's grad_weight variants, in the order of its table
 *            (src/cuda/variants.def), run as the library runs them: the code of
 *            build/libtconv_cuda.a, forced by name (config.algorithm) into a plan made once
 *            per problem (tconv_plan_create), then tconv_plan_grad_weight for each run.  A
 *            variant that does not take a problem, a precision or the device shows "n/a".
 *            `--list` prints the numbers of the library linked; at the time of writing:
 *   2 grad_weight_mma_ws_64x32         tf32 mode, sm_90a: mma.sync TF32 on the unit-tiled
 *                                      split-K GEMM (stride 1, kW <= 3, dilation_w <= 2),
 *                                      with a warpgroup that only copies
 *   3 grad_weight_mma_64x32            tf32 mode: the same, every warp copies and multiplies
 *   4 grad_weight_mma_3xfp16_ws_64x32  fp32 mode, sm_90a: 3xFP16 on m16n8k16, the unit
 *                                      tiling, with a warpgroup that only copies
 *   5 grad_weight_mma_3xfp16_64x32     fp32 mode, sm_90 and newer: the same without it
 *   6 grad_weight_fma_64x16            fp32 mode: FP32 FMA on the unit tiling
 *   7 grad_weight_direct_32x32         split-K direct convolution on FP32 FMA, kH <= 8, any
 *                                      stride and dilation: grad_y staged as a sliding window
 *                                      along w where stride_w == dilation_w, W_in > 32 and
 *                                      its 64-pixel chunks fit a CTA's shared memory, else
 *                                      one plane per tap column (the gathered layout)
 *   8 grad_weight_naive                one thread per weight, chunked float sums; every problem
 * (src/cuda/grad_weight/ and src/cuda/naive/grad_weight_naive.cu say how each works.)
 *
 * Build and run, from the repository root:
 *   make build/lab_grad_weight
 * which builds build/libtconv_cuda.a, then
 *   nvcc $(scripts/nvcc_flags.sh) -Iinclude -Isrc -Xcompiler -Wall,-Wextra -Werror all-warnings \
 *        dev/cuda/grad_weight.cu build/libtconv_cuda.a -Xcompiler -fopenmp -o build/lab_grad_weight
 * (-fopenmp for the CPU reference in the library).
 *   ./build/lab_grad_weight              every version: checks on small problems, times on the seed
 *   ./build/lab_grad_weight --list       the versions (needs no GPU)
 *   ./build/lab_grad_weight 7            version 7 only; a variant's name does the same
 *   ./build/lab_grad_weight 7 --tf32     TF32 products (operands rounded to nearest TF32)
 *   ./build/lab_grad_weight 7 --no-seed  checks only
 *   ./build/lab_grad_weight --rng 42     the random inputs of an earlier run (each run prints its own)
 *
 * Checks: every version on each small problem (channel tails, both layouts of
 * grad_weight_direct_32x32, strides, dilations, padding, groups, output_padding, kW split into
 * tap groups, kH = 8, narrow and wide rows), N(0,1) inputs.  Before the first of two runs the
 * output is poisoned with NaN (every element must be written) and a library variant's
 * workspace with a byte pattern; the runs must agree bitwise, and every element must be
 * within the bound test_cuda holds float32 to:
 * 2^-24 * ((16 + 4 sqrt(K)) * sum |x*grad_y| + max |reference|) + 2^-150, K = N*H_in*W_in.
 *
 * The seed run needs about 4.9 GB of GPU memory: x (8,64,1024,1024), grad_y (8,64,1026,1026),
 * N(0,1) data, k3 s1 p0.  Its reference is a float64 GPU kernel (checked against the CPU
 * reference on the small problems).  Timing: the first run is the warm-up, then the median
 * of 5 runs (1 where the warm-up took over a second), each after flushing L2 by writing
 * 256 MiB; TFLOP/s = 2*M*N*K / time.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cuda_runtime.h>

#include "cuda/common.cuh" /* operand(): TF32 rounding as the library's kernels do it */
#include "problem.h"
#include "tconv.h"

#define CUDA_CHECK(call)                                                                    \
    do {                                                                                    \
        cudaError_t err_ = (call);                                                          \
        if (err_ != cudaSuccess) {                                                          \
            fprintf(stderr, "CUDA error %s at %s:%d\n", cudaGetErrorString(err_), __FILE__, \
                    __LINE__);                                                              \
            exit(1);                                                                        \
        }                                                                                   \
    } while (0)

#define TCONV_CHECK(call)                                                                   \
    do {                                                                                    \
        tconv_status st_ = (call);                                                          \
        if (st_ != TCONV_SUCCESS) {                                                         \
            fprintf(stderr, "%s at %s:%d (CUDA error %d)\n", tconv_status_string(st_),      \
                    __FILE__, __LINE__, tconv_cuda_last_error());                           \
            exit(1);                                                                        \
        }                                                                                   \
    } while (0)

static void *host_alloc(size_t bytes)
{
    void *a = malloc(bytes > 0 ? bytes : 1);
    if (a == NULL) {
        fprintf(stderr, "out of host memory (%zu bytes)\n", bytes);
        exit(1);
    }
    return a;
}

/* A checked problem's sizes as int, for the lab's kernels (int index arithmetic in their
 * inner loops; every problem here is far from 2^31). */
typedef struct dims {
    int n, c_in, h_in, w_in, c_out, h_out, w_out, kernel_h, kernel_w;
    int stride_h, stride_w, padding_h, padding_w, dilation_h, dilation_w, groups;
} dims;

static dims dims_of(const tconv_problem *p)
{
    dims d = {(int)p->n,         (int)p->c_in,       (int)p->h_in,       (int)p->w_in,
              (int)p->c_out,     (int)p->h_out,      (int)p->w_out,      (int)p->kernel_h,
              (int)p->kernel_w,  (int)p->stride_h,   (int)p->stride_w,   (int)p->padding_h,
              (int)p->padding_w, (int)p->dilation_h, (int)p->dilation_w, (int)p->groups};
    return d;
}

static double gflop(const tconv_problem *p)
{
    return 2.0 * (double)tconv_x_elems(p) * (double)(p->c_out / p->groups) * (double)(p->kernel_h * p->kernel_w)
           * 1e-9;
}

/* ------------------------------------------------------------------------------------ */
/* CPU reference: the library's, float64, straight from the definition, on the float32
 * inputs (rounded to nearest TF32 first in tf32 mode, ties away as cvt.rna). */

static double round_tf32_host(float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    if ((u & 0x7f800000u) != 0x7f800000u) u = (u + 0x1000u) & 0xffffe000u;
    memcpy(&v, &u, 4);
    return v;
}

/* ref[i] = grad_weight and mag[i] = the same sum over |x|, |grad_y| (which scales each
 * element's error bound); x is (N, C_in, H_in, W_in), grad_y is (N, C_out, H_out, W_out),
 * ref and mag are (C_in, C_out/groups, kH, kW). */
static void reference_cpu(const tconv_problem *p, const float *x, const float *grad_y, bool tf32, double *ref,
                          double *mag)
{
    const int64_t nx = tconv_x_elems(p), ny = tconv_y_elems(p);
    double *xd = (double *)host_alloc((size_t)nx * sizeof(double));
    double *gd = (double *)host_alloc((size_t)ny * sizeof(double));
    for (int64_t i = 0; i < nx; i++) xd[i] = tf32 ? round_tf32_host(x[i]) : x[i];
    for (int64_t i = 0; i < ny; i++) gd[i] = tf32 ? round_tf32_host(grad_y[i]) : grad_y[i];
    TCONV_CHECK(tconv_grad_weight_cpu_f64(p, xd, gd, ref));
    for (int64_t i = 0; i < nx; i++) xd[i] = fabs(xd[i]);
    for (int64_t i = 0; i < ny; i++) gd[i] = fabs(gd[i]);
    TCONV_CHECK(tconv_grad_weight_cpu_f64(p, xd, gd, mag));
    free(xd);
    free(gd);
}

/* ------------------------------------------------------------------------------------ */
/* float64 reference on the GPU for the seed (the CPU one would take hours): one thread per
 * weight and band of `band_rows` rows (n, ih), partial sums (bands, weight) in double, then
 * summed in order.  Block: ci = blockIdx.x, band = blockIdx.y; threads over (co, kh, kw). */
__global__ void reference_f64_kernel(dims p, const float *x, const float *grad_y, double *partial,
                                     int band_rows, bool tf32)
{
    const int cig = p.c_in / p.groups, cog = p.c_out / p.groups;
    const int ci_all = blockIdx.x, g = ci_all / cig;
    const int64_t rows = (int64_t)p.n * p.h_in;
    const int64_t r0 = (int64_t)blockIdx.y * band_rows;
    const int64_t r1 = min(r0 + band_rows, rows);
    const int per_ci = cog * p.kernel_h * p.kernel_w;
    for (int t = threadIdx.x; t < per_ci; t += blockDim.x) {
        const int kw = t % p.kernel_w, kh = (t / p.kernel_w) % p.kernel_h;
        const int co = t / (p.kernel_w * p.kernel_h);
        double s = 0.0;
        for (int64_t r = r0; r < r1; r++) {
            const int64_t n = r / p.h_in;
            const int ih = (int)(r % p.h_in);
            const int oh = ih * p.stride_h - p.padding_h + kh * p.dilation_h;
            if (oh < 0 || oh >= p.h_out) continue;
            const float *xr = x + ((n * p.c_in + ci_all) * p.h_in + ih) * p.w_in;
            const float *gr = grad_y + ((n * p.c_out + (int64_t)g * cog + co) * p.h_out + oh) * p.w_out;
            for (int iw = 0; iw < p.w_in; iw++) {
                const int ow = iw * p.stride_w - p.padding_w + kw * p.dilation_w;
                if (ow >= 0 && ow < p.w_out)
                    s += (double)operand(xr[iw], tf32) * (double)operand(gr[ow], tf32);
            }
        }
        partial[((int64_t)blockIdx.y * p.c_in + ci_all) * per_ci + t] = s;
    }
}

__global__ void sum_bands_kernel(const double *partial, double *out, int bands, int64_t count)
{
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < count;
         i += (int64_t)gridDim.x * blockDim.x) {
        double s = 0.0;
        for (int b = 0; b < bands; b++) s += partial[b * count + i];
        out[i] = s;
    }
}

/* float64 reference of the whole problem on the GPU into ref (host, weight_elems doubles);
 * x and grad_y are device pointers. */
static void reference_gpu(const tconv_problem *p, const float *x, const float *grad_y, double *ref, bool tf32)
{
    const int band_rows = 8;
    const int64_t rows = p->n * p->h_in;
    const int bands = (int)((rows + band_rows - 1) / band_rows);
    const int64_t count = tconv_weight_elems(p);
    double *partial, *out;
    CUDA_CHECK(cudaMalloc(&partial, (size_t)bands * count * sizeof(double)));
    CUDA_CHECK(cudaMalloc(&out, (size_t)count * sizeof(double)));
    reference_f64_kernel<<<dim3((unsigned)p->c_in, bands), 256>>>(dims_of(p), x, grad_y, partial, band_rows, tf32);
    CUDA_CHECK(cudaGetLastError());
    sum_bands_kernel<<<1024, 256>>>(partial, out, bands, count);
    CUDA_CHECK(cudaGetLastError());
    CUDA_CHECK(cudaMemcpy(ref, out, (size_t)count * sizeof(double), cudaMemcpyDeviceToHost));
    CUDA_CHECK(cudaFree(partial));
    CUDA_CHECK(cudaFree(out));
}

/* ------------------------------------------------------------------------------------ */
/* version 1: one thread per weight (ci, co, kh, kw); a float sum per input row, flushed
 * into a double (one float accumulator over 8.39 M terms would be off by ~0.1). */

__global__ void grad_weight_kernel1(dims p, const float *x, const float *grad_y, float *grad_weight, bool tf32)
{
    const int cig = p.c_in / p.groups, cog = p.c_out / p.groups;
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (int64_t)p.c_in * cog * p.kernel_h * p.kernel_w) return;
    const int kw = (int)(i % p.kernel_w), kh = (int)(i / p.kernel_w % p.kernel_h);
    const int co = (int)(i / ((int64_t)p.kernel_w * p.kernel_h) % cog);
    const int ci_all = (int)(i / ((int64_t)p.kernel_w * p.kernel_h * cog));
    const int g = ci_all / cig;
    double total = 0.0;
    for (int n = 0; n < p.n; n++)
        for (int ih = 0; ih < p.h_in; ih++) {
            const int oh = ih * p.stride_h - p.padding_h + kh * p.dilation_h;
            if (oh < 0 || oh >= p.h_out) continue;
            const float *xr = x + (((int64_t)n * p.c_in + ci_all) * p.h_in + ih) * p.w_in;
            const float *gr = grad_y + (((int64_t)n * p.c_out + (int64_t)g * cog + co) * p.h_out + oh)
                            * p.w_out;
            float row = 0.0f;
            for (int iw = 0; iw < p.w_in; iw++) {
                const int ow = iw * p.stride_w - p.padding_w + kw * p.dilation_w;
                if (ow >= 0 && ow < p.w_out) row = fmaf(operand(xr[iw], tf32), operand(gr[ow], tf32), row);
            }
            total += row;
        }
    grad_weight[i] = (float)total;
}

/* ------------------------------------------------------------------------------------ */
/* the versions and their launchers */

/* version_name[v] for v = 1 .. version_count: 1 the lab's, then the library's grad_weight
 * variants in its table's order. */
enum { MAX_VERSIONS = 64 };
static const char *version_name[MAX_VERSIONS + 1];
static int version_count;

static void find_versions(void)
{
    version_name[1] = "naive (lab): thread per weight";
    version_count = 1;
    tconv_pass pass;
    const char *name;
    for (int i = 0; (name = tconv_cuda_variant(i, &pass)) != NULL; i++) {
        if (pass != TCONV_PASS_GRAD_WEIGHT) continue;
        if (version_count == MAX_VERSIONS) {
            fprintf(stderr, "more than %d versions: raise MAX_VERSIONS\n", MAX_VERSIONS);
            exit(1);
        }
        version_name[++version_count] = name;
    }
}

/* One version set up for one problem: version 1 needs nothing, a library variant its plan
 * and workspace. */
typedef struct runner {
    int version;
    bool tf32;
    tconv_problem p;
    tconv_plan *plan;
    void *workspace;
    size_t workspace_bytes;
} runner;

/* Sets r up for version v on p (checked); returns 0 when the version does not take p in
 * this precision on this device. */
static int runner_open(runner *r, int v, const tconv_problem *p, bool tf32)
{
    memset(r, 0, sizeof *r);
    r->version = v;
    r->tf32 = tf32;
    r->p = *p;
    if (v == 1) return 1;
    const tconv_config config = {TCONV_FLOAT32, tf32 ? TCONV_PRECISION_TF32 : TCONV_PRECISION_FP32,
                                 version_name[v]};
    const tconv_status s = tconv_plan_create(&r->plan, p, TCONV_PASS_GRAD_WEIGHT, &config);
    if (s == TCONV_UNSUPPORTED_ALGORITHM) return 0;
    TCONV_CHECK(s);
    TCONV_CHECK(tconv_plan_workspace_size(r->plan, &r->workspace_bytes));
    if (r->workspace_bytes > 0) {
        CUDA_CHECK(cudaMalloc(&r->workspace, r->workspace_bytes));
        /* a byte pattern: what the variant reads of its workspace, it must have written */
        CUDA_CHECK(cudaMemset(r->workspace, 0xa5, r->workspace_bytes));
    }
    return 1;
}

static void runner_close(runner *r)
{
    if (r->workspace != NULL) CUDA_CHECK(cudaFree(r->workspace));
    TCONV_CHECK(tconv_plan_destroy(r->plan));
}

/* Queues one grad_weight on the default stream.  x is (N, C_in, H_in, W_in), grad_y is
 * (N, C_out, H_out, W_out), grad_weight is (C_in, C_out/groups, kH, kW). */
static void runner_run(const runner *r, const float *x, const float *grad_y, float *grad_weight)
{
    if (r->version == 1) {
        const int64_t blocks = (tconv_weight_elems(&r->p) + 127) / 128;
        grad_weight_kernel1<<<(unsigned)blocks, 128>>>(dims_of(&r->p), x, grad_y, grad_weight, r->tf32);
        CUDA_CHECK(cudaGetLastError());
        return;
    }
    TCONV_CHECK(tconv_plan_grad_weight(r->plan, &r->p, x, grad_y, grad_weight, r->workspace, r->workspace_bytes,
                                       NULL));
}

/* ------------------------------------------------------------------------------------ */
/* data and checks */

static uint64_t rng_state;
static float randn_host(void)
{
    double u[2];
    for (int k = 0; k < 2; k++) {
        rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
        u[k] = ((rng_state >> 11) + 0.5) * (1.0 / 9007199254740992.0);
    }
    return (float)(sqrt(-2.0 * log(u[0])) * cos(6.283185307179586 * u[1]));
}

/* a[i] ~ N(0, 1) from a hash of (i, rng_seed): the seed shape's 4.3 GB are drawn on the GPU. */
__global__ void randn_kernel(float *a, int64_t count, uint32_t rng_seed)
{
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < count;
         i += (int64_t)gridDim.x * blockDim.x) {
        uint64_t h = (uint64_t)i * 0x9e3779b97f4a7c15ull ^ ((uint64_t)rng_seed << 32);
        h ^= h >> 33; h *= 0xff51afd7ed558ccdull; h ^= h >> 33; h *= 0xc4ceb9fe1a85ec53ull; h ^= h >> 33;
        const float u1 = ((uint32_t)h >> 8) * (1.0f / 16777216.0f) + (0.5f / 16777216.0f);
        const float u2 = ((uint32_t)(h >> 32) >> 8) * (1.0f / 16777216.0f);
        a[i] = sqrtf(-2.0f * logf(u1)) * cospif(2.0f * u2);
    }
}

static double max_abs_err(const float *out, const double *ref, int64_t count)
{
    double e = 0.0;
    for (int64_t i = 0; i < count; i++) {
        const double d = fabs((double)out[i] - ref[i]);
        if (!(d <= e)) e = d; /* NaN counts as infinitely wrong */
    }
    return e;
}

/* The largest error of out against ref in units of each element's bound (test_cuda's for
 * float32): 2^-24 * ((16 + 4 sqrt(k)) * mag + max |ref|) + 2^-150, k terms per sum; NaN is
 * infinite. */
static double worst_bound_ratio(const float *out, const double *ref, const double *mag, int64_t count, int64_t k)
{
    double max_ref = 0.0, worst = 0.0;
    for (int64_t i = 0; i < count; i++) max_ref = fmax(max_ref, fabs(ref[i]));
    const double growth = 16.0 + 4.0 * sqrt((double)k);
    for (int64_t i = 0; i < count; i++) {
        const double r = fabs((double)out[i] - ref[i]) / (0x1p-24 * (growth * mag[i] + max_ref) + 0x1p-150);
        if (!(r <= worst)) worst = isnan(r) ? INFINITY : r;
    }
    return worst;
}

static int compare_float(const void *a, const void *b)
{
    const float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Small problems: channel tails, both layouts, strides, dilations, padding, groups,
 * output_padding, kW split into tap groups, kH = 8, narrow and wide rows.
 * n, c_in, h_in, w_in, c_out, kH, kW, sh, sw, ph, pw, oph, opw, dh, dw, groups */
static const tconv_problem small_problems[] = {
    {2, 8, 9, 13, 12, 3, 3, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0},
    {1, 40, 11, 70, 36, 3, 3, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0},
    {2, 6, 7, 9, 4, 5, 2, 2, 2, 1, 1, 1, 1, 1, 1, 2, 0, 0},
    {1, 4, 5, 6, 6, 7, 7, 3, 3, 2, 2, 1, 1, 2, 2, 1, 0, 0},
    {1, 8, 6, 47, 8, 3, 5, 2, 2, 0, 0, 0, 0, 2, 2, 1, 0, 0},
    {3, 18, 5, 33, 34, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0},
    {1, 16, 4, 40, 16, 8, 3, 1, 1, 3, 1, 0, 0, 1, 1, 1, 0, 0},
    {1, 2, 300, 3, 3, 2, 2, 2, 2, 0, 0, 1, 1, 1, 1, 1, 0, 0},
    {2, 64, 6, 130, 64, 3, 3, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0},
    {1, 12, 5, 21, 18, 3, 4, 1, 2, 1, 0, 0, 0, 2, 1, 3, 0, 0},
};

/* Checks versions first .. last on every small problem; returns the number of failures. */
static int check_small_problems(int first, int last, bool tf32)
{
    int failures = 0;
    for (size_t t = 0; t < sizeof(small_problems) / sizeof(small_problems[0]); t++) {
        tconv_problem p = small_problems[t];
        TCONV_CHECK(tconv_problem_check(&p));
        const int64_t nx = tconv_x_elems(&p), ny = tconv_y_elems(&p), nw = tconv_weight_elems(&p);
        float *hx = (float *)host_alloc((size_t)nx * 4), *hg = (float *)host_alloc((size_t)ny * 4);
        float *out = (float *)host_alloc((size_t)nw * 4), *out2 = (float *)host_alloc((size_t)nw * 4);
        double *ref = (double *)host_alloc((size_t)nw * 8), *mag = (double *)host_alloc((size_t)nw * 8);
        double *ref_gpu = (double *)host_alloc((size_t)nw * 8);
        for (int64_t i = 0; i < nx; i++) hx[i] = randn_host();
        for (int64_t i = 0; i < ny; i++) hg[i] = randn_host();
        reference_cpu(&p, hx, hg, tf32, ref, mag);
        float *dx, *dg, *dw;
        CUDA_CHECK(cudaMalloc(&dx, (size_t)nx * 4));
        CUDA_CHECK(cudaMalloc(&dg, (size_t)ny * 4));
        CUDA_CHECK(cudaMalloc(&dw, (size_t)nw * 4));
        CUDA_CHECK(cudaMemcpy(dx, hx, (size_t)nx * 4, cudaMemcpyHostToDevice));
        CUDA_CHECK(cudaMemcpy(dg, hg, (size_t)ny * 4, cudaMemcpyHostToDevice));
        printf("  x (%lld,%lld,%lld,%lld) k%lldx%lld s%lldx%lld p%lldx%lld d%lldx%lld op%lldx%lld g%lld:",
               (long long)p.n, (long long)p.c_in, (long long)p.h_in, (long long)p.w_in, (long long)p.kernel_h,
               (long long)p.kernel_w, (long long)p.stride_h, (long long)p.stride_w, (long long)p.padding_h,
               (long long)p.padding_w, (long long)p.dilation_h, (long long)p.dilation_w,
               (long long)p.output_padding_h, (long long)p.output_padding_w, (long long)p.groups);
        reference_gpu(&p, dx, dg, ref_gpu, tf32);
        double rerr = 0.0;
        for (int64_t i = 0; i < nw; i++) rerr = fmax(rerr, fabs(ref[i] - ref_gpu[i]));
        const bool rok = rerr <= 1e-9;
        printf(" gpu-ref %s", rok ? "ok" : "FAIL");
        failures += !rok;
        for (int v = first; v <= last; v++) {
            runner r;
            if (!runner_open(&r, v, &p, tf32)) {
                printf("  v%d n/a", v);
                continue;
            }
            CUDA_CHECK(cudaMemset(dw, 0xff, (size_t)nw * 4)); /* NaN: every element must be written */
            runner_run(&r, dx, dg, dw);
            CUDA_CHECK(cudaMemcpy(out, dw, (size_t)nw * 4, cudaMemcpyDeviceToHost));
            runner_run(&r, dx, dg, dw);
            CUDA_CHECK(cudaMemcpy(out2, dw, (size_t)nw * 4, cudaMemcpyDeviceToHost));
            runner_close(&r);
            const double e = max_abs_err(out, ref, nw);
            const double ratio = worst_bound_ratio(out, ref, mag, nw, p.n * p.h_in * p.w_in);
            const bool same = !memcmp(out, out2, (size_t)nw * 4);
            const bool ok = ratio <= 1.0 && same;
            printf("  v%d %.1e", v, e);
            if (ratio > 1.0) printf(" FAIL (%.3g x the bound)", ratio);
            if (!same) printf(" FAIL (not repeatable)");
            failures += !ok;
        }
        printf("\n");
        CUDA_CHECK(cudaFree(dx));
        CUDA_CHECK(cudaFree(dg));
        CUDA_CHECK(cudaFree(dw));
        free(hx);
        free(hg);
        free(out);
        free(out2);
        free(ref);
        free(mag);
        free(ref_gpu);
    }
    return failures;
}

/* Times versions first .. last on the seed shape, inputs drawn from rng_seed, against the
 * float64 GPU reference. */
static void time_seed(int first, int last, bool tf32, uint32_t rng_seed)
{
    tconv_problem p = {8, 64, 1024, 1024, 64, 3, 3, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0};
    TCONV_CHECK(tconv_problem_check(&p));
    const int64_t nx = tconv_x_elems(&p), ny = tconv_y_elems(&p), nw = tconv_weight_elems(&p);
    printf("\nseed: x (8,64,1024,1024), grad_y (8,64,%lld,%lld), k3 s1 p0, N(0,1) data, %.1f GFLOP\n",
           (long long)p.h_out, (long long)p.w_out, gflop(&p));
    float *dx, *dg, *dw, *flush;
    CUDA_CHECK(cudaMalloc(&dx, (size_t)nx * 4));
    CUDA_CHECK(cudaMalloc(&dg, (size_t)ny * 4));
    CUDA_CHECK(cudaMalloc(&dw, (size_t)nw * 4));
    const size_t flush_bytes = (size_t)256 << 20;
    CUDA_CHECK(cudaMalloc(&flush, flush_bytes));
    randn_kernel<<<4096, 256>>>(dx, nx, rng_seed);
    randn_kernel<<<4096, 256>>>(dg, ny, rng_seed + 1);
    CUDA_CHECK(cudaGetLastError());
    double *ref = (double *)host_alloc((size_t)nw * 8);
    float *out = (float *)host_alloc((size_t)nw * 4);
    cudaEvent_t start, stop;
    CUDA_CHECK(cudaEventCreate(&start));
    CUDA_CHECK(cudaEventCreate(&stop));
    CUDA_CHECK(cudaEventRecord(start));
    reference_gpu(&p, dx, dg, ref, tf32);
    CUDA_CHECK(cudaEventRecord(stop));
    CUDA_CHECK(cudaEventSynchronize(stop));
    float ref_ms = 0.0f;
    CUDA_CHECK(cudaEventElapsedTime(&ref_ms, start, stop));
    double ref_max = 0.0;
    for (int64_t i = 0; i < nw; i++) ref_max = fmax(ref_max, fabs(ref[i]));
    printf("float64 reference: %.0f ms, max |grad_weight| %.1f\n", ref_ms, ref_max);
    printf("targets (H100, FP32): <= 14 ms; cuDNN FP32 23.9 ms, cuDNN TF32 9.18 ms; "
           "cuDNN-FP32 error 0.002-0.025\n");
    printf("%-35s %10s %10s %12s\n", "version", "ms", "TFLOP/s", "max |error|");
    enum { REPEATS = 5 };
    for (int v = first; v <= last; v++) {
        runner r;
        if (!runner_open(&r, v, &p, tf32)) {
            printf("%2d %-32s n/a\n", v, version_name[v]);
            continue;
        }
        float warm_ms = 0.0f, ms[REPEATS];
        CUDA_CHECK(cudaEventRecord(start));
        runner_run(&r, dx, dg, dw); /* the warm-up, and the result checked */
        CUDA_CHECK(cudaEventRecord(stop));
        CUDA_CHECK(cudaEventSynchronize(stop));
        CUDA_CHECK(cudaEventElapsedTime(&warm_ms, start, stop));
        CUDA_CHECK(cudaMemcpy(out, dw, (size_t)nw * 4, cudaMemcpyDeviceToHost));
        const double e = max_abs_err(out, ref, nw);
        const int repeats = warm_ms > 1000.0f ? 1 : REPEATS;
        for (int k = 0; k < repeats; k++) {
            CUDA_CHECK(cudaMemset(flush, k, flush_bytes));
            CUDA_CHECK(cudaEventRecord(start));
            runner_run(&r, dx, dg, dw);
            CUDA_CHECK(cudaEventRecord(stop));
            CUDA_CHECK(cudaEventSynchronize(stop));
            CUDA_CHECK(cudaEventElapsedTime(&ms[k], start, stop));
        }
        runner_close(&r);
        qsort(ms, (size_t)repeats, sizeof(float), compare_float);
        const float med = ms[repeats / 2];
        printf("%2d %-32s %10.2f %10.1f %12.2e\n", v, version_name[v], med, gflop(&p) / med, e);
    }
    CUDA_CHECK(cudaEventDestroy(start));
    CUDA_CHECK(cudaEventDestroy(stop));
    CUDA_CHECK(cudaFree(dx));
    CUDA_CHECK(cudaFree(dg));
    CUDA_CHECK(cudaFree(dw));
    CUDA_CHECK(cudaFree(flush));
    free(ref);
    free(out);
}

int main(int argc, char **argv)
{
    find_versions();
    int only = 0;
    bool tf32 = false, seed_shape = true;
    uint32_t rng_seed = (uint32_t)time(NULL);
    for (int a = 1; a < argc; a++) {
        if (!strcmp(argv[a], "--list")) {
            for (int v = 1; v <= version_count; v++) printf("%2d %s\n", v, version_name[v]);
            return 0;
        }
        if (!strcmp(argv[a], "--tf32")) {
            tf32 = true;
        } else if (!strcmp(argv[a], "--no-seed")) {
            seed_shape = false;
        } else if (!strcmp(argv[a], "--rng")) {
            if (a + 1 == argc) {
                fprintf(stderr, "%s: --rng takes the number a run printed\n", argv[0]);
                return 2;
            }
            rng_seed = (uint32_t)strtoul(argv[++a], NULL, 10);
        } else {
            char *end;
            const long number = strtol(argv[a], &end, 10);
            only = 0;
            for (int v = 1; v <= version_count; v++)
                if ((*end == '\0' && number == v) || !strcmp(argv[a], version_name[v])) only = v;
            if (!only) {
                fprintf(stderr, "%s: no version %s (--list prints them)\n", argv[0], argv[a]);
                return 2;
            }
        }
    }
    cudaDeviceProp prop;
    CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    printf("device: %s, %d SMs; products: %s; random inputs: --rng %u\n", prop.name, prop.multiProcessorCount,
           tf32 ? "TF32 (operands rounded to nearest)" : "FP32", rng_seed);
    rng_state = 0x9e3779b97f4a7c15ull ^ rng_seed;
    const int first = only ? only : 1, last = only ? only : version_count;

    printf("\nchecks (max |error| vs float64 CPU reference; within test_cuda's bound; bitwise repeatability):\n");
    const int failures = check_small_problems(first, last, tf32);
    printf("%s\n", failures ? "CHECKS FAILED" : "all checks OK");
    if (seed_shape) time_seed(first, last, tf32, rng_seed);
    return failures != 0;
}
