/*
 * dispatch.cu - the CUDA half of tconv.h: the variant table, the preferences, plans, and the
 * entry points, which make a plan and run it.
 *
 * A plan checks the problem, the config and the pass, then takes the first variant of the
 * pass in table order (variants.def) whose can_implement() accepts the problem on the
 * current device, which the preferences below allow for it, and whose plan() succeeds; or
 * the variant config->algorithm names, whatever the preferences say.
 */
#include <mutex>
#include <string.h>
#include <unordered_set>

#include "cuda/variant.h"
#include "problem.h"

/* ---- preferences ----
 * Where a variant that can implement a problem is still not the dispatcher's choice, because
 * a variant after it is faster there.  A rule sees only problems its variant can implement.
 * Each rule names what was measured. */
typedef int (*tconv_rule)(const tconv_problem *p, tconv_pass pass);

/* Destination channels per group of the direct engine: C_out / groups for forward, C_in /
 * groups for grad-input. */
static int64_t direct_channels(const tconv_problem *p, tconv_pass pass)
{
    return (pass == TCONV_PASS_FORWARD ? p->c_out : p->c_in) / p->groups;
}

static int always(const tconv_problem *, tconv_pass) { return 1; }

/* Tiles of 64 destination channels: at least 24 of them in use.  Set with the first direct
 * tiles (forward_direct_64x256 against 16x512 and 4x1024, which keep 16 and 4 channels per
 * CTA); no measurement of the threshold is on record. */
static int wide_tile(const tconv_problem *p, tconv_pass pass) { return direct_channels(p, pass) >= 24; }

/* Tiles of 16 destination channels: at least 5 in use (no measurement on record either). */
static int medium_tile(const tconv_problem *p, tconv_pass pass) { return direct_channels(p, pass) >= 5; }

/* The unit-tiled grad-weight kernels compute 3 x 3 taps per tile whatever the kernel: at
 * least half of them must be the problem's.  Pointwise layer (tests/problems.txt
 * pointwise-256-128), H200: grad_weight_direct_32x32 0.65 ms against 1.84 ms for the
 * unit-tiled 3xTF32 kernel in fp32 mode, 0.82 against 0.95 ms in tf32 mode. */
static int most_unit_taps(const tconv_problem *p, tconv_pass)
{
    const int64_t kh_groups = (p->kernel_h + 2) / 3;
    return 2 * p->kernel_h * p->kernel_w >= kh_groups * 9;
}

/* grad_weight_direct_32x32's tile (16 x wci input channels x 32 output channels) at least
 * 1/32 in use: depthwise layers fill 1/512 of it, where it took 106 ms against cuDNN's
 * 1.2 ms and grad_weight_naive, which never computes a padded channel, is faster. */
static int filled_direct_tile(const tconv_problem *p, tconv_pass)
{
    int64_t used, tile;
    grad_weight_direct_tile_fill(p, &used, &tile);
    return 32 * used >= tile;
}

/* ---- the table ---- */

typedef struct entry {
    const tconv_variant *variant;
    tconv_rule preferred;
} entry;

#define TCONV_VARIANT(NAME, RULE) {&tconv_variant_##NAME, RULE},
static const entry table[] = {
#include "cuda/variants.def"
};
#undef TCONV_VARIANT
enum { VARIANT_COUNT = sizeof(table) / sizeof(table[0]) };

/* ---- errors ---- */

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
        *pass = table[index].variant->pass;
    return table[index].variant->name;
}

/* ---- plans ---- */

struct tconv_plan {
    tconv_problem problem; /* checked: h_out and w_out set */
    tconv_pass pass;
    tconv_config config;   /* algorithm: NULL (the variant is chosen) */
    int device;
    const tconv_variant *variant;
    size_t workspace_bytes;
    tconv_variant_state state;
};

/* Whether the variant of entry e takes p under config on device d, and then its plan. */
static int try_variant(const entry *e, tconv_plan *plan, const tconv_device_caps *d, int forced)
{
    const tconv_variant *v = e->variant;
    if (v->pass != plan->pass || !v->can_implement(&plan->problem, &plan->config, d) ||
        (!forced && !e->preferred(&plan->problem, plan->pass)))
        return 0;
    return v->plan(&plan->problem, &plan->config, d, &plan->state, &plan->workspace_bytes);
}

