/*
 * forward.c - CPU reference of the forward pass: y = bias + the scatter of x through weight.
 */
#include <stddef.h>
#include <stdint.h>

#include "cpu/cpu.h"
#include "tconv.h"

/* x is (N, C_in, H_in, W_in), weight is (C_in, C_out/groups, kH, kW), bias is (C_out) or NULL,
 * y is (N, C_out, H_out, W_out). */
static tconv_status forward_pass(const tconv_problem *problem, cpu_type type, const void *x,
                                 const void *weight, const void *bias, void *y)
{
    tconv_problem p;
    tconv_status status = cpu_check(problem, x != NULL && y != NULL, weight != NULL, &p);
    if (status == TCONV_SUCCESS)
        status = cpu_check_aliasing(&p, TCONV_PASS_FORWARD, type, x, weight, bias, NULL, y);
    if (status != TCONV_SUCCESS)
        return status;

    const int64_t cig = p.c_in / p.groups, cog = p.c_out / p.groups;
    const int64_t rows = p.n * p.c_out * p.h_out;
    const double work = (double)tconv_y_elems(&p) * cig * p.kernel_h * p.kernel_w;
    /* Each iteration owns one output row and gathers every input pixel that scatters into
     * it, in a fixed order: no two threads write one element, and the thread count does
     * not change the result. */
#pragma omp parallel for schedule(static) if (cpu_parallel(work))
    for (int64_t row = 0; row < rows; row++) {
        const int64_t oh = row % p.h_out;
        const int64_t c = row / p.h_out % p.c_out; /* output channel g*cog + co */
        const int64_t n = row / p.h_out / p.c_out;
        const int64_t g = c / cog, co = c % cog;
        for (int64_t ow = 0; ow < p.w_out; ow++) {
            double sum = bias != NULL ? cpu_load(bias, type, c) : 0.0;
            for (int64_t kh = 0; kh < p.kernel_h; kh++) {
                /* the input row ih with ih*stride - padding + kh*dilation == oh, if any */
                const int64_t th = oh + p.padding_h - kh * p.dilation_h;
                if (th < 0 || th % p.stride_h != 0 || th / p.stride_h >= p.h_in)
                    continue;
                const int64_t ih = th / p.stride_h;
                for (int64_t kw = 0; kw < p.kernel_w; kw++) {
                    const int64_t tw = ow + p.padding_w - kw * p.dilation_w;
                    if (tw < 0 || tw % p.stride_w != 0 || tw / p.stride_w >= p.w_in)
                        continue;
                    const int64_t iw = tw / p.stride_w;
                    /* channels innermost: the divisibility tests above run once per tap */
                    for (int64_t ci = g * cig; ci < (g + 1) * cig; ci++) {
                        const int64_t at_x = cpu_index(n, ci, p.c_in, ih, p.h_in, iw, p.w_in);
                        const int64_t at_w = cpu_index(ci, co, cog, kh, p.kernel_h, kw, p.kernel_w);
                        sum += cpu_load(x, type, at_x) * cpu_load(weight, type, at_w);
                    }
                }
            }
            cpu_store(y, type, row * p.w_out + ow, sum);
        }
    }
    return TCONV_SUCCESS;
}

tconv_status tconv_forward_cpu_f32(const tconv_problem *p, const float *x, const float *weight,
                                   const float *bias, float *y)
{
    return forward_pass(p, CPU_FLOAT32, x, weight, bias, y);
}

tconv_status tconv_forward_cpu_f64(const tconv_problem *p, const double *x, const double *weight,
                                   const double *bias, double *y)
{
    return forward_pass(p, CPU_FLOAT64, x, weight, bias, y);
}
