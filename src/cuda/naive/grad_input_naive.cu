/*
 * grad_input_naive.cu - "grad_input_naive": grad_x = the plain convolution (cross-correlation)
 * of grad_y with weight, one thread per grad_x element.  Every problem, every dtype: the
 * path for whatever the fast grad-input variants do not take.
 */
#include "cuda/naive/naive.cuh"

/* grad_y is (N, C_out, H_out, W_out), weight is (C_in, C_out/groups, kH, kW),
 * grad_x is (N, C_in, H_in, W_in). */
template <typename T>
__global__ void grad_input_naive_kernel(tconv_problem p, bool tf32, const T *grad_y,
                                        const T *weight, T *grad_x)
{
    typedef acc_t<T> A;
    const int64_t cig = p.c_in / p.groups, cog = p.c_out / p.groups;
    const int64_t total = p.n * p.c_in * p.h_in * p.w_in;
    for (int64_t i = grid_start(); i < total; i += grid_step()) {
        const int64_t iw = i % p.w_in, ih = i / p.w_in % p.h_in;
        const int64_t ci = i / (p.w_in * p.h_in) % p.c_in, n = i / (p.w_in * p.h_in * p.c_in);
        const int64_t g = ci / cig;
        chunked_sum<A> sum;
        for (int64_t co_l = 0; co_l < cog; co_l++) {
            const T *gy = grad_y + (n * p.c_out + g * cog + co_l) * p.h_out * p.w_out;
            for (int64_t kh = 0; kh < p.kernel_h; kh++) {
                const int64_t oh = ih * p.stride_h - p.padding_h + kh * p.dilation_h;
                if (oh < 0 || oh >= p.h_out)
                    continue;
                for (int64_t kw = 0; kw < p.kernel_w; kw++) {
                    const int64_t ow = iw * p.stride_w - p.padding_w + kw * p.dilation_w;
                    if (ow < 0 || ow >= p.w_out)
                        continue;
                    const A gv = to_acc(gy[oh * p.w_out + ow]);
                    const A wv = to_acc(weight[((ci * cog + co_l) * p.kernel_h + kh) * p.kernel_w + kw]);
                    sum.add(operand(gv, tf32) * operand(wv, tf32));
                }
            }
        }
        grad_x[i] = from_acc<T>(sum.total());
    }
}

struct grad_input_naive_launch {
    const tconv_args *a;
    template <typename T> cudaError_t operator()() const
    {
        const tconv_problem *p = a->p;
        grad_input_naive_kernel<T><<<naive_blocks(tconv_x_elems(p)), NAIVE_THREADS, 0, a->stream>>>(
            *p, tf32_mode(a->config), (const T *)a->grad_y, (const T *)a->weight, (T *)a->grad_x);
        return cudaGetLastError();
    }
};

const tconv_variant tconv_variant_grad_input_naive = {
    "grad_input_naive", TCONV_PASS_GRAD_INPUT, naive_can_implement, naive_plan,
    launch_by_dtype<grad_input_naive_launch>,
};
