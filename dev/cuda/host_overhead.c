/*
 * host_overhead.c - the host time of one call through the C API on a tiny problem (N 1, 8 -> 8
 * channels, 8 x 8, k3; float32, tf32 mode): a run of a cached plan, and a one-shot call, which
 * makes and drops a plan each time.  Calls are issued back to back without waiting; the time
 * per call is the wall time of issuing them (the host stays ahead of the GPU's kernels of a
 * few microseconds only while it is faster), then the same with a synchronize at the end.
 *
 *   make build/host_overhead && build/host_overhead [CALLS]
 *
 * Prints one line per way of calling: microseconds per call issued, and per call completed.
 */
#include <cuda_runtime_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "tconv.h"

#define CHECK(call, what)                                                                   \
    do {                                                                                    \
        if ((call) != 0) {                                                                  \
            fprintf(stderr, "host_overhead: %s failed\n", what);                            \
            exit(1);                                                                        \
        }                                                                                   \
    } while (0)

static double now_us(void)
{
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return ts.tv_sec * 1e6 + ts.tv_nsec * 1e-3;
}

int main(int argc, char **argv)
{
    const long calls = argc > 1 ? strtol(argv[1], NULL, 10) : 20000;
    tconv_problem p = {1, 8, 8, 8, 8, 3, 3, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0};
    CHECK(tconv_problem_check(&p), "tconv_problem_check");
    const tconv_config config = {TCONV_FLOAT32, TCONV_PRECISION_TF32, NULL};
    const size_t x_bytes = 8 * 8 * 8 * sizeof(float), w_bytes = 8 * 8 * 9 * sizeof(float);
    const size_t y_bytes = 8 * 10 * 10 * sizeof(float);
    void *x, *w, *y, *ws = NULL;
    CHECK(cudaMalloc(&x, x_bytes), "cudaMalloc");
    CHECK(cudaMalloc(&w, w_bytes), "cudaMalloc");
    CHECK(cudaMalloc(&y, y_bytes), "cudaMalloc");
    CHECK(cudaMemset(x, 0, x_bytes) || cudaMemset(w, 0, w_bytes), "cudaMemset");
    tconv_plan *plan;
    size_t bytes = 0;
    const char *name = NULL;
    CHECK(tconv_plan_create(&plan, &p, TCONV_PASS_FORWARD, &config), "tconv_plan_create");
    CHECK(tconv_plan_workspace_size(plan, &bytes), "tconv_plan_workspace_size");
    CHECK(tconv_plan_algorithm(plan, &name), "tconv_plan_algorithm");
    if (bytes > 0)
        CHECK(cudaMalloc(&ws, bytes), "cudaMalloc");
    printf("problem: N 1, 8 -> 8 channels, 8 x 8, k3, float32 tf32 mode; %s, workspace %zu bytes\n", name, bytes);

    for (int way = 0; way < 2; way++) {
        for (long i = 0; i < 100; i++) /* warm-up */
            CHECK(way ? tconv_forward_cuda(&p, &config, x, w, NULL, y, ws, bytes, NULL)
                      : tconv_plan_forward(plan, &p, x, w, NULL, y, ws, bytes, NULL),
                  "warm-up");
        CHECK(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
        const double t0 = now_us();
        for (long i = 0; i < calls; i++)
            CHECK(way ? tconv_forward_cuda(&p, &config, x, w, NULL, y, ws, bytes, NULL)
                      : tconv_plan_forward(plan, &p, x, w, NULL, y, ws, bytes, NULL),
                  "call");
        const double issued = now_us();
        CHECK(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
        const double done = now_us();
        printf("%-24s %8.2f us per call issued, %8.2f us per call completed (%ld calls)\n",
               way ? "tconv_forward_cuda" : "tconv_plan_forward", (issued - t0) / calls, (done - t0) / calls,
               calls);
    }
    CHECK(tconv_plan_destroy(plan), "tconv_plan_destroy");
    return 0;
}
