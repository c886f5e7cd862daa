/*
 * variant.h - what every CUDA variant declares, so that the dispatcher, the tests and the
 * benchmarks walk one table (variants.def, dispatch.cu).
 *
 * A variant is one algorithm of one pass with fixed tile parameters, named after both
 * (for example "forward_direct_64x256").  can_implement() says whether it computes a problem
 * correctly on a device, and nothing else; plan() works out, once per problem, what its
 * launches need; launch() queues them.  Where the dispatcher prefers which variant is not the
 * variants' business: dispatch.cu keeps those rules.
 */
#ifndef TCONV_CUDA_VARIANT_H
#define TCONV_CUDA_VARIANT_H

#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>

#include "tconv.h"

/* What a device lends the kernels, queried once per device (tconv_device_caps_of). */
typedef struct tconv_device_caps {
    int ordinal;        /* the CUDA device */
    int cc_major, cc_minor;
    int sms;
    int smem_optin;     /* bytes of shared memory a CTA may opt into */
    int sm90a;          /* this build holds the sm_90a kernels (wgmma, setmaxnreg) and the device
                         * runs them (compute capability 9.0) */
} tconv_device_caps;

/* The capabilities of device `ordinal` into *caps, queried on the first call for the device
 * and kept (device.cu).  Safe from any thread. */
cudaError_t tconv_device_caps_of(int ordinal, const tconv_device_caps **caps);

/* Lets `kernel` launch with up to `bytes` of dynamic shared memory on the current device,
 * which is `ordinal`: sets its limit where the last one set on that device is lower (a plan
 * readies its kernels so; launches set nothing).  Safe from any thread. */
cudaError_t tconv_kernel_smem(const void *kernel, size_t bytes, int ordinal);

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
    void *workspace;              /* the plan's workspace bytes, 256-byte aligned */
    cudaStream_t stream;
} tconv_args;

/* What a variant's plan() keeps for its launches (tiling, grid, kernel choice): its own
 * struct, of at most TCONV_VARIANT_STATE_BYTES (each variant checks with static_assert). */
#define TCONV_VARIANT_STATE_BYTES 512
typedef union tconv_variant_state {
    unsigned char bytes[TCONV_VARIANT_STATE_BYTES];
    double align_double; /* aligned for whatever a variant keeps there */
    int64_t align_int64;
    void *align_pointer;
} tconv_variant_state;

typedef struct tconv_variant {
    const char *name;
    tconv_pass pass;
    /* 1 if this variant computes p correctly under config on a device of caps d, else 0.  No
     * CUDA calls, no side effects. */
    int (*can_implement)(const tconv_problem *p, const tconv_config *config, const tconv_device_caps *d);
    /* For a problem can_implement() accepted: fills *state and *workspace_bytes and readies
     * the kernels it will launch on device d (tconv_kernel_smem); the current device is d.
     * Returns 0 where the device cannot run it after all (no CTA fits an SM, or a count
     * that depends on the device leaves the kernels' ranges), else 1. */
    int (*plan)(const tconv_problem *p, const tconv_config *config, const tconv_device_caps *d, void *state,
                size_t *workspace_bytes);
    /* Queues the work on args->stream from the state plan() filled; returns the launch's
     * error (cudaGetLastError()). */
    cudaError_t (*launch)(const tconv_args *args, const void *state);
} tconv_variant;

/* For the dispatcher's preferences: the channel pairs of grad_weight_direct_32x32's tiles in
 * use (*used) and all of them (*tile), over the whole weight (grad_weight_direct.cu). */
void grad_weight_direct_tile_fill(const tconv_problem *p, int64_t *used, int64_t *tile);

#define TCONV_VARIANT(NAME, RULE) extern const tconv_variant tconv_variant_##NAME;
#include "cuda/variants.def"
#undef TCONV_VARIANT

#endif /* TCONV_CUDA_VARIANT_H */
