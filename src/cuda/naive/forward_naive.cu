/*
 * forward_naive.cu - "forward_naive": y = conv_transpose2d(x, weight) + bias, one thread per
 * output element, gathering the taps that reach it.  Every problem, every dtype: the path
 * for whatever the fast forward variants do not take.
 */
#include "cuda/naive/naive.cuh"

/* x is (N, C_in, H_in, W_in), weight is (C_in, C_out/groups, kH, kW), bias is (C_out) or
 * NULL, y is (N, C_out, H_out, W_out). */
template <typename T>
__global__ void forward_naive_kernel(tconv_problem p, bool tf32, const T *x, const T *weight,
                                     const T *bias, T *y)
{
    typedef acc_t<T> A;
    const int64_t cig = p.c_in / p.groups, cog = p.c_out / p.groups;
    const int64_t total = p.n * p.c_out * p.h_out * p.w_out;
    for (int64_t i = grid_start(); i < total; i += grid_step()) {
        const int64_t ow = i % p.w_out, oh = i / p.w_out % p.h_out;
        const int64_t co = i / (p.w_out * p.h_out) % p.c_out, n = i / (p.w_out * p.h_out * p.c_out);
        const int64_t g = co / cog, co_l = co % cog;
        chunked_sum<A> sum;
        for (int64_t ci = g * cig; ci < (g + 1) * cig; ci++) {
            for (int64_t kh = 0; kh < p.kernel_h; kh++) {
                /* oh = ih*stride - padding + kh*dilation: a tap reaches oh only when the
                 * stride divides the distance */
                const int64_t th = oh + p.padding_h - kh * p.dilation_h;
                if (th < 0 || th % p.stride_h != 0 || th / p.stride_h >= p.h_in)
                    continue;
                const int64_t ih = th / p.stride_h;
                for (int64_t kw = 0; kw < p.kernel_w; kw++) {
                    const int64_t tw = ow + p.padding_w - kw * p.dilation_w;
                    if (tw < 0 || tw % p.stride_w != 0 || tw / p.stride_w >= p.w_in)
                        continue;
                    const int64_t iw = tw / p.stride_w;
                    const A xv = to_acc(x[((n * p.c_in + ci) * p.h_in + ih) * p.w_in + iw]);
                    const A wv = to_acc(weight[((ci * cog + co_l) * p.kernel_h + kh) * p.kernel_w + kw]);
                    sum.add(operand(xv, tf32) * operand(wv, tf32));
                }
            }
        }
        const A b = bias != NULL ? to_acc(bias[co]) : A(0);
        y[i] = from_acc<T>(sum.total() + b);
    }
}

struct forward_naive_launch {
    const tconv_args *a;
    template <typename T> cudaError_t operator()() const
    {
        const tconv_problem *p = a->p;
        forward_naive_kernel<T><<<naive_blocks(tconv_y_elems(p)), NAIVE_THREADS, 0, a->stream>>>(
            *p, tf32_mode(a->config), (const T *)a->x, (const T *)a->weight, (const T *)a->bias,
            (T *)a->y);
        return cudaGetLastError();
    }
};

const tconv_variant tconv_variant_forward_naive = {
    "forward_naive", TCONV_PASS_FORWARD, naive_can_implement, naive_plan,
    launch_by_dtype<forward_naive_launch>,
};
