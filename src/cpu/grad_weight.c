/*
 * grad_weight.c - CPU reference of grad_weight: each tap sums x * grad_y over the batch and
 * over the input pixels that the tap scatters inside the output.
 */
#include <stddef.h>
#include <stdint.h>

#include "cpu/cpu.h"
#include "tconv.h"

/* x is (N, C_in, H_in, W_in), grad_y is (N, C_out, H_out, W_out),
 * grad_weight is (C_in, C_out/groups, kH, kW). */
static tconv_status grad_weight_pass(const tconv_problem *problem, cpu_type type, const void *x,
                                     const void *grad_y, void *grad_weight)
{
    tconv_problem p;
    tconv_status status =
        cpu_check(problem, x != NULL && grad_y != NULL, grad_weight != NULL, &p);
    if (status == TCONV_SUCCESS)
        status = cpu_check_aliasing(&p, TCONV_PASS_GRAD_WEIGHT, type, x, NULL, NULL, grad_y, grad_weight);
    if (status != TCONV_SUCCESS)
        return status;

    const int64_t cig = p.c_in / p.groups, cog = p.c_out / p.groups;
    const int64_t taps = tconv_weight_elems(&p);
    const double work = (double)taps * p.n * p.h_in * p.w_in;
    /* one weight element per iteration, summed in a fixed order; N == 0 leaves zeros */
#pragma omp parallel for schedule(static) if (cpu_parallel(work))
    for (int64_t e = 0; e < taps; e++) {
        const int64_t kw = e % p.kernel_w;
        const int64_t kh = e / p.kernel_w % p.kernel_h;
        const int64_t co = e / p.kernel_w / p.kernel_h % cog;
        const int64_t ci = e / p.kernel_w / p.kernel_h / cog;
        const int64_t c = ci / cig * cog + co; /* output channel g*cog + co */
        double sum = 0.0;
        for (int64_t n = 0; n < p.n; n++) {
            for (int64_t ih = 0; ih < p.h_in; ih++) {
                const int64_t oh = ih * p.stride_h - p.padding_h + kh * p.dilation_h;
                if (oh < 0 || oh >= p.h_out)
                    continue;
                for (int64_t iw = 0; iw < p.w_in; iw++) {
                    const int64_t ow = iw * p.stride_w - p.padding_w + kw * p.dilation_w;
                    if (ow < 0 || ow >= p.w_out)
                        continue;
                    const int64_t at_x = cpu_index(n, ci, p.c_in, ih, p.h_in, iw, p.w_in);
                    const int64_t at_y = cpu_index(n, c, p.c_out, oh, p.h_out, ow, p.w_out);
                    sum += cpu_load(x, type, at_x) * cpu_load(grad_y, type, at_y);
                }
            }
        }
        cpu_store(grad_weight, type, e, sum);
    }
    return TCONV_SUCCESS;
}

tconv_status tconv_grad_weight_cpu_f32(const tconv_problem *p, const float *x,
                                       const float *grad_y, float *grad_weight)
{
    return grad_weight_pass(p, CPU_FLOAT32, x, grad_y, grad_weight);
}

tconv_status tconv_grad_weight_cpu_f64(const tconv_problem *p, const double *x,
                                       const double *grad_y, double *grad_weight)
{
    return grad_weight_pass(p, CPU_FLOAT64, x, grad_y, grad_weight);
}
