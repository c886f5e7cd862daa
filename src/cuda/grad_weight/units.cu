/*
 * grad_weight/units.cu - the host side of the unit-tiled grad_weight variants (the plan, the
 * workspace, the launch); see units.cuh.
 */
#include "cuda/grad_weight/slices.cuh"
#include "cuda/grad_weight/units.cuh"

int units_width_x(const tconv_problem *p, const void *x)
{
    const uintptr_t at = (uintptr_t)x / sizeof(float);
    for (int v = 4; v > 1; v /= 2)
        if (p->w_in % v == 0 && at % v == 0) return v;
    return 1;
}

int units_width_gy(const tconv_problem *p, const void *grad_y)
{
    const uintptr_t at = (uintptr_t)grad_y / sizeof(float);
    for (int v = 4; v > 1; v /= 2)
        if (p->w_out % v == 0 && p->padding_w % v == 0 && at % v == 0) return v;
    return 1;
}

int units_can_implement(const tconv_problem *p, int smem_bytes, const tconv_device_caps *d)
{
    if (p->stride_h != 1 || p->stride_w != 1 || p->kernel_w > UNITS_KW || p->dilation_w > 2) return 0;
    /* rows and columns are computed in int: ih - padding_h + kh*dilation_h, and a unit's
     * columns up to UNITS_PX + 8 past the input (checked in double against overflow) */
    if ((double)p->h_in + (double)p->padding_h + (double)p->kernel_h * p->dilation_h > INT32_MAX ||
        (double)p->w_in + UNITS_PX + 8 + (double)p->padding_w > INT32_MAX)
        return 0;
    const int64_t units = p->n * p->h_in * ((p->w_in + UNITS_PX - 1) / UNITS_PX);
    if (units > ((int64_t)1 << 40)) return 0; /* blockIdx.y * units stays in int64 */
    return smem_bytes <= d->smem_optin;
}

int units_plan(const tconv_problem *p, const tconv_device_caps *d, const units_kernel *kernels, int count, int threads,
             int smem_bytes, int co_tile, units_params *q)
{
    const int64_t cig = p->c_in / p->groups, cog = p->c_out / p->groups;
    const int64_t ci_tiles = (cig + UNITS_CI - 1) / UNITS_CI, co_tiles = (cog + co_tile - 1) / co_tile;
    const int64_t kh_groups = (p->kernel_h + UNITS_KH - 1) / UNITS_KH;
    const int64_t tiles = p->groups * ci_tiles * co_tiles * kh_groups;
    if (tiles > INT32_MAX) return 0;
    for (int i = 0; i < count; i++)
        if (tconv_kernel_smem((const void *)kernels[i], (size_t)smem_bytes, d->ordinal) != cudaSuccess) return 0;
    int per_sm = 0;
    if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernels[0], threads, smem_bytes) != cudaSuccess ||
        per_sm < 1)
        return 0;

    const int64_t nseg = (p->w_in + UNITS_PX - 1) / UNITS_PX;
    const int64_t units = p->n * p->h_in * nseg;
    const int64_t weight_elems = p->c_in * cog * p->kernel_h * p->kernel_w;
    const int64_t slices = grad_weight_slice_count(UNITS_WAVES, (int64_t)d->sms * per_sm, tiles, weight_elems,
                                                   units < 65535 ? units : 65535); /* gridDim.y */
    if (units / slices + 1 > INT32_MAX) return 0; /* a CTA counts its units in int */

    q->x = q->grad_y = NULL;
    q->partial = NULL;
    q->c_in = (int)p->c_in; q->h_in = (int)p->h_in; q->w_in = (int)p->w_in;
    q->c_out = (int)p->c_out; q->h_out = (int)p->h_out; q->w_out = (int)p->w_out;
    q->kernel_h = (int)p->kernel_h; q->kernel_w = (int)p->kernel_w;
    q->padding_h = (int)p->padding_h; q->padding_w = (int)p->padding_w;
    q->dilation_h = (int)p->dilation_h;
    q->cig = (int)cig; q->cog = (int)cog;
    q->ci_tiles = (int)ci_tiles; q->co_tiles = (int)co_tiles; q->kh_groups = (int)kh_groups;
    q->nseg = (int)nseg;
    q->units = units;
    q->slices = (int)slices;
    q->weight_elems = weight_elems;
    return 1;
}

size_t units_workspace_bytes(const units_params *q)
{
    return ((size_t)q->slices * (size_t)q->weight_elems * sizeof(float) + 255) / 256 * 256;
}

cudaError_t units_launch(const tconv_args *a, const units_params *plan, units_kernel kernel, int threads,
                         int smem_bytes)
{
    units_params q = *plan;
    q.x = (const float *)a->x;
    q.grad_y = (const float *)a->grad_y;
    q.partial = (float *)a->workspace;
    const dim3 grid((unsigned)((int64_t)a->p->groups * q.ci_tiles * q.co_tiles * q.kh_groups), (unsigned)q.slices);
    kernel<<<grid, threads, smem_bytes, a->stream>>>(q);
    const cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess) return err;
    return grad_weight_launch_reduce<float>(q.partial, (float *)a->grad_weight, q.slices, q.weight_elems, a->stream);
}
