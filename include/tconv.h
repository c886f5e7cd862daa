/*
 * tconv.h - 2D transposed convolution (the operator of torch.nn.ConvTranspose2d):
 * forward, grad of input, grad of weight, grad of bias.
 *
 * Notation (used everywhere in tconv; docs/algorithm.md has the full page):
 *
 *   x        input,         (N, C_in,  H_in,  W_in)
 *   weight   the filter,    (C_in, C_out / groups, kH, kW)
 *   bias     optional,      (C_out)
 *   y        output,        (N, C_out, H_out, W_out)
 *   grad_y   gradient of y, shape of y;  grad_x, grad_weight, grad_bias likewise.
 *
 *   H_out = (H_in - 1) * stride_h - 2 * padding_h + dilation_h * (kH - 1) + output_padding_h + 1
 *   (W_out likewise).  Input pixel (ih, iw) of channel g*Cig + ci scatters into
 *   output pixel (ih*stride_h - padding_h + kh*dilation_h, iw*stride_w - padding_w + kw*dilation_w)
 *   of channel g*Cog + co with weight[g*Cig + ci, co, kh, kw]   (Cig = C_in/groups,
 *   Cog = C_out/groups).
 *
 * Every tensor is dense, row-major (NCHW, C-contiguous), and element counts are
 * 64-bit.  Pointers to tensors with a batch dimension may be NULL when N == 0 (they are
 * empty); every other pointer is required, bias excepted.  An output must not overlap any
 * input of its call (TCONV_INVALID_ALIASING); inputs may overlap each other.  The library
 * never allocates device memory, never synchronises the host and never calls exit(): each
 * call returns a tconv_status.
 */
#ifndef TCONV_H
#define TCONV_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TCONV_VERSION_MAJOR 0
#define TCONV_VERSION_MINOR 1
#define TCONV_VERSION_PATCH 0
/* "MAJOR.MINOR.PATCH" of the library that was compiled (may differ from the macros above). */
const char *tconv_version(void);

typedef enum tconv_status {
    TCONV_SUCCESS = 0,
    /* the caller's mistakes */
    TCONV_INVALID_POINTER,        /* a required pointer is NULL */
    TCONV_INVALID_BATCH_SIZE,     /* N < 0 */
    TCONV_INVALID_CHANNELS,       /* C_in < 1 or C_out < 1 */
    TCONV_INVALID_GROUPS,         /* groups < 1, or groups does not divide C_in and C_out */
    TCONV_INVALID_INPUT_SIZE,     /* H_in < 1 or W_in < 1 */
    TCONV_INVALID_KERNEL_SIZE,    /* kH < 1 or kW < 1 */
    TCONV_INVALID_STRIDE,         /* stride < 1 */
    TCONV_INVALID_PADDING,        /* padding < 0 */
    TCONV_INVALID_OUTPUT_PADDING, /* output_padding < 0 or >= max(stride, dilation) */
    TCONV_INVALID_DILATION,       /* dilation < 1 */
    TCONV_INVALID_OUTPUT_SIZE,    /* the formula gives H_out < 1 or W_out < 1 */
    TCONV_INVALID_DTYPE,          /* not a tconv_dtype value */
    TCONV_INVALID_PRECISION,      /* not a tconv_precision value */
    TCONV_INVALID_PASS,           /* not a tconv_pass value */
    TCONV_INVALID_ALGORITHM,      /* config->algorithm names no variant */
    TCONV_INVALID_WORKSPACE,      /* workspace smaller than the queried size, or NULL when it is not 0 */
    TCONV_INVALID_PLAN,           /* a plan that is NULL or destroyed, or run for another pass, problem
                                     or device than it was made for */
    TCONV_INVALID_ALIASING,       /* the output's memory overlaps an input's */
    /* valid problems tconv does not implement */
    TCONV_UNSUPPORTED_SIZE,       /* a tensor has more than 2^62 elements or a dimension over 2^31 - 1 */
    TCONV_UNSUPPORTED_ALGORITHM,  /* the variant named in config->algorithm cannot implement this problem */
    TCONV_UNSUPPORTED_PROBLEM,    /* no CUDA variant implements this problem */
    TCONV_UNSUPPORTED_NO_CUDA,    /* the library was built without CUDA */
    /* failures of the machine */
    TCONV_ERROR_CUDA              /* a CUDA call failed; tconv_cuda_last_error() tells which error */
} tconv_status;

/* A static English sentence for a status, never NULL (also for values outside the enum). */
const char *tconv_status_string(tconv_status status);

/* Every parameter of one problem.  Fill the inputs, then call tconv_problem_check(),
 * which validates them with PyTorch's rules and sets h_out and w_out. */
