/*
 * dispatch.cu - the CUDA half of tconv.h: argument checks, the variant table, and the
 * choice of a variant for each call.
 *
 * Every pass walks the one table below in order and runs the first variant whose
 * can_implement() accepts the problem (or the variant named by config->algorithm).  The
 * tests and the benchmarks walk the same table through tconv_cuda_variant().
 */
#include <string.h>

#include "cuda/variant.h"
#include "problem.h"

extern const tconv_variant tconv_variant_forward_naive;
extern const tconv_variant tconv_variant_grad_input_naive;
extern const tconv_variant tconv_variant_grad_weight_naive;
extern const tconv_variant tconv_variant_grad_bias_reduce;

/* Every variant, in order of preference within each pass.  Fast variants go before the
 * naive ones of their pass, which accept every problem and so end each pass's list. */
static const tconv_variant *const variants[] = {
    &tconv_variant_forward_direct_wgmma_tf32_64x768,
    &tconv_variant_forward_direct_tf32_64x256,
    &tconv_variant_forward_direct_wgmma_3xfp16_64x256,
    &tconv_variant_forward_direct_3xtf32_64x256,
    &tconv_variant_forward_direct_64x256,
    &tconv_variant_forward_direct_16x512,
    &tconv_variant_forward_direct_4x1024,
    &tconv_variant_forward_naive,
    &tconv_variant_grad_input_direct_wgmma_tf32_64x768,
    &tconv_variant_grad_input_direct_tf32_64x256,
    &tconv_variant_grad_input_direct_wgmma_3xfp16_64x256,
    &tconv_variant_grad_input_direct_3xtf32_64x256,
    &tconv_variant_grad_input_direct_64x256,
    &tconv_variant_grad_input_direct_16x512,
    &tconv_variant_grad_input_direct_4x1024,
    &tconv_variant_grad_input_naive,
    &tconv_variant_grad_weight_mma_ws_64x32,
    &tconv_variant_grad_weight_mma_64x32,
    &tconv_variant_grad_weight_mma_3xfp16_ws_64x32,
    &tconv_variant_grad_weight_mma_3xfp16_64x32,
    &tconv_variant_grad_weight_fma_64x16,
    &tconv_variant_grad_weight_direct_32x32,
    &tconv_variant_grad_weight_naive,
    /* grad bias */
    &tconv_variant_grad_bias_reduce,
};
enum { VARIANT_COUNT = sizeof(variants) / sizeof(variants[0]) };

/* The cudaError_t behind the last TCONV_ERROR_CUDA of this thread. */
static thread_local int last_cuda_error = 0;

static tconv_status cuda_failure(cudaError_t err)
{
    last_cuda_error = (int)err;
    return TCONV_ERROR_CUDA;
}

extern "C" int tconv_cuda_available(void) { return 1; }

extern "C" int tconv_cuda_last_error(void) { return last_cuda_error; }

extern "C" const char *tconv_cuda_variant(int index, tconv_pass *pass)
{
    if (index < 0 || index >= VARIANT_COUNT)
        return NULL;
    if (pass != NULL)
        *pass = variants[index]->pass;
    return variants[index]->name;
}

/* Checks p (into *checked), config and pass, then picks the variant: the one named by
 * config->algorithm, else the first of the pass that accepts the problem. */
static tconv_status choose_variant(const tconv_problem *p, tconv_pass pass,
                                   const tconv_config *config, tconv_problem *checked,
                                   const tconv_variant **chosen)
{
    tconv_status status = tconv_problem_check_copy(p, checked);
    if (status != TCONV_SUCCESS)
        return status;
    status = tconv_config_check(config);
    if (status != TCONV_SUCCESS)
        return status;
    if (pass != TCONV_PASS_FORWARD && pass != TCONV_PASS_GRAD_INPUT &&
        pass != TCONV_PASS_GRAD_WEIGHT && pass != TCONV_PASS_GRAD_BIAS)
        return TCONV_INVALID_PASS;
    for (int i = 0; i < VARIANT_COUNT; i++) {
        const tconv_variant *v = variants[i];
        if (config->algorithm != NULL) {
            if (strcmp(v->name, config->algorithm) != 0)
                continue;
            if (v->pass != pass || !v->can_implement(checked, config))
                return TCONV_UNSUPPORTED_ALGORITHM;
        } else if (v->pass != pass || !v->can_implement(checked, config)) {
            continue;
        }
        *chosen = v;
        return TCONV_SUCCESS;
    }
    return config->algorithm != NULL ? TCONV_INVALID_ALGORITHM : TCONV_UNSUPPORTED_PROBLEM;
}

extern "C" tconv_status tconv_cuda_algorithm(const tconv_problem *p, tconv_pass pass,
                                             const tconv_config *config, const char **name)
{
    if (name == NULL)
        return TCONV_INVALID_POINTER;
    tconv_problem checked;
    const tconv_variant *v;
    tconv_status status = choose_variant(p, pass, config, &checked, &v);
    if (status == TCONV_SUCCESS)
        *name = v->name;
    return status;
}

extern "C" tconv_status tconv_cuda_workspace_size(const tconv_problem *p, tconv_pass pass,
                                                  const tconv_config *config, size_t *bytes)
{
    if (bytes == NULL)
        return TCONV_INVALID_POINTER;
    tconv_problem checked;
    const tconv_variant *v;
    tconv_status status = choose_variant(p, pass, config, &checked, &v);
    if (status == TCONV_SUCCESS)
        *bytes = v->workspace_size(&checked, config);
    return status;
}

