/*
 * run_variants.c - each CUDA variant run once, forced by name (config.algorithm), on the first
 * small problem of a list that it accepts, in every dtype (float32 in both precisions) it
 * accepts: the program that compute-sanitizer's memcheck, racecheck, initcheck and synccheck
 * run variant by variant (scripts/gpu_test.sh); the problems are the problems of tests/problems.txt tagged variants (device.h).
 *
 *   build/run_variants --list       the variants' names, one a line, in dispatch order
 *   build/run_variants [NAME...]    runs the named variants (default: every one)
 *
 * Inputs are written in full (random finite values); outputs and workspaces are left as
 * cudaMalloc gives them, exactly their size, so that memcheck reports an access past them
 * and initcheck a kernel that reads them before writing.  Prints what ran; exits non-zero
 * when a call or CUDA fails, a name is unknown, or a variant accepts none of the problems
 * (except a wgmma variant on a device without sm_90a kernels, which says so).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "device.h"
#include "tconv.h"

static int64_t output_elems(tconv_pass pass, const tconv_problem *p)
{
    const int64_t counts[] = {tconv_y_elems(p), tconv_x_elems(p), tconv_weight_elems(p), p->c_out};
    return counts[pass];
}

/* One call of `pass` of p under c (its variant named): 1 on success. */
static int run_once(tconv_pass pass, const tconv_problem *p, const tconv_config *c)
{
    size_t ws_bytes = 0;
    if (tconv_cuda_workspace_size(p, pass, c, &ws_bytes) != TCONV_SUCCESS)
        return 0;
    void *x = device_random(c->dtype, tconv_x_elems(p));
    void *weight = device_random(c->dtype, tconv_weight_elems(p));
    void *bias = device_random(c->dtype, p->c_out);
    void *grad_y = device_random(c->dtype, tconv_y_elems(p));
    void *out = NULL, *ws = NULL;
    cuda_or_exit(cudaMalloc(&out, (size_t)output_elems(pass, p) * dtype_bytes(c->dtype)), "cudaMalloc");
    if (ws_bytes > 0)
        cuda_or_exit(cudaMalloc(&ws, ws_bytes), "cudaMalloc");
    tconv_status st = TCONV_INVALID_PASS;
    switch (pass) {
    case TCONV_PASS_FORWARD: st = tconv_forward_cuda(p, c, x, weight, bias, out, ws, ws_bytes, NULL); break;
    case TCONV_PASS_GRAD_INPUT: st = tconv_grad_input_cuda(p, c, grad_y, weight, out, ws, ws_bytes, NULL); break;
    case TCONV_PASS_GRAD_WEIGHT: st = tconv_grad_weight_cuda(p, c, x, grad_y, out, ws, ws_bytes, NULL); break;
    case TCONV_PASS_GRAD_BIAS: st = tconv_grad_bias_cuda(p, c, grad_y, out, ws, ws_bytes, NULL); break;
    }
    const cudaError_t err = cudaDeviceSynchronize();
    if (st != TCONV_SUCCESS || err != cudaSuccess)
        fprintf(stderr, "%s %d: %s, %s\n", c->algorithm, (int)c->dtype, tconv_status_string(st),
                cudaGetErrorString(err));
    void *const buffers[6] = {x, weight, bias, grad_y, out, ws};
    for (int i = 0; i < 6; i++)
        cudaFree(buffers[i]);
    return st == TCONV_SUCCESS && err == cudaSuccess;
}

/* Runs variant v in every dtype mode it accepts on some problem; 0 when something failed. */
static int run_variant(int v, int hopper)
{
    tconv_pass pass;
    const char *name = tconv_cuda_variant(v, &pass);
    char desc[256];
    int ran = 0, ok = 1;
    for (int m = 0; m < DTYPE_MODES; m++) {
        const tconv_config c = {dtype_modes[m].dtype, dtype_modes[m].precision, name};
        for (int i = 0; i < small_count; i++) {
            tconv_problem p = small_problems[i];
            const char *chosen;
            if (tconv_problem_check(&p) != TCONV_SUCCESS ||
                tconv_cuda_algorithm(&p, pass, &c, &chosen) != TCONV_SUCCESS)
                continue;
            const int good = run_once(pass, &p, &c);
            printf("%s %s: %s; %s\n", name, dtype_modes[m].name, good ? "ran" : "FAILED",
                   problem_string(&p, desc));
            ok &= good;
            ran++;
            break;
        }
    }
    if (ran == 0 && strstr(name, "wgmma") != NULL && !hopper) {
        printf("%s: no sm_90a kernels for this device, not run\n", name);
        return 1;
    }
    if (ran == 0)
        fprintf(stderr, "%s accepts none of the problems: add one it takes\n", name);
    return ok && ran > 0;
}

int main(int argc, char **argv)
{
    small_problems_load();
    if (argc == 2 && strcmp(argv[1], "--list") == 0) {
        for (int v = 0; tconv_cuda_variant(v, NULL) != NULL; v++)
            printf("%s\n", tconv_cuda_variant(v, NULL));
        return 0;
    }
    if (!tconv_cuda_available() || cuda_device_count() == 0) {
        fprintf(stderr, "run_variants: no usable CUDA device or no CUDA build\n");
        return 2;
    }
    struct cudaDeviceProp prop;
    cuda_or_exit(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
    const int hopper = prop.major == 9 && prop.minor == 0;
    test_seed();
    int failed = 0;
    if (argc == 1) {
        for (int v = 0; tconv_cuda_variant(v, NULL) != NULL; v++)
            failed += !run_variant(v, hopper);
    }
    for (int a = 1; a < argc; a++) {
        int v = 0;
        while (tconv_cuda_variant(v, NULL) != NULL && strcmp(tconv_cuda_variant(v, NULL), argv[a]) != 0)
            v++;
        if (tconv_cuda_variant(v, NULL) == NULL) {
            fprintf(stderr, "run_variants: no variant named %s\n", argv[a]);
            failed++;
            continue;
        }
        failed += !run_variant(v, hopper);
    }
    printf("%s\n", failed ? "FAILED" : "all ran");
    return failed ? 1 : 0;
}
