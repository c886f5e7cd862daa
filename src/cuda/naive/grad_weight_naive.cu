/*
 * grad_weight_naive.cu - "grad_weight_naive": grad_weight[ci, co, kh, kw] = the sum over the
 * batch and the input pixels of x * grad_y at the output pixel the tap reaches; one thread
 * per grad_weight element.  Every problem, every dtype: the path for whatever the fast
 * grad-weight variants do not take.
 *
 * The sums are long (N * H_in * W_in terms): chunked_sum keeps them float32-accurate, and
 * one thread owning each whole sum makes the result bitwise deterministic.
 */
#include "cuda/naive/naive.cuh"

/* x is (N, C_in, H_in, W_in), grad_y is (N, C_out, H_out, W_out),
 * grad_weight is (C_in, C_out/groups, kH, kW). */
template <typename T>
__global__ void grad_weight_naive_kernel(tconv_problem p, bool tf32, const T *x, const T *grad_y,
                                         T *grad_weight)
{
    typedef acc_t<T> A;
    const int64_t cig = p.c_in / p.groups, cog = p.c_out / p.groups;
    const int64_t total = p.c_in * cog * p.kernel_h * p.kernel_w;
    for (int64_t i = grid_start(); i < total; i += grid_step()) {
        const int64_t kw = i % p.kernel_w, kh = i / p.kernel_w % p.kernel_h;
        const int64_t co_l = i / (p.kernel_w * p.kernel_h) % cog, ci = i / (p.kernel_w * p.kernel_h * cog);
        const int64_t co = ci / cig * cog + co_l;
        chunked_sum<A> sum;
        for (int64_t n = 0; n < p.n; n++) {
            const T *xc = x + (n * p.c_in + ci) * p.h_in * p.w_in;
            const T *gy = grad_y + (n * p.c_out + co) * p.h_out * p.w_out;
            for (int64_t ih = 0; ih < p.h_in; ih++) {
                const int64_t oh = ih * p.stride_h - p.padding_h + kh * p.dilation_h;
                if (oh < 0 || oh >= p.h_out)
                    continue;
                for (int64_t iw = 0; iw < p.w_in; iw++) {
                    const int64_t ow = iw * p.stride_w - p.padding_w + kw * p.dilation_w;
                    if (ow < 0 || ow >= p.w_out)
                        continue;
                    const A xv = to_acc(xc[ih * p.w_in + iw]);
                    const A gv = to_acc(gy[oh * p.w_out + ow]);
                    sum.add(operand(xv, tf32) * operand(gv, tf32));
                }
            }
        }
        grad_weight[i] = from_acc<T>(sum.total());
    }
}

struct grad_weight_naive_launch {
    const tconv_args *a;
    template <typename T> cudaError_t operator()() const
    {
        const tconv_problem *p = a->p;
        grad_weight_naive_kernel<T><<<naive_blocks(tconv_weight_elems(p)), NAIVE_THREADS, 0, a->stream>>>(
            *p, tf32_mode(a->config), (const T *)a->x, (const T *)a->grad_y, (T *)a->grad_weight);
        return cudaGetLastError();
    }
};

const tconv_variant tconv_variant_grad_weight_naive = {
    "grad_weight_naive", TCONV_PASS_GRAD_WEIGHT, naive_can_implement, naive_plan,
    launch_by_dtype<grad_weight_naive_launch>,
};