static size_t element_size(tconv_dtype dtype)
{
    return dtype == TCONV_FLOAT64 ? 8 : dtype == TCONV_FLOAT32 ? 4 : 2;
}

/* A tensor's pointer may be NULL only when the tensor is empty (as PyTorch's are). */
static int missing(const void *ptr, int64_t elems) { return ptr == NULL && elems > 0; }

/* The common path of the four passes: args holds the caller's tensors; args->p and
 * args->config are the caller's, not yet checked. */
static tconv_status run_pass(tconv_pass pass, tconv_args *args, size_t workspace_bytes)
{
    tconv_problem checked;
    const tconv_variant *v;
    tconv_status status = choose_variant(args->p, pass, args->config, &checked, &v);
    if (status != TCONV_SUCCESS)
        return status;
    args->p = &checked;

    const int64_t x_elems = tconv_x_elems(&checked), y_elems = tconv_y_elems(&checked);
    const int64_t w_elems = tconv_weight_elems(&checked);
    int bad = 0;
    switch (pass) {
    case TCONV_PASS_FORWARD:
        bad = missing(args->x, x_elems) || missing(args->weight, w_elems) || missing(args->y, y_elems);
        break;
    case TCONV_PASS_GRAD_INPUT:
        bad = missing(args->grad_y, y_elems) || missing(args->weight, w_elems) ||
              missing(args->grad_x, x_elems);
        break;
    case TCONV_PASS_GRAD_WEIGHT:
        bad = missing(args->x, x_elems) || missing(args->grad_y, y_elems) ||
              missing(args->grad_weight, w_elems);
        break;
    case TCONV_PASS_GRAD_BIAS:
        bad = missing(args->grad_y, y_elems) || missing(args->grad_bias, checked.c_out);
        break;
    }
    if (bad)
        return TCONV_INVALID_POINTER;

    if (checked.n == 0) {
        /* no batch: y and grad_x are empty, the sums of grad_weight and grad_bias are 0 */
        cudaError_t err = cudaSuccess;
        const size_t size = element_size(args->config->dtype);
        if (pass == TCONV_PASS_GRAD_WEIGHT)
            err = cudaMemsetAsync(args->grad_weight, 0, (size_t)w_elems * size, args->stream);
        else if (pass == TCONV_PASS_GRAD_BIAS)
            err = cudaMemsetAsync(args->grad_bias, 0, (size_t)checked.c_out * size, args->stream);
        return err == cudaSuccess ? TCONV_SUCCESS : cuda_failure(err);
    }
    /* (no workspace is needed for the empty batch above) */
    const size_t needed = v->workspace_size(&checked, args->config);
    if (needed > 0 && (args->workspace == NULL || workspace_bytes < needed))
        return TCONV_INVALID_WORKSPACE;
    const cudaError_t err = v->launch(args);
    return err == cudaSuccess ? TCONV_SUCCESS : cuda_failure(err);
}

/* The arguments every pass has; the entry points add their tensors. */
static tconv_args call_args(const tconv_problem *p, const tconv_config *config, void *workspace,
                            struct CUstream_st *stream)
{
    tconv_args args = {};
    args.p = p;
    args.config = config;
    args.workspace = workspace;
    args.stream = stream;
    return args;
}

extern "C" tconv_status tconv_forward_cuda(const tconv_problem *p, const tconv_config *config,
                                           const void *x, const void *weight, const void *bias,
                                           void *y, void *workspace, size_t workspace_bytes,
                                           struct CUstream_st *stream)
{
    tconv_args args = call_args(p, config, workspace, stream);
    args.x = x;
    args.weight = weight;
    args.bias = bias;
    args.y = y;
    return run_pass(TCONV_PASS_FORWARD, &args, workspace_bytes);
}

extern "C" tconv_status tconv_grad_input_cuda(const tconv_problem *p, const tconv_config *config,
                                              const void *grad_y, const void *weight, void *grad_x,
                                              void *workspace, size_t workspace_bytes,
                                              struct CUstream_st *stream)
{
    tconv_args args = call_args(p, config, workspace, stream);
    args.grad_y = grad_y;
    args.weight = weight;
    args.grad_x = grad_x;
    return run_pass(TCONV_PASS_GRAD_INPUT, &args, workspace_bytes);
}

extern "C" tconv_status tconv_grad_weight_cuda(const tconv_problem *p, const tconv_config *config,
                                               const void *x, const void *grad_y, void *grad_weight,
                                               void *workspace, size_t workspace_bytes,
                                               struct CUstream_st *stream)
{
    tconv_args args = call_args(p, config, workspace, stream);
    args.x = x;
    args.grad_y = grad_y;
    args.grad_weight = grad_weight;
    return run_pass(TCONV_PASS_GRAD_WEIGHT, &args, workspace_bytes);
}

extern "C" tconv_status tconv_grad_bias_cuda(const tconv_problem *p, const tconv_config *config,
                                             const void *grad_y, void *grad_bias, void *workspace,
                                             size_t workspace_bytes, struct CUstream_st *stream)
{
    tconv_args args = call_args(p, config, workspace, stream);
    args.grad_y = grad_y;
    args.grad_bias = grad_bias;
    return run_pass(TCONV_PASS_GRAD_BIAS, &args, workspace_bytes);
}
