/*
 * no_cuda.c - the CUDA entry points of tconv.h for a library built without CUDA.
 *
 * They validate their arguments exactly like the CUDA build (so callers see the same
 * mistakes reported) and then answer TCONV_UNSUPPORTED_NO_CUDA.
 */
#include <stddef.h>

#include "problem.h"
#include "tconv.h"

int tconv_cuda_available(void) { return 0; }

const char *tconv_cuda_variant(int index, tconv_pass *pass)
{
    (void)index;
    (void)pass;
    return NULL;
}

int tconv_cuda_last_error(void) { return 0; }

/* The tensors of a call, for the aliasing check (NULL where the call has none). */
typedef struct no_cuda_tensors {
    const void *x, *weight, *bias, *grad_y, *out;
} no_cuda_tensors;

/* The first mistake among: a NULL required pointer (pointers_ok == 0), the problem, the
 * config, the pass, an output overlapping an input of t (when given); else
 * TCONV_UNSUPPORTED_NO_CUDA. */
static tconv_status no_cuda(int pointers_ok, const tconv_problem *p, const tconv_config *config,
                            tconv_pass pass, const no_cuda_tensors *t)
{
    if (!pointers_ok || p == NULL || config == NULL)
        return TCONV_INVALID_POINTER;
    tconv_problem checked;
    tconv_status status = tconv_problem_check_copy(p, &checked);
    if (status == TCONV_SUCCESS)
        status = tconv_config_check(config);
    if (status != TCONV_SUCCESS)
        return status;
    if (pass != TCONV_PASS_FORWARD && pass != TCONV_PASS_GRAD_INPUT &&
        pass != TCONV_PASS_GRAD_WEIGHT && pass != TCONV_PASS_GRAD_BIAS)
        return TCONV_INVALID_PASS;
    if (t != NULL) {
        const size_t size = config->dtype == TCONV_FLOAT64 ? 8 : config->dtype == TCONV_FLOAT32 ? 4 : 2;
        status = tconv_check_aliasing(&checked, pass, size, t->x, t->weight, t->bias, t->grad_y, t->out);
        if (status != TCONV_SUCCESS)
            return status;
    }
    return TCONV_UNSUPPORTED_NO_CUDA;
}

tconv_status tconv_cuda_algorithm(const tconv_problem *p, tconv_pass pass,
                                  const tconv_config *config, const char **name)
{
    if (name != NULL)
        *name = NULL;
    return no_cuda(name != NULL, p, config, pass, NULL);
}

tconv_status tconv_cuda_workspace_size(const tconv_problem *p, tconv_pass pass,
                                       const tconv_config *config, size_t *bytes)
{
    if (bytes != NULL)
        *bytes = 0;
    return no_cuda(bytes != NULL, p, config, pass, NULL);
}

/* x is (N, C_in, H_in, W_in), weight is (C_in, C_out/groups, kH, kW), bias is (C_out) or NULL,
 * y is (N, C_out, H_out, W_out). */
tconv_status tconv_forward_cuda(const tconv_problem *p, const tconv_config *config,
                                const void *x, const void *weight, const void *bias, void *y,
                                void *workspace, size_t workspace_bytes, struct CUstream_st *stream)
{
    (void)workspace;
    (void)workspace_bytes;
    (void)stream;
    const no_cuda_tensors t = {x, weight, bias, NULL, y};
    return no_cuda(x != NULL && weight != NULL && y != NULL, p, config, TCONV_PASS_FORWARD, &t);
}

/* grad_y is (N, C_out, H_out, W_out), weight is (C_in, C_out/groups, kH, kW),
 * grad_x is (N, C_in, H_in, W_in). */
tconv_status tconv_grad_input_cuda(const tconv_problem *p, const tconv_config *config,
                                   const void *grad_y, const void *weight, void *grad_x,
                                   void *workspace, size_t workspace_bytes,
                                   struct CUstream_st *stream)
{
    (void)workspace;
    (void)workspace_bytes;
    (void)stream;
    const no_cuda_tensors t = {NULL, weight, NULL, grad_y, grad_x};
    return no_cuda(grad_y != NULL && weight != NULL && grad_x != NULL, p, config,
                   TCONV_PASS_GRAD_INPUT, &t);
}

