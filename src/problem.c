/*
 * problem.c - version, status text, and the validation of problems and configs that every
 * entry point runs first.
 */
#include <stddef.h>
#include <stdint.h>

#include "problem.h"
#include "tconv.h"

#define TCONV_STR_(v) #v
#define TCONV_STR(v) TCONV_STR_(v)

const char *tconv_version(void)
{
    return TCONV_STR(TCONV_VERSION_MAJOR) "." TCONV_STR(TCONV_VERSION_MINOR) "." TCONV_STR(
        TCONV_VERSION_PATCH);
}

const char *tconv_status_string(tconv_status status)
{
    switch (status) {
    case TCONV_SUCCESS: return "success";
    case TCONV_INVALID_POINTER: return "invalid argument: a required pointer is NULL";
    case TCONV_INVALID_BATCH_SIZE: return "invalid argument: the batch size N is negative";
    case TCONV_INVALID_CHANNELS: return "invalid argument: C_in and C_out must be at least 1";
    case TCONV_INVALID_GROUPS:
        return "invalid argument: groups must be at least 1 and divide both C_in and C_out";
    case TCONV_INVALID_INPUT_SIZE: return "invalid argument: H_in and W_in must be at least 1";
    case TCONV_INVALID_KERNEL_SIZE: return "invalid argument: kH and kW must be at least 1";
    case TCONV_INVALID_STRIDE: return "invalid argument: stride must be at least 1";
    case TCONV_INVALID_PADDING: return "invalid argument: padding must not be negative";
    case TCONV_INVALID_OUTPUT_PADDING:
        return "invalid argument: output_padding must be non-negative and smaller than "
               "max(stride, dilation) on each axis";
    case TCONV_INVALID_DILATION: return "invalid argument: dilation must be at least 1";
    case TCONV_INVALID_OUTPUT_SIZE:
        return "invalid argument: the computed output size H_out or W_out is less than 1";
    case TCONV_INVALID_DTYPE: return "invalid argument: config->dtype is not a tconv_dtype value";
    case TCONV_INVALID_PRECISION:
        return "invalid argument: config->precision is not a tconv_precision value";
    case TCONV_INVALID_PASS: return "invalid argument: pass is not a tconv_pass value";
    case TCONV_INVALID_ALGORITHM:
        return "invalid argument: config->algorithm names no CUDA variant of this pass";
    case TCONV_INVALID_WORKSPACE:
        return "invalid argument: the workspace is smaller than the queried size, or NULL "
               "with a non-zero size";
    case TCONV_INVALID_PLAN:
        return "invalid argument: the plan is NULL or destroyed, or was made for another pass, "
               "problem or device";
    case TCONV_INVALID_ALIASING:
        return "invalid argument: the output tensor overlaps an input tensor in memory";
    case TCONV_UNSUPPORTED_SIZE:
        return "unsupported: a dimension exceeds 2^31 - 1 or a tensor has more than 2^62 "
               "elements";
    case TCONV_UNSUPPORTED_ALGORITHM:
        return "unsupported: the variant named in config->algorithm cannot implement this "
               "problem";
    case TCONV_UNSUPPORTED_PROBLEM: return "unsupported: no CUDA variant implements this problem";
    case TCONV_UNSUPPORTED_NO_CUDA: return "unsupported: tconv was built without CUDA";
    case TCONV_ERROR_CUDA:
        return "CUDA error: a CUDA call failed (tconv_cuda_last_error() tells which)";
    }
    return "unknown tconv_status value";
}

/* a * b * c * d <= 2^62 for non-negative factors, decided without overflowing. */
static int product_fits(int64_t a, int64_t b, int64_t c, int64_t d)
{
    const int64_t limit = (int64_t)1 << 62;
    int64_t f[4] = {a, b, c, d};
    int64_t prod = 1;
    for (int i = 0; i < 4; i++) {
        if (f[i] == 0)
            return 1;
    }
    for (int i = 0; i < 4; i++) {
        if (prod > limit / f[i])
            return 0;
        prod *= f[i];
    }
    return 1;
}

/* The output side of one axis; every argument is in [0, 2^31 - 1] here, so the largest
 * terms, (in - 1) * stride and dilation * (k - 1), are each below 2^62 and the sum fits. */
