/*
 * grad_input_direct.cu - grad-input by the direct-correlation engine (src/cuda/direct): residue
 * planes, shared-memory halo tiles, FP32 FMA (TF32-rounded operands in tf32 mode).
 *
 * Tiles are named input channels x pixels per CTA; the wide ones only take problems with
 * enough input channels per group to fill them.  wgmma_tf32_64x768 runs the same engine on
 * Hopper's warpgroup mma (sm_90a builds, 9.0 devices) and tf32_64x256 on TF32 tensor cores
 * (mma.sync), both for float32 in tf32 mode; wgmma_3xfp16_64x256 (sm_90a; three FP16 products of
 * split operands) and 3xtf32_64x256 (three TF32 products) for float32 in fp32 mode; the FMA
 * tiles take every dtype and both precisions.
 */
#include "cuda/direct/plan.cuh"

typedef direct_tile<8, 8, 1> tile_64x256;
typedef direct_tile<4, 4, 2> tile_16x512;
typedef direct_tile<4, 1, 4> tile_4x1024;

static int can_wgmma_tf32_64x768(const tconv_problem *p, const tconv_config *c) { return direct_can_implement<DIRECT_GRAD_INPUT, direct_wgmma_tile>(p, c, 24); }
static int can_tf32_64x256(const tconv_problem *p, const tconv_config *c) { return direct_can_implement<DIRECT_GRAD_INPUT, direct_tf32_tile>(p, c, 24); }
static int can_wgmma_3xfp16_64x256(const tconv_problem *p, const tconv_config *c) { return direct_can_implement<DIRECT_GRAD_INPUT, direct_wgmma_3xfp16_tile>(p, c, 24); }
static int can_3xtf32_64x256(const tconv_problem *p, const tconv_config *c) { return direct_can_implement<DIRECT_GRAD_INPUT, direct_3xtf32_tile>(p, c, 24); }
static int can_64x256(const tconv_problem *p, const tconv_config *c) { return direct_can_implement<DIRECT_GRAD_INPUT, tile_64x256>(p, c, 24); }
static int can_16x512(const tconv_problem *p, const tconv_config *c) { return direct_can_implement<DIRECT_GRAD_INPUT, tile_16x512>(p, c, 5); }
static int can_4x1024(const tconv_problem *p, const tconv_config *c) { return direct_can_implement<DIRECT_GRAD_INPUT, tile_4x1024>(p, c, 1); }

const tconv_variant tconv_variant_grad_input_direct_wgmma_tf32_64x768 = {"grad_input_direct_wgmma_tf32_64x768", TCONV_PASS_GRAD_INPUT, can_wgmma_tf32_64x768,
                                                  direct_workspace<DIRECT_GRAD_INPUT, direct_wgmma_tile>, direct_run<DIRECT_GRAD_INPUT, direct_wgmma_tile>};
const tconv_variant tconv_variant_grad_input_direct_tf32_64x256 = {"grad_input_direct_tf32_64x256", TCONV_PASS_GRAD_INPUT, can_tf32_64x256,
                                                  direct_workspace<DIRECT_GRAD_INPUT, direct_tf32_tile>, direct_run<DIRECT_GRAD_INPUT, direct_tf32_tile>};
const tconv_variant tconv_variant_grad_input_direct_wgmma_3xfp16_64x256 = {"grad_input_direct_wgmma_3xfp16_64x256", TCONV_PASS_GRAD_INPUT, can_wgmma_3xfp16_64x256,
                                                  direct_workspace<DIRECT_GRAD_INPUT, direct_wgmma_3xfp16_tile>, direct_run<DIRECT_GRAD_INPUT, direct_wgmma_3xfp16_tile>};
const tconv_variant tconv_variant_grad_input_direct_3xtf32_64x256 = {"grad_input_direct_3xtf32_64x256", TCONV_PASS_GRAD_INPUT, can_3xtf32_64x256,
                                                  direct_workspace<DIRECT_GRAD_INPUT, direct_3xtf32_tile>, direct_run<DIRECT_GRAD_INPUT, direct_3xtf32_tile>};
const tconv_variant tconv_variant_grad_input_direct_64x256 = {"grad_input_direct_64x256", TCONV_PASS_GRAD_INPUT, can_64x256,
                                             direct_workspace<DIRECT_GRAD_INPUT, tile_64x256>, direct_run<DIRECT_GRAD_INPUT, tile_64x256>};
const tconv_variant tconv_variant_grad_input_direct_16x512 = {"grad_input_direct_16x512", TCONV_PASS_GRAD_INPUT, can_16x512,
                                             direct_workspace<DIRECT_GRAD_INPUT, tile_16x512>, direct_run<DIRECT_GRAD_INPUT, tile_16x512>};
const tconv_variant tconv_variant_grad_input_direct_4x1024 = {"grad_input_direct_4x1024", TCONV_PASS_GRAD_INPUT, can_4x1024,
                                             direct_workspace<DIRECT_GRAD_INPUT, tile_4x1024>, direct_run<DIRECT_GRAD_INPUT, tile_4x1024>};