typedef struct tconv_problem {
    int64_t n, c_in, h_in, w_in;        /* x is (n, c_in, h_in, w_in) */
    int64_t c_out;                      /* y has c_out channels */
    int64_t kernel_h, kernel_w;
    int64_t stride_h, stride_w;
    int64_t padding_h, padding_w;
    int64_t output_padding_h, output_padding_w;
    int64_t dilation_h, dilation_w;
    int64_t groups;
    int64_t h_out, w_out;               /* set by tconv_problem_check */
} tconv_problem;

/* Validates every field in the order of the status list above (the first problem found
 * is returned) and sets p->h_out, p->w_out.  Every other entry point calls it too. */
tconv_status tconv_problem_check(tconv_problem *p);

/* ---------------------------------------------------------------------------------- */
/* CPU reference: straight from the definition, float64 accumulation for float32 data. */

/* x is (N, C_in, H_in, W_in), weight is (C_in, C_out/groups, kH, kW), bias is (C_out) or NULL,
 * y is (N, C_out, H_out, W_out) and is overwritten. */
tconv_status tconv_forward_cpu_f32(const tconv_problem *p, const float *x, const float *weight,
                                   const float *bias, float *y);
tconv_status tconv_forward_cpu_f64(const tconv_problem *p, const double *x, const double *weight,
                                   const double *bias, double *y);

/* grad_y is (N, C_out, H_out, W_out), weight is (C_in, C_out/groups, kH, kW),
 * grad_x is (N, C_in, H_in, W_in) and is overwritten. */
tconv_status tconv_grad_input_cpu_f32(const tconv_problem *p, const float *grad_y,
                                      const float *weight, float *grad_x);
tconv_status tconv_grad_input_cpu_f64(const tconv_problem *p, const double *grad_y,
                                      const double *weight, double *grad_x);

/* x is (N, C_in, H_in, W_in), grad_y is (N, C_out, H_out, W_out),
 * grad_weight is (C_in, C_out/groups, kH, kW) and is overwritten. */
tconv_status tconv_grad_weight_cpu_f32(const tconv_problem *p, const float *x,
                                       const float *grad_y, float *grad_weight);
tconv_status tconv_grad_weight_cpu_f64(const tconv_problem *p, const double *x,
                                       const double *grad_y, double *grad_weight);

/* grad_y is (N, C_out, H_out, W_out), grad_bias is (C_out) and is overwritten. */
tconv_status tconv_grad_bias_cpu_f32(const tconv_problem *p, const float *grad_y, float *grad_bias);
tconv_status tconv_grad_bias_cpu_f64(const tconv_problem *p, const double *grad_y, double *grad_bias);

/* ---------------------------------------------------------------------------------- */
/* CUDA.  Pointers are device pointers; work is queued on `stream` (a cudaStream_t; NULL is
 * the legacy default stream) and the calls return without waiting for it. */

typedef enum tconv_dtype {
    TCONV_FLOAT32 = 0,
    TCONV_FLOAT64 = 1,
    TCONV_FLOAT16 = 2,   /* IEEE binary16, float32 accumulation */
    TCONV_BFLOAT16 = 3   /* bfloat16, float32 accumulation */
} tconv_dtype;

/* How float32 data is multiplied (other dtypes ignore it):
 *   FP32: float32-accurate (max |error| against float64 within 4x of cuDNN's FP32 path).
 *   TF32: both operands rounded to nearest TF32 (10-bit mantissa), products exact,
 *         float32 accumulation: the numerics of cuDNN under torch's default allow_tf32. */
typedef enum tconv_precision {
    TCONV_PRECISION_FP32 = 0,
    TCONV_PRECISION_TF32 = 1
} tconv_precision;

typedef enum tconv_pass {
    TCONV_PASS_FORWARD = 0,
    TCONV_PASS_GRAD_INPUT = 1,
    TCONV_PASS_GRAD_WEIGHT = 2,
    TCONV_PASS_GRAD_BIAS = 3
} tconv_pass;

typedef struct tconv_config {
    tconv_dtype dtype;           /* of every tensor of the call */
    tconv_precision precision;
    const char *algorithm;       /* NULL: the dispatcher picks; else the name of a variant
                                    (see tconv_cuda_algorithm), which must accept the problem */
} tconv_config;

/* 1 if the library was built with CUDA kernels, else 0 (then every *_cuda call returns
 * TCONV_UNSUPPORTED_NO_CUDA). */
int tconv_cuda_available(void);

/* The CUDA variants in the dispatcher's order of preference, index 0 first: the name of
 * variant `index` (and its pass in *pass when pass is not NULL), or NULL past the last one. */
const char *tconv_cuda_variant(int index, tconv_pass *pass);

/* The cudaError_t of the last CUDA failure reported as TCONV_ERROR_CUDA in this thread, 0 if none. */
int tconv_cuda_last_error(void);

/* The name of the variant that would run `pass` of `p` under `config` (*name is a static
 * string).  Fails like the pass itself would for an invalid or unsupported problem. */
