/*
 * variant.h - what every CUDA variant of a pass declares, so that the dispatcher, the
 * tests and the benchmarks walk one table (src/cuda/dispatch.cu).
 *
 * A variant is one algorithm of one pass with fixed tile parameters, named after both
 * (for example "forward_direct_64x256").  The dispatcher only runs a variant whose
 * can_implement() accepts the problem; variants are listed in order of preference.
 */
#ifndef TCONV_CUDA_VARIANT_H
#define TCONV_CUDA_VARIANT_H

#include <cuda_runtime.h>

#include "tconv.h"

/* The tensors of one call; the pointers a pass does not use are NULL. */
typedef struct tconv_args {
    const tconv_problem *p;       /* already checked: h_out and w_out are set */
    const tconv_config *config;
    const void *x;                /* (N, C_in, H_in, W_in) */
    const void *weight;           /* (C_in, C_out/groups, kH, kW) */
    const void *bias;             /* (C_out) or NULL */
    const void *grad_y;           /* (N, C_out, H_out, W_out) */
    void *y;                      /* (N, C_out, H_out, W_out) */
    void *grad_x;                 /* (N, C_in, H_in, W_in) */
    void *grad_weight;            /* (C_in, C_out/groups, kH, kW) */
    void *grad_bias;              /* (C_out) */
    void *workspace;              /* workspace_size() bytes, 256-byte aligned */
    cudaStream_t stream;
} tconv_args;

typedef struct tconv_variant {
    const char *name;
    tconv_pass pass;
    /* 1 if this variant computes the problem correctly under config, else 0. */
    int (*can_implement)(const tconv_problem *p, const tconv_config *config);
    /* Bytes of workspace; only called after can_implement() accepted. */
    size_t (*workspace_size)(const tconv_problem *p, const tconv_config *config);
    /* Queues the work on args->stream; returns the launch's error (cudaGetLastError()). */
    cudaError_t (*launch)(const tconv_args *args);
} tconv_variant;

/* Every variant, defined in the file of its name. */
extern const tconv_variant tconv_variant_forward_direct_wgmma_tf32_64x768,
    tconv_variant_forward_direct_tf32_64x256, tconv_variant_forward_direct_wgmma_3xfp16_64x256,
    tconv_variant_forward_direct_3xtf32_64x256,
    tconv_variant_forward_direct_64x256,
    tconv_variant_forward_direct_16x512, tconv_variant_forward_direct_4x1024;
extern const tconv_variant tconv_variant_grad_input_direct_wgmma_tf32_64x768,
    tconv_variant_grad_input_direct_tf32_64x256, tconv_variant_grad_input_direct_wgmma_3xfp16_64x256,
    tconv_variant_grad_input_direct_3xtf32_64x256,
    tconv_variant_grad_input_direct_64x256,
    tconv_variant_grad_input_direct_16x512, tconv_variant_grad_input_direct_4x1024;
extern const tconv_variant tconv_variant_grad_weight_mma_ws_64x32, tconv_variant_grad_weight_mma_64x32,
    tconv_variant_grad_weight_mma_3xfp16_ws_64x32, tconv_variant_grad_weight_mma_3xfp16_64x32;
extern const tconv_variant tconv_variant_grad_weight_fma_64x16, tconv_variant_grad_weight_direct_32x32;

#endif /* TCONV_CUDA_VARIANT_H */
