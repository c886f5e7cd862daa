/*
 * device.h - what the C programs that drive the CUDA entry points share (test_threads with
 * TCONV_TEST_CUDA, run_variants): the dtype cases, small problems that reach every kind of
 * variant, random finite inputs in each dtype's bits, and CUDA calls that stop the program
 * when they fail.  Needs check.h's RNG.
 */
#ifndef TCONV_TESTS_DEVICE_H
#define TCONV_TESTS_DEVICE_H

#include <cuda_runtime_api.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "tconv.h"

typedef struct dtype_mode {
    const char *name;
    tconv_dtype dtype;
    tconv_precision precision;
} dtype_mode;

static const dtype_mode dtype_modes[] = {
    {"float32/fp32", TCONV_FLOAT32, TCONV_PRECISION_FP32},
    {"float32/tf32", TCONV_FLOAT32, TCONV_PRECISION_TF32},
    {"float64", TCONV_FLOAT64, TCONV_PRECISION_FP32},
    {"float16", TCONV_FLOAT16, TCONV_PRECISION_FP32},
    {"bfloat16", TCONV_BFLOAT16, TCONV_PRECISION_FP32},
};
enum { DTYPE_MODES = sizeof dtype_modes / sizeof dtype_modes[0] };

static inline size_t dtype_bytes(tconv_dtype dtype)
{
    return dtype == TCONV_FLOAT64 ? 8 : dtype == TCONV_FLOAT32 ? 4 : 2;
}

static inline void cuda_or_exit(cudaError_t err, const char *what)
{
    if (err != cudaSuccess) {
        fprintf(stderr, "%s: %s\n", what, cudaGetErrorString(err));
        exit(2);
    }
}

static inline void *host_or_exit(size_t bytes)
{
    void *ptr = malloc(bytes > 0 ? bytes : 1);
    if (ptr == NULL) {
        fprintf(stderr, "out of host memory\n");
        exit(2);
    }
    return ptr;
}

/* `count` random values of dtype, written as its bits: magnitudes in [1/8, 2), either sign
 * (an exponent of -3..0 and random significand bits), so every value is finite and normal. */
static inline void random_bits(tconv_dtype dtype, int64_t count, void *dst)
{
    for (int64_t i = 0; i < count; i++) {
        const uint64_t r = rng_next(), sign = r & 1, e = (r >> 1) % 4, m = r >> 8;
        switch (dtype) {
        case TCONV_FLOAT32:
            ((uint32_t *)dst)[i] = (uint32_t)(sign << 31 | (124 + e) << 23 | (m & 0x7fffff));
            break;
        case TCONV_FLOAT64:
            ((uint64_t *)dst)[i] = sign << 63 | (1020 + e) << 52 | (m & 0xfffffffffffffull);
            break;
        case TCONV_FLOAT16: ((uint16_t *)dst)[i] = (uint16_t)(sign << 15 | (12 + e) << 10 | (m & 0x3ff)); break;
        case TCONV_BFLOAT16: ((uint16_t *)dst)[i] = (uint16_t)(sign << 15 | (124 + e) << 7 | (m & 0x7f)); break;
        }
    }
}

/* A device buffer of `count` random values of dtype (at least one byte, so that a pointer
 * to an empty tensor is still valid). */
static inline void *device_random(tconv_dtype dtype, int64_t count)
{
    const size_t bytes = (size_t)count * dtype_bytes(dtype);
    void *host = host_or_exit(bytes), *dev;
    random_bits(dtype, count, host);
    cuda_or_exit(cudaMalloc(&dev, bytes > 0 ? bytes : 1), "cudaMalloc");
    cuda_or_exit(cudaMemcpy(dev, host, bytes, cudaMemcpyHostToDevice), "cudaMemcpy");
    free(host);
    return dev;
}

/* The problems of tests/problems.txt tagged variants: small enough for racecheck, each tile
 * kind's smallest and odd shapes the naive and FMA kernels take; read by small_problems_load(). */
enum { MAX_SMALL_PROBLEMS = 64 };
static tconv_problem small_problems[MAX_SMALL_PROBLEMS];
static int small_count;

static inline void small_problems_load(void)
{
    small_count = read_problems("variants", small_problems, NULL, MAX_SMALL_PROBLEMS);
    if (small_count == 0) {
        fprintf(stderr, "no problem tagged variants in %s\n", problems_path());
        exit(2);
    }
}

/* The number of CUDA devices the runtime finds (0 without a driver). */
static inline int cuda_device_count(void)
{
    int devices = 0;
    return cudaGetDeviceCount(&devices) == cudaSuccess ? devices : 0;
}

#endif /* TCONV_TESTS_DEVICE_H */
