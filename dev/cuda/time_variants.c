/*
 * time_variants.c - times every CUDA variant of every pass through the C API, forced by
 * name, on one problem (the seed shape by default), in both precisions.
 *
 *   make build/time_variants
 *   build/time_variants                      seed shape, every variant but the naive ones
 *   build/time_variants N,C_in,H,W,C_out,k,stride,padding [name]   another problem / one variant
 *   build/time_variants NAME|TAG [name]      the problems of tests/problems.txt so named or tagged
 *   build/time_variants seed grad_weight_direct_32x32 1            one run, for a profiler
 *
 * Timing: CUDA events around one call, a 256 MiB memset before each run to flush L2, one
 * warm-up, median of 7 runs.  TFLOP/s = 2 N C_in (C_out/groups) H_in W_in kH kW / time.
 * Inputs are uniform in [-0.5, 0.5), never zeros.  Correctness is the tests' job
 * (tests/c/test_cuda.c); this only measures.
 */
#include <cuda_runtime_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h" /* read_problems */
#include "tconv.h"

#define CHECK_CUDA(call)                                                                    \
    do {                                                                                    \
        cudaError_t err_ = (call);                                                          \
        if (err_ != cudaSuccess) {                                                          \
            fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, cudaGetErrorString(err_));   \
            exit(1);                                                                        \
        }                                                                                   \
    } while (0)

enum { REPS = 7, FLUSH_BYTES = 256 << 20 };