tconv_status tconv_cuda_algorithm(const tconv_problem *p, tconv_pass pass,
                                  const tconv_config *config, const char **name);

/* Bytes of device workspace that `pass` needs (0 when none); pass at least that many to
 * the call, 256-byte aligned (any cudaMalloc pointer is). */
tconv_status tconv_cuda_workspace_size(const tconv_problem *p, tconv_pass pass,
                                       const tconv_config *config, size_t *bytes);

struct CUstream_st; /* cudaStream_t is struct CUstream_st * */

/* x is (N, C_in, H_in, W_in), weight is (C_in, C_out/groups, kH, kW), bias is (C_out) or NULL,
 * y is (N, C_out, H_out, W_out) and is overwritten. */
tconv_status tconv_forward_cuda(const tconv_problem *p, const tconv_config *config,
                                const void *x, const void *weight, const void *bias, void *y,
                                void *workspace, size_t workspace_bytes, struct CUstream_st *stream);

/* grad_y is (N, C_out, H_out, W_out), weight is (C_in, C_out/groups, kH, kW),
 * grad_x is (N, C_in, H_in, W_in) and is overwritten. */
tconv_status tconv_grad_input_cuda(const tconv_problem *p, const tconv_config *config,
                                   const void *grad_y, const void *weight, void *grad_x,
                                   void *workspace, size_t workspace_bytes,
                                   struct CUstream_st *stream);

/* x is (N, C_in, H_in, W_in), grad_y is (N, C_out, H_out, W_out),
 * grad_weight is (C_in, C_out/groups, kH, kW) and is overwritten.  Bitwise deterministic. */
tconv_status tconv_grad_weight_cuda(const tconv_problem *p, const tconv_config *config,
                                    const void *x, const void *grad_y, void *grad_weight,
                                    void *workspace, size_t workspace_bytes,
                                    struct CUstream_st *stream);

/* grad_y is (N, C_out, H_out, W_out), grad_bias is (C_out) and is overwritten.
 * Bitwise deterministic. */
tconv_status tconv_grad_bias_cuda(const tconv_problem *p, const tconv_config *config,
                                  const void *grad_y, void *grad_bias,
                                  void *workspace, size_t workspace_bytes,
                                  struct CUstream_st *stream);

/* ---------------------------------------------------------------------------------- */
/* Plans: a problem checked and planned once, then run many times.
 *
 * A plan fixes a problem, a pass, a config and the device that is current when it is made:
 * it holds the variant chosen, its tiling and its workspace size, so that a run skips the
 * checks and the choice (the calls above make and drop a plan each time).  Runs take the
 * tensors, a workspace and a stream; one plan may run on several streams of its device and
 * from several threads at once.  Each run names the problem its tensors have, which must be
 * the plan's (only the fields the caller fills are compared, not h_out and w_out), and must
 * be made with the plan's device current; otherwise, and for a NULL or destroyed plan, it
 * returns TCONV_INVALID_PLAN and queues nothing. */
typedef struct tconv_plan tconv_plan;

/* Makes *plan for `pass` of p under config (config->algorithm: as for the calls above) on
 * the current device.  Fails like the pass itself would for an invalid or unsupported
 * problem, with *plan set to NULL. */
tconv_status tconv_plan_create(tconv_plan **plan, const tconv_problem *p, tconv_pass pass,
                               const tconv_config *config);

/* Frees a plan (NULL is accepted, as free() does); runs already queued are not affected. */
tconv_status tconv_plan_destroy(tconv_plan *plan);

/* Bytes of workspace every run of the plan needs (0 when none). */
tconv_status tconv_plan_workspace_size(const tconv_plan *plan, size_t *bytes);

/* The name of the variant the plan runs (a static string). */
tconv_status tconv_plan_algorithm(const tconv_plan *plan, const char **name);

/* The passes on a plan: the tensors as for tconv_*_cuda, p the problem they have. */
tconv_status tconv_plan_forward(const tconv_plan *plan, const tconv_problem *p, const void *x,
                                const void *weight, const void *bias, void *y, void *workspace,
                                size_t workspace_bytes, struct CUstream_st *stream);
tconv_status tconv_plan_grad_input(const tconv_plan *plan, const tconv_problem *p,
                                   const void *grad_y, const void *weight, void *grad_x,
                                   void *workspace, size_t workspace_bytes,
                                   struct CUstream_st *stream);
tconv_status tconv_plan_grad_weight(const tconv_plan *plan, const tconv_problem *p, const void *x,
                                    const void *grad_y, void *grad_weight, void *workspace,
                                    size_t workspace_bytes, struct CUstream_st *stream);
tconv_status tconv_plan_grad_bias(const tconv_plan *plan, const tconv_problem *p,
                                  const void *grad_y, void *grad_bias, void *workspace,
                                  size_t workspace_bytes, struct CUstream_st *stream);

#ifdef __cplusplus
}
#endif

#endif /* TCONV_H */