/* Fills *plan for `pass` of p under config on the current device. */
static tconv_status plan_init(tconv_plan *plan, const tconv_problem *p, tconv_pass pass, const tconv_config *config)
{
    tconv_status status = tconv_problem_check_copy(p, &plan->problem);
    if (status != TCONV_SUCCESS)
        return status;
    status = tconv_config_check(config);
    if (status != TCONV_SUCCESS)
        return status;
    if (pass != TCONV_PASS_FORWARD && pass != TCONV_PASS_GRAD_INPUT && pass != TCONV_PASS_GRAD_WEIGHT &&
        pass != TCONV_PASS_GRAD_BIAS)
        return TCONV_INVALID_PASS;
    plan->pass = pass;
    plan->config = *config;
    plan->config.algorithm = NULL;
    const tconv_device_caps *d = NULL;
    cudaError_t err = cudaGetDevice(&plan->device);
    if (err == cudaSuccess)
        err = tconv_device_caps_of(plan->device, &d);
    if (err != cudaSuccess)
        return cuda_failure(err);
    for (int i = 0; i < VARIANT_COUNT; i++) {
        const entry *e = &table[i];
        if (config->algorithm != NULL) {
            if (strcmp(e->variant->name, config->algorithm) != 0)
                continue;
            if (!try_variant(e, plan, d, 1))
                return TCONV_UNSUPPORTED_ALGORITHM;
        } else if (!try_variant(e, plan, d, 0)) {
            continue;
        }
        plan->variant = e->variant;
        return TCONV_SUCCESS;
    }
    return config->algorithm != NULL ? TCONV_INVALID_ALGORITHM : TCONV_UNSUPPORTED_PROBLEM;
}

static size_t element_size(tconv_dtype dtype)
{
    return dtype == TCONV_FLOAT64 ? 8 : dtype == TCONV_FLOAT32 ? 4 : 2;
}

/* A tensor's pointer may be NULL only when the tensor is empty (as PyTorch's are). */
static int missing(const void *ptr, int64_t elems) { return ptr == NULL && elems > 0; }

/* Runs the plan's pass on the tensors of args (args->p and args->config: the plan's). */
static tconv_status plan_run(const tconv_plan *plan, tconv_args *args, size_t workspace_bytes)
{
    const tconv_problem *p = &plan->problem;
    args->p = p;
    args->config = &plan->config;
    const int64_t x_elems = tconv_x_elems(p), y_elems = tconv_y_elems(p), w_elems = tconv_weight_elems(p);
    int bad = 0;
    switch (plan->pass) {
    case TCONV_PASS_FORWARD:
        bad = missing(args->x, x_elems) || missing(args->weight, w_elems) || missing(args->y, y_elems);
        break;
    case TCONV_PASS_GRAD_INPUT:
        bad = missing(args->grad_y, y_elems) || missing(args->weight, w_elems) || missing(args->grad_x, x_elems);
        break;
    case TCONV_PASS_GRAD_WEIGHT:
        bad = missing(args->x, x_elems) || missing(args->grad_y, y_elems) || missing(args->grad_weight, w_elems);
        break;
    case TCONV_PASS_GRAD_BIAS:
        bad = missing(args->grad_y, y_elems) || missing(args->grad_bias, p->c_out);
        break;
    }
    if (bad)
        return TCONV_INVALID_POINTER;
    const void *out = plan->pass == TCONV_PASS_FORWARD      ? args->y
                      : plan->pass == TCONV_PASS_GRAD_INPUT ? args->grad_x
                      : plan->pass == TCONV_PASS_GRAD_WEIGHT ? args->grad_weight
                                                              : args->grad_bias;
    const tconv_status status = tconv_check_aliasing(p, plan->pass, element_size(plan->config.dtype), args->x,
                                                     args->weight, args->bias, args->grad_y, out);
    if (status != TCONV_SUCCESS)
        return status;

    if (p->n == 0) {
        /* no batch: y and grad_x are empty, the sums of grad_weight and grad_bias are 0 (and
         * no workspace is needed) */
        cudaError_t err = cudaSuccess;
        const size_t size = element_size(plan->config.dtype);
        if (plan->pass == TCONV_PASS_GRAD_WEIGHT)
            err = cudaMemsetAsync(args->grad_weight, 0, (size_t)w_elems * size, args->stream);
        else if (plan->pass == TCONV_PASS_GRAD_BIAS)
            err = cudaMemsetAsync(args->grad_bias, 0, (size_t)p->c_out * size, args->stream);
        return err == cudaSuccess ? TCONV_SUCCESS : cuda_failure(err);
    }
    if (plan->workspace_bytes > 0 && (args->workspace == NULL || workspace_bytes < plan->workspace_bytes))
        return TCONV_INVALID_WORKSPACE;
    const cudaError_t err = plan->variant->launch(args, &plan->state);
    return err == cudaSuccess ? TCONV_SUCCESS : cuda_failure(err);
}

/* The tensors of each pass, as the entry points take them. */
static tconv_args forward_args(const void *x, const void *weight, const void *bias, void *y, void *workspace,
                               struct CUstream_st *stream)
{
    tconv_args a = {};
    a.x = x;
    a.weight = weight;
    a.bias = bias;
    a.y = y;
    a.workspace = workspace;
    a.stream = stream;
    return a;
}