/* n uniform floats in [-0.5, 0.5) on the device */
static float *device_random(size_t n, unsigned seed)
{
    float *host = malloc(n * sizeof(float)), *dev;
    if (!host) {
        fprintf(stderr, "out of host memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        host[i] = (float)(seed >> 8) * (1.0f / 16777216.0f) - 0.5f;
    }
    CHECK_CUDA(cudaMalloc((void **)&dev, n * sizeof(float)));
    CHECK_CUDA(cudaMemcpy(dev, host, n * sizeof(float), cudaMemcpyHostToDevice));
    free(host);
    return dev;
}

static int compare_float(const void *a, const void *b)
{
    const float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Times every variant (or `only`) that takes p, in both precisions, `reps` runs each; prints
 * a line per variant and precision, prefixed with `label`. */
static void time_problem(const char *label, tconv_problem p, const char *only, int reps)
{
    const tconv_status st = tconv_problem_check(&p);
    if (st != TCONV_SUCCESS) {
        fprintf(stderr, "%s: %s\n", label, tconv_status_string(st));
        exit(2);
    }
    const size_t nx = (size_t)(p.n * p.c_in * p.h_in * p.w_in), ny = (size_t)(p.n * p.c_out * p.h_out * p.w_out);
    const size_t nw = (size_t)(p.c_in * (p.c_out / p.groups) * p.kernel_h * p.kernel_w);
    float *x = device_random(nx, 1), *y = device_random(ny, 2), *weight = device_random(nw, 3);
    float *grad_weight = device_random(nw, 4), *grad_bias = device_random((size_t)p.c_out, 5);
    void *flush;
    CHECK_CUDA(cudaMalloc(&flush, FLUSH_BYTES));
    const double flop = 2.0 * p.n * p.c_in * (p.c_out / p.groups) * p.h_in * p.w_in * p.kernel_h * p.kernel_w;
    cudaEvent_t start, stop;
    CHECK_CUDA(cudaEventCreate(&start));
    CHECK_CUDA(cudaEventCreate(&stop));

    tconv_pass pass;
    for (int i = 0; tconv_cuda_variant(i, &pass) != NULL; i++) {
        const char *name = tconv_cuda_variant(i, &pass);
        if (only ? strcmp(only, name) != 0 : strstr(name, "naive") != NULL)
            continue; /* the naive variants take seconds on the seed: only when named */
        for (int precision = TCONV_PRECISION_FP32; precision <= TCONV_PRECISION_TF32; precision++) {
            const tconv_config config = {TCONV_FLOAT32, (tconv_precision)precision, name};
            const char *chosen;
            if (tconv_cuda_algorithm(&p, pass, &config, &chosen) != TCONV_SUCCESS)
                continue; /* the variant does not take this problem */
            size_t bytes = 0;
            void *workspace = NULL;
            tconv_cuda_workspace_size(&p, pass, &config, &bytes);
            if (bytes)
                CHECK_CUDA(cudaMalloc(&workspace, bytes));
            float ms[REPS];
            tconv_status status = TCONV_SUCCESS;
            for (int r = -1; r < reps && status == TCONV_SUCCESS; r++) {
                CHECK_CUDA(cudaMemsetAsync(flush, r & 0xff, FLUSH_BYTES, 0));
                CHECK_CUDA(cudaEventRecord(start, 0));
                switch (pass) {
                case TCONV_PASS_FORWARD:
                    status = tconv_forward_cuda(&p, &config, x, weight, NULL, y, workspace, bytes, NULL);
                    break;
                case TCONV_PASS_GRAD_INPUT:
                    status = tconv_grad_input_cuda(&p, &config, y, weight, x, workspace, bytes, NULL);
                    break;
                case TCONV_PASS_GRAD_WEIGHT:
                    status = tconv_grad_weight_cuda(&p, &config, x, y, grad_weight, workspace, bytes, NULL);
                    break;
                case TCONV_PASS_GRAD_BIAS:
                    status = tconv_grad_bias_cuda(&p, &config, y, grad_bias, workspace, bytes, NULL);
                    break;
                }
                CHECK_CUDA(cudaEventRecord(stop, 0));
                CHECK_CUDA(cudaEventSynchronize(stop));
                if (r >= 0)
                    CHECK_CUDA(cudaEventElapsedTime(&ms[r], start, stop));
            }
            if (workspace)
                CHECK_CUDA(cudaFree(workspace));
            if (status != TCONV_SUCCESS) {
                printf("%-18s %-32s %s  %s\n", label, name, precision ? "tf32" : "fp32", tconv_status_string(status));
                continue;
            }
            qsort(ms, (size_t)reps, sizeof(float), compare_float);
            const float median = ms[reps / 2];
            printf("%-18s %-32s %s  %9.3f ms  %6.1f TFLOP/s\n", label, name, precision ? "tf32" : "fp32", median,
                   flop / median / 1e9);
        }
    }
    CHECK_CUDA(cudaFree(x));
    CHECK_CUDA(cudaFree(y));
    CHECK_CUDA(cudaFree(weight));
    CHECK_CUDA(cudaFree(grad_weight));
    CHECK_CUDA(cudaFree(grad_bias));
    CHECK_CUDA(cudaFree(flush));
    CHECK_CUDA(cudaEventDestroy(start));
    CHECK_CUDA(cudaEventDestroy(stop));
}

enum { MAX_PROBLEMS = 256 };

int main(int argc, char **argv)
{
    const char *only = argc > 2 ? argv[2] : NULL;
    const int reps = argc > 3 ? 1 : REPS;
    tconv_problem p = {8, 64, 1024, 1024, 64, 3, 3, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0};
    if (argc == 1 || strcmp(argv[1], "seed") == 0) {
        time_problem("seed", p, only, reps);
        return 0;
    }
    long long v[8];
    if (sscanf(argv[1], "%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6],
               &v[7]) == 8) {
        p.n = v[0], p.c_in = v[1], p.h_in = v[2], p.w_in = v[3], p.c_out = v[4];
        p.kernel_h = p.kernel_w = v[5], p.stride_h = p.stride_w = v[6], p.padding_h = p.padding_w = v[7];
        time_problem(argv[1], p, only, reps);
        return 0;
    }
    /* a tag of the problem list, else a problem's name */
    static tconv_problem problems[MAX_PROBLEMS];
    static char names[MAX_PROBLEMS][64];
    int count = read_problems(argv[1], problems, names, MAX_PROBLEMS), timed = 0;
    const int tag = count > 0;
    if (!tag)
        count = read_problems(NULL, problems, names, MAX_PROBLEMS);
    for (int i = 0; i < count; i++) {
        if (!tag && strcmp(names[i], argv[1]) != 0)
            continue;
        time_problem(names[i], problems[i], only, reps);
        timed++;
    }
    if (timed == 0) {
        fprintf(stderr, "usage: %s [seed | N,C_in,H,W,C_out,k,stride,padding | NAME | TAG] [variant] [1]\n", argv[0]);
        return 2;
    }
    return 0;
}