/* x is (N, C_in, H_in, W_in), grad_y is (N, C_out, H_out, W_out),
 * grad_weight is (C_in, C_out/groups, kH, kW). */
tconv_status tconv_grad_weight_cuda(const tconv_problem *p, const tconv_config *config,
                                    const void *x, const void *grad_y, void *grad_weight,
                                    void *workspace, size_t workspace_bytes,
                                    struct CUstream_st *stream)
{
    (void)workspace;
    (void)workspace_bytes;
    (void)stream;
    const no_cuda_tensors t = {x, NULL, NULL, grad_y, grad_weight};
    return no_cuda(x != NULL && grad_y != NULL && grad_weight != NULL, p, config,
                   TCONV_PASS_GRAD_WEIGHT, &t);
}

/* grad_y is (N, C_out, H_out, W_out), grad_bias is (C_out). */
tconv_status tconv_grad_bias_cuda(const tconv_problem *p, const tconv_config *config,
                                  const void *grad_y, void *grad_bias,
                                  void *workspace, size_t workspace_bytes,
                                  struct CUstream_st *stream)
{
    (void)workspace;
    (void)workspace_bytes;
    (void)stream;
    const no_cuda_tensors t = {NULL, NULL, NULL, grad_y, grad_bias};
    return no_cuda(grad_y != NULL && grad_bias != NULL, p, config, TCONV_PASS_GRAD_BIAS, &t);
}

/* No plan can be made without CUDA: tconv_plan_create fails like the calls above, and every
 * other plan call refuses the plan it is given. */
tconv_status tconv_plan_create(tconv_plan **plan, const tconv_problem *p, tconv_pass pass,
                               const tconv_config *config)
{
    if (plan != NULL)
        *plan = NULL;
    return no_cuda(plan != NULL, p, config, pass, NULL);
}

tconv_status tconv_plan_destroy(tconv_plan *plan)
{
    return plan == NULL ? TCONV_SUCCESS : TCONV_INVALID_PLAN;
}

tconv_status tconv_plan_workspace_size(const tconv_plan *plan, size_t *bytes)
{
    (void)plan;
    (void)bytes;
    return TCONV_INVALID_PLAN;
}

tconv_status tconv_plan_algorithm(const tconv_plan *plan, const char **name)
{
    (void)plan;
    (void)name;
    return TCONV_INVALID_PLAN;
}

tconv_status tconv_plan_forward(const tconv_plan *plan, const tconv_problem *p, const void *x,
                                const void *weight, const void *bias, void *y, void *workspace,
                                size_t workspace_bytes, struct CUstream_st *stream)
{
    (void)plan, (void)p, (void)x, (void)weight, (void)bias, (void)y, (void)workspace;
    (void)workspace_bytes, (void)stream;
    return TCONV_INVALID_PLAN;
}

tconv_status tconv_plan_grad_input(const tconv_plan *plan, const tconv_problem *p,
                                   const void *grad_y, const void *weight, void *grad_x,
                                   void *workspace, size_t workspace_bytes,
                                   struct CUstream_st *stream)
{
    (void)plan, (void)p, (void)grad_y, (void)weight, (void)grad_x, (void)workspace;
    (void)workspace_bytes, (void)stream;
    return TCONV_INVALID_PLAN;
}

tconv_status tconv_plan_grad_weight(const tconv_plan *plan, const tconv_problem *p, const void *x,
                                    const void *grad_y, void *grad_weight, void *workspace,
                                    size_t workspace_bytes, struct CUstream_st *stream)
{
    (void)plan, (void)p, (void)x, (void)grad_y, (void)grad_weight, (void)workspace;
    (void)workspace_bytes, (void)stream;
    return TCONV_INVALID_PLAN;
}

tconv_status tconv_plan_grad_bias(const tconv_plan *plan, const tconv_problem *p,
                                  const void *grad_y, void *grad_bias, void *workspace,
                                  size_t workspace_bytes, struct CUstream_st *stream)
{
    (void)plan, (void)p, (void)grad_y, (void)grad_bias, (void)workspace;
    (void)workspace_bytes, (void)stream;
    return TCONV_INVALID_PLAN;
}
