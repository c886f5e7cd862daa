/*
 * grad_bias.c - CPU reference of grad_bias: the sum of grad_y over the batch and the plane.
 */
#include <stddef.h>
#include <stdint.h>

#include "cpu/cpu.h"
#include "tconv.h"

/* grad_y is (N, C_out, H_out, W_out), grad_bias is (C_out). */
static tconv_status grad_bias_pass(const tconv_problem *problem, cpu_type type, const void *grad_y,
                                   void *grad_bias)
{
    tconv_problem p;
    tconv_status status = cpu_check(problem, grad_y != NULL, grad_bias != NULL, &p);
    if (status == TCONV_SUCCESS)
        status = cpu_check_aliasing(&p, TCONV_PASS_GRAD_BIAS, type, NULL, NULL, NULL, grad_y, grad_bias);
    if (status != TCONV_SUCCESS)
        return status;

    const int64_t plane = p.h_out * p.w_out;
    const double work = (double)tconv_y_elems(&p);
    /* one channel per iteration, summed in a fixed order; N == 0 leaves zeros */
#pragma omp parallel for schedule(static) if (cpu_parallel(work))
    for (int64_t c = 0; c < p.c_out; c++) {
        double sum = 0.0;
        for (int64_t n = 0; n < p.n; n++) {
            for (int64_t i = 0; i < plane; i++)
                sum += cpu_load(grad_y, type, (n * p.c_out + c) * plane + i);
        }
        cpu_store(grad_bias, type, c, sum);
    }
    return TCONV_SUCCESS;
}

tconv_status tconv_grad_bias_cpu_f32(const tconv_problem *p, const float *grad_y,
                                     float *grad_bias)
{
    return grad_bias_pass(p, CPU_FLOAT32, grad_y, grad_bias);
}

tconv_status tconv_grad_bias_cpu_f64(const tconv_problem *p, const double *grad_y,
                                     double *grad_bias)
{
    return grad_bias_pass(p, CPU_FLOAT64, grad_y, grad_bias);
}
