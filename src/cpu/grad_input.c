/*
 * grad_input.c - CPU reference of grad_x: every input pixel collects grad_y from the output
 * pixels it scattered into (a plain cross-correlation of grad_y with weight).
 */
#include <stddef.h>
#include <stdint.h>

#include "cpu/cpu.h"
#include "tconv.h"

/* grad_y is (N, C_out, H_out, W_out), weight is (C_in, C_out/groups, kH, kW),
 * grad_x is (N, C_in, H_in, W_in). */
static tconv_status grad_input_pass(const tconv_problem *problem, cpu_type type, const void *grad_y,
                                    const void *weight, void *grad_x)
{
    tconv_problem p;
    tconv_status status =
        cpu_check(problem, grad_y != NULL && grad_x != NULL, weight != NULL, &p);
    if (status == TCONV_SUCCESS)
        status = cpu_check_aliasing(&p, TCONV_PASS_GRAD_INPUT, type, NULL, weight, NULL, grad_y, grad_x);
    if (status != TCONV_SUCCESS)
        return status;

    const int64_t cig = p.c_in / p.groups, cog = p.c_out / p.groups;
    const int64_t rows = p.n * p.c_in * p.h_in;
    const double work = (double)tconv_x_elems(&p) * cog * p.kernel_h * p.kernel_w;
    /* one row of grad_x per iteration, summed in a fixed order */
#pragma omp parallel for schedule(static) if (cpu_parallel(work))
    for (int64_t row = 0; row < rows; row++) {
        const int64_t ih = row % p.h_in;
        const int64_t ci = row / p.h_in % p.c_in;
        const int64_t n = row / p.h_in / p.c_in;
        const int64_t g = ci / cig;
        for (int64_t iw = 0; iw < p.w_in; iw++) {
            double sum = 0.0;
            for (int64_t co = 0; co < cog; co++) {
                for (int64_t kh = 0; kh < p.kernel_h; kh++) {
                    const int64_t oh = ih * p.stride_h - p.padding_h + kh * p.dilation_h;
                    if (oh < 0 || oh >= p.h_out)
                        continue;
                    for (int64_t kw = 0; kw < p.kernel_w; kw++) {
                        const int64_t ow = iw * p.stride_w - p.padding_w + kw * p.dilation_w;
                        if (ow < 0 || ow >= p.w_out)
                            continue;
                        const int64_t at_y =
                            cpu_index(n, g * cog + co, p.c_out, oh, p.h_out, ow, p.w_out);
                        const int64_t at_w = cpu_index(ci, co, cog, kh, p.kernel_h, kw, p.kernel_w);
                        sum += cpu_load(grad_y, type, at_y) * cpu_load(weight, type, at_w);
                    }
                }
            }
            cpu_store(grad_x, type, row * p.w_in + iw, sum);
        }
    }
    return TCONV_SUCCESS;
}

tconv_status tconv_grad_input_cpu_f32(const tconv_problem *p, const float *grad_y,
                                      const float *weight, float *grad_x)
{
    return grad_input_pass(p, CPU_FLOAT32, grad_y, weight, grad_x);
}

tconv_status tconv_grad_input_cpu_f64(const tconv_problem *p, const double *grad_y,
                                      const double *weight, double *grad_x)
{
    return grad_input_pass(p, CPU_FLOAT64, grad_y, weight, grad_x);
}