static int64_t out_size(int64_t in, int64_t k, int64_t stride, int64_t padding,
                        int64_t output_padding, int64_t dilation)
{
    return (in - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1;
}

static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

tconv_status tconv_problem_check(tconv_problem *p)
{
    const int64_t dim_max = INT32_MAX;
    if (p == NULL)
        return TCONV_INVALID_POINTER;
    if (p->n < 0)
        return TCONV_INVALID_BATCH_SIZE;
    if (p->c_in < 1 || p->c_out < 1)
        return TCONV_INVALID_CHANNELS;
    if (p->groups < 1 || p->c_in % p->groups != 0 || p->c_out % p->groups != 0)
        return TCONV_INVALID_GROUPS;
    if (p->h_in < 1 || p->w_in < 1)
        return TCONV_INVALID_INPUT_SIZE;
    if (p->kernel_h < 1 || p->kernel_w < 1)
        return TCONV_INVALID_KERNEL_SIZE;
    if (p->stride_h < 1 || p->stride_w < 1)
        return TCONV_INVALID_STRIDE;
    if (p->padding_h < 0 || p->padding_w < 0)
        return TCONV_INVALID_PADDING;
    /* compared against both stride and dilation as given, before dilation's own check:
     * max() with a valid stride keeps the bound meaningful either way */
    if (p->output_padding_h < 0 || p->output_padding_w < 0 ||
        p->output_padding_h >= max64(p->stride_h, p->dilation_h) ||
        p->output_padding_w >= max64(p->stride_w, p->dilation_w))
        return TCONV_INVALID_OUTPUT_PADDING;
    if (p->dilation_h < 1 || p->dilation_w < 1)
        return TCONV_INVALID_DILATION;

    /* Every argument is valid.  Sizes beyond 32 bits are refused before the output size is
     * computed, since the output formula could overflow for them. */
    const int64_t dims[] = {p->n,         p->c_in,      p->c_out,     p->h_in,
                            p->w_in,      p->kernel_h,  p->kernel_w,  p->stride_h,
                            p->stride_w,  p->padding_h, p->padding_w, p->dilation_h,
                            p->dilation_w};
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++) {
        if (dims[i] > dim_max)
            return TCONV_UNSUPPORTED_SIZE;
    }
    int64_t h_out = out_size(p->h_in, p->kernel_h, p->stride_h, p->padding_h,
                             p->output_padding_h, p->dilation_h);
    int64_t w_out = out_size(p->w_in, p->kernel_w, p->stride_w, p->padding_w,
                             p->output_padding_w, p->dilation_w);
    if (h_out < 1 || w_out < 1)
        return TCONV_INVALID_OUTPUT_SIZE;
    if (h_out > dim_max || w_out > dim_max ||
        !product_fits(p->n, p->c_in, p->h_in, p->w_in) ||
        !product_fits(p->n, p->c_out, h_out, w_out) ||
        !product_fits(p->c_in, p->c_out / p->groups, p->kernel_h, p->kernel_w))
        return TCONV_UNSUPPORTED_SIZE;
    p->h_out = h_out;
    p->w_out = w_out;
    return TCONV_SUCCESS;
}

tconv_status tconv_problem_check_copy(const tconv_problem *p, tconv_problem *checked)
{
    if (p == NULL || checked == NULL)
        return TCONV_INVALID_POINTER;
    *checked = *p;
    return tconv_problem_check(checked);
}

tconv_status tconv_config_check(const tconv_config *config)
{
    if (config == NULL)
        return TCONV_INVALID_POINTER;
    switch (config->dtype) {
    case TCONV_FLOAT32:
    case TCONV_FLOAT64:
    case TCONV_FLOAT16:
    case TCONV_BFLOAT16: break;
    default: return TCONV_INVALID_DTYPE;
    }
    switch (config->precision) {
    case TCONV_PRECISION_FP32:
    case TCONV_PRECISION_TF32: break;
    default: return TCONV_INVALID_PRECISION;
    }
    return TCONV_SUCCESS;
}

/* One past the last byte of a tensor of `elems` elements of `size` bytes at `at`, as an
 * integer; UINTPTR_MAX where that would not fit (no such tensor fits in memory either). */
static uintptr_t end_of(uintptr_t at, int64_t elems, size_t size)
{
    if ((uint64_t)elems > (UINTPTR_MAX - at) / size)
        return UINTPTR_MAX;
    return at + (uintptr_t)elems * size;
}

/* Whether two tensors share a byte; NULL or empty ones share none. */
static int overlap(const void *a, int64_t a_elems, const void *b, int64_t b_elems, size_t size)
{
    if (a == NULL || b == NULL || a_elems == 0 || b_elems == 0)
        return 0;
    const uintptr_t a0 = (uintptr_t)a, b0 = (uintptr_t)b;
    return a0 < end_of(b0, b_elems, size) && b0 < end_of(a0, a_elems, size);
}

tconv_status tconv_check_aliasing(const tconv_problem *p, tconv_pass pass, size_t elem_size,
                                  const void *x, const void *weight, const void *bias,
                                  const void *grad_y, const void *out)
{
    const int64_t x_elems = tconv_x_elems(p), y_elems = tconv_y_elems(p);
    const int64_t w_elems = tconv_weight_elems(p), b_elems = p->c_out;
    int bad;
    switch (pass) {
    case TCONV_PASS_FORWARD:
        bad = overlap(out, y_elems, x, x_elems, elem_size) ||
              overlap(out, y_elems, weight, w_elems, elem_size) ||
              overlap(out, y_elems, bias, b_elems, elem_size);
        break;
    case TCONV_PASS_GRAD_INPUT:
        bad = overlap(out, x_elems, grad_y, y_elems, elem_size) ||
              overlap(out, x_elems, weight, w_elems, elem_size);
        break;
    case TCONV_PASS_GRAD_WEIGHT:
        bad = overlap(out, w_elems, x, x_elems, elem_size) ||
              overlap(out, w_elems, grad_y, y_elems, elem_size);
        break;
    case TCONV_PASS_GRAD_BIAS:
        bad = overlap(out, b_elems, grad_y, y_elems, elem_size);
        break;
    default: return TCONV_INVALID_PASS;
    }
    return bad ? TCONV_INVALID_ALIASING : TCONV_SUCCESS;
}