static tconv_args grad_input_args(const void *grad_y, const void *weight, void *grad_x, void *workspace,
                                  struct CUstream_st *stream)
{
    tconv_args a = {};
    a.grad_y = grad_y;
    a.weight = weight;
    a.grad_x = grad_x;
    a.workspace = workspace;
    a.stream = stream;
    return a;
}

static tconv_args grad_weight_args(const void *x, const void *grad_y, void *grad_weight, void *workspace,
                                   struct CUstream_st *stream)
{
    tconv_args a = {};
    a.x = x;
    a.grad_y = grad_y;
    a.grad_weight = grad_weight;
    a.workspace = workspace;
    a.stream = stream;
    return a;
}

static tconv_args grad_bias_args(const void *grad_y, void *grad_bias, void *workspace, struct CUstream_st *stream)
{
    tconv_args a = {};
    a.grad_y = grad_y;
    a.grad_bias = grad_bias;
    a.workspace = workspace;
    a.stream = stream;
    return a;
}

/* ---- one-shot calls: a plan on the stack, made and run ---- */

extern "C" tconv_status tconv_cuda_algorithm(const tconv_problem *p, tconv_pass pass, const tconv_config *config,
                                             const char **name)
{
    if (name == NULL)
        return TCONV_INVALID_POINTER;
    tconv_plan plan;
    const tconv_status status = plan_init(&plan, p, pass, config);
    if (status == TCONV_SUCCESS)
        *name = plan.variant->name;
    return status;
}

extern "C" tconv_status tconv_cuda_workspace_size(const tconv_problem *p, tconv_pass pass,
                                                  const tconv_config *config, size_t *bytes)
{
    if (bytes == NULL)
        return TCONV_INVALID_POINTER;
    tconv_plan plan;
    const tconv_status status = plan_init(&plan, p, pass, config);
    if (status == TCONV_SUCCESS)
        *bytes = plan.workspace_bytes;
    return status;
}

static tconv_status run_once(tconv_pass pass, const tconv_problem *p, const tconv_config *config, tconv_args *args,
                             size_t workspace_bytes)
{
    tconv_plan plan;
    const tconv_status status = plan_init(&plan, p, pass, config);
    return status == TCONV_SUCCESS ? plan_run(&plan, args, workspace_bytes) : status;
}

extern "C" tconv_status tconv_forward_cuda(const tconv_problem *p, const tconv_config *config, const void *x,
                                           const void *weight, const void *bias, void *y, void *workspace,
                                           size_t workspace_bytes, struct CUstream_st *stream)
{
    tconv_args args = forward_args(x, weight, bias, y, workspace, stream);
    return run_once(TCONV_PASS_FORWARD, p, config, &args, workspace_bytes);
}

extern "C" tconv_status tconv_grad_input_cuda(const tconv_problem *p, const tconv_config *config,
                                              const void *grad_y, const void *weight, void *grad_x, void *workspace,
                                              size_t workspace_bytes, struct CUstream_st *stream)
{
    tconv_args args = grad_input_args(grad_y, weight, grad_x, workspace, stream);
    return run_once(TCONV_PASS_GRAD_INPUT, p, config, &args, workspace_bytes);
}

extern "C" tconv_status tconv_grad_weight_cuda(const tconv_problem *p, const tconv_config *config, const void *x,
                                               const void *grad_y, void *grad_weight, void *workspace,
                                               size_t workspace_bytes, struct CUstream_st *stream)
{
    tconv_args args = grad_weight_args(x, grad_y, grad_weight, workspace, stream);
    return run_once(TCONV_PASS_GRAD_WEIGHT, p, config, &args, workspace_bytes);
}

extern "C" tconv_status tconv_grad_bias_cuda(const tconv_problem *p, const tconv_config *config, const void *grad_y,
                                             void *grad_bias, void *workspace, size_t workspace_bytes,
                                             struct CUstream_st *stream)
{
    tconv_args args = grad_bias_args(grad_y, grad_bias, workspace, stream);
    return run_once(TCONV_PASS_GRAD_BIAS, p, config, &args, workspace_bytes);
}

/* ---- plans on the heap ---- */

/* The plans made and not destroyed, so that a destroyed or foreign plan is refused. */
static std::mutex live_lock;
static std::unordered_set<const tconv_plan *> live_plans;

static int is_live(const tconv_plan *plan)
{
    if (plan == NULL)
        return 0;
    std::lock_guard<std::mutex> hold(live_lock);
    return live_plans.count(plan) != 0;
}

extern "C" tconv_status tconv_plan_create(tconv_plan **plan, const tconv_problem *p, tconv_pass pass,
                                          const tconv_config *config)
{
    if (plan == NULL)
        return TCONV_INVALID_POINTER;
    *plan = NULL;
    tconv_plan *made = new (std::nothrow) tconv_plan;
    if (made == NULL)
        return cuda_failure(cudaErrorMemoryAllocation);
    const tconv_status status = plan_init(made, p, pass, config);
    if (status != TCONV_SUCCESS) {
        delete made;
        return status;
    }
    {
        std::lock_guard<std::mutex> hold(live_lock);
        live_plans.insert(made);
    }
    *plan = made;
    return TCONV_SUCCESS;
}

extern "C" tconv_status tconv_plan_destroy(tconv_plan *plan)
{
    if (plan == NULL)
        return TCONV_SUCCESS;
    {
        std::lock_guard<std::mutex> hold(live_lock);
        if (live_plans.erase(plan) == 0)
            return TCONV_INVALID_PLAN;
    }
    delete plan;
    return TCONV_SUCCESS;
}

extern "C" tconv_status tconv_plan_workspace_size(const tconv_plan *plan, size_t *bytes)
{
    if (!is_live(plan))
        return TCONV_INVALID_PLAN;
    if (bytes == NULL)
        return TCONV_INVALID_POINTER;
    *bytes = plan->workspace_bytes;
    return TCONV_SUCCESS;
}

extern "C" tconv_status tconv_plan_algorithm(const tconv_plan *plan, const char **name)
{
    if (!is_live(plan))
        return TCONV_INVALID_PLAN;
    if (name == NULL)
        return TCONV_INVALID_POINTER;
    *name = plan->variant->name;
    return TCONV_SUCCESS;
}

/* Whether p is the plan's problem: the fields a caller fills (h_out and w_out are not). */
static int same_problem(const tconv_problem *a, const tconv_problem *b)
{
    return a->n == b->n && a->c_in == b->c_in && a->h_in == b->h_in && a->w_in == b->w_in && a->c_out == b->c_out &&
           a->kernel_h == b->kernel_h && a->kernel_w == b->kernel_w && a->stride_h == b->stride_h &&
           a->stride_w == b->stride_w && a->padding_h == b->padding_h && a->padding_w == b->padding_w &&
           a->output_padding_h == b->output_padding_h && a->output_padding_w == b->output_padding_w &&
           a->dilation_h == b->dilation_h && a->dilation_w == b->dilation_w && a->groups == b->groups;
}

/* A run of `pass` on plan for tensors of problem p, on the current device. */
static tconv_status plan_run_checked(const tconv_plan *plan, tconv_pass pass, const tconv_problem *p,
                                     tconv_args *args, size_t workspace_bytes)
{
    if (!is_live(plan) || plan->pass != pass)
        return TCONV_INVALID_PLAN;
    if (p == NULL)
        return TCONV_INVALID_POINTER;
    int device = -1;
    const cudaError_t err = cudaGetDevice(&device);
    if (err != cudaSuccess)
        return cuda_failure(err);
    if (device != plan->device || !same_problem(p, &plan->problem))
        return TCONV_INVALID_PLAN;
    return plan_run(plan, args, workspace_bytes);
}

extern "C" tconv_status tconv_plan_forward(const tconv_plan *plan, const tconv_problem *p, const void *x,
                                           const void *weight, const void *bias, void *y, void *workspace,
                                           size_t workspace_bytes, struct CUstream_st *stream)
{
    tconv_args args = forward_args(x, weight, bias, y, workspace, stream);
    return plan_run_checked(plan, TCONV_PASS_FORWARD, p, &args, workspace_bytes);
}

extern "C" tconv_status tconv_plan_grad_input(const tconv_plan *plan, const tconv_problem *p, const void *grad_y,
                                              const void *weight, void *grad_x, void *workspace,
                                              size_t workspace_bytes, struct CUstream_st *stream)
{
    tconv_args args = grad_input_args(grad_y, weight, grad_x, workspace, stream);
    return plan_run_checked(plan, TCONV_PASS_GRAD_INPUT, p, &args, workspace_bytes);
}

extern "C" tconv_status tconv_plan_grad_weight(const tconv_plan *plan, const tconv_problem *p, const void *x,
                                               const void *grad_y, void *grad_weight, void *workspace,
                                               size_t workspace_bytes, struct CUstream_st *stream)
{
    tconv_args args = grad_weight_args(x, grad_y, grad_weight, workspace, stream);
    return plan_run_checked(plan, TCONV_PASS_GRAD_WEIGHT, p, &args, workspace_bytes);
}

extern "C" tconv_status tconv_plan_grad_bias(const tconv_plan *plan, const tconv_problem *p, const void *grad_y,
                                             void *grad_bias, void *workspace, size_t workspace_bytes,
                                             struct CUstream_st *stream)
{
    tconv_args args = grad_bias_args(grad_y, grad_bias, workspace, stream);
    return plan_run_checked(plan, TCONV_PASS_GRAD_BIAS, p, &args, workspace_bytes);
}
