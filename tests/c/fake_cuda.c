/*
 * fake_cuda.c - a CUDA runtime without a GPU, for running the host side of the CUDA library
 * on any machine: link it instead of libcudart.
 *
 * It has two devices, a 108-SM 8.0 device (the A100's limits) and a 132-SM 9.0 device (the
 * H100's), answers the attribute and occupancy queries the library makes, and records every
 * kernel launch (by the kernel's mangled name), memset and attribute setting instead of
 * running them.  A launch whose dynamic shared memory is over 48 KB and over what
 * cudaFuncSetAttribute allowed that kernel on that device fails as the real runtime's does.
 * fake_cuda_log() hands the record to the test, which prints or checks it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "fake_cuda.h"

#define FAKE_DEVICES 2
#define FAKE_KERNELS 4096
#define DEFAULT_SMEM (48 * 1024)

typedef struct fake_device {
    int major, minor, sms, smem_optin, smem_per_sm;
} fake_device;

static const fake_device devices[FAKE_DEVICES] = {
    {8, 0, 108, 166912, 167936},
    {9, 0, 132, 232448, 233472},
};

/* kernels by host stub address: their names, and what cudaFuncSetAttribute allowed them */
typedef struct fake_kernel {
    const void *stub;
    const char *name;
    int smem_limit[FAKE_DEVICES];
} fake_kernel;

static fake_kernel kernels[FAKE_KERNELS];
static int nkernels;
static int current;
static cudaError_t last_error = cudaSuccess;
static fake_cuda_event events[FAKE_CUDA_EVENTS];
static int nevents;
static long attribute_calls;

static fake_kernel *kernel_of(const void *stub)
{
    for (int i = 0; i < nkernels; i++)
        if (kernels[i].stub == stub)
            return &kernels[i];
    return NULL;
}

static void record(fake_cuda_event e)
{
    if (nevents < FAKE_CUDA_EVENTS)
        events[nevents] = e;
    nevents++;
}

const fake_cuda_event *fake_cuda_log(int *count)
{
    *count = nevents < FAKE_CUDA_EVENTS ? nevents : FAKE_CUDA_EVENTS;
    return events;
}

int fake_cuda_log_overflowed(void) { return nevents > FAKE_CUDA_EVENTS; }

void fake_cuda_log_clear(void) { nevents = 0; }

long fake_cuda_attribute_calls(void) { return attribute_calls; }

/* ---- registration (the static constructors of every CUDA object) ---- */

void **__cudaRegisterFatBinary(void *fat_cubin)
{
    static void *handle;
    (void)fat_cubin;
    return &handle;
}

void __cudaRegisterFatBinaryEnd(void **handle) { (void)handle; }

void __cudaUnregisterFatBinary(void **handle) { (void)handle; }

void __cudaRegisterFunction(void **handle, const char *host_fun, char *device_fun, const char *device_name,
                            int thread_limit, void *tid, void *bid, void *block, void *grid, int *wsize)
{
    (void)handle, (void)device_fun, (void)thread_limit, (void)tid, (void)bid, (void)block, (void)grid;
    (void)wsize;
    if (nkernels == FAKE_KERNELS) {
        fprintf(stderr, "fake_cuda: more than %d kernels\n", FAKE_KERNELS);
        abort();
    }
    fake_kernel *k = &kernels[nkernels++];
    k->stub = host_fun;
    k->name = device_name;
    for (int d = 0; d < FAKE_DEVICES; d++)
        k->smem_limit[d] = DEFAULT_SMEM;
}

/* ---- launches ---- */

static dim3 pushed_grid, pushed_block;
static size_t pushed_smem;
static void *pushed_stream;

unsigned __cudaPushCallConfiguration(dim3 grid, dim3 block, size_t smem, void *stream)
{
    pushed_grid = grid;
    pushed_block = block;
    pushed_smem = smem;
    pushed_stream = stream;
    return 0;
}

cudaError_t __cudaPopCallConfiguration(dim3 *grid, dim3 *block, size_t *smem, void *stream)
{
    *grid = pushed_grid;
    *block = pushed_block;
    *smem = pushed_smem;
    *(void **)stream = pushed_stream;
    return cudaSuccess;
}

cudaError_t __cudaGetKernel(void **kernel, const void *fun)
{
    *kernel = (void *)fun;
    return cudaSuccess;
}

static cudaError_t launch(const void *fun, dim3 grid, dim3 block, size_t smem, void *stream)
{
    const fake_kernel *k = kernel_of(fun);
    fake_cuda_event e = {FAKE_LAUNCH, k ? k->name : "(unknown kernel)", {grid.x, grid.y, grid.z},
                         {block.x, block.y, block.z}, smem, stream, NULL, 0, 0};
    record(e);
    if (k == NULL || grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.y > 65535 || grid.z > 65535 ||
        block.x * block.y * block.z > 1024 || smem > (size_t)k->smem_limit[current])
        last_error = cudaErrorInvalidValue;
    return last_error;
}

cudaError_t __cudaLaunchKernel(const void *kernel, dim3 grid, dim3 block, void **args, size_t smem, void *stream)
{
    (void)args;
    return launch(kernel, grid, block, smem, stream);
}

cudaError_t cudaLaunchKernel(const void *fun, dim3 grid, dim3 block, void **args, size_t smem, cudaStream_t stream)
{
    (void)args;
    return launch(fun, grid, block, smem, stream);
}

cudaError_t cudaMemsetAsync(void *ptr, int value, size_t bytes, cudaStream_t stream)
{
    fake_cuda_event e = {FAKE_MEMSET, NULL, {0, 0, 0}, {0, 0, 0}, 0, stream, ptr, value, bytes};
    record(e);
    return cudaSuccess;
}

cudaError_t cudaGetLastError(void)
{
    const cudaError_t err = last_error;
    last_error = cudaSuccess;
    return err;
}

cudaError_t cudaPeekAtLastError(void) { return last_error; }

/* ---- devices ---- */

cudaError_t cudaGetDeviceCount(int *count)
{
    *count = FAKE_DEVICES;
    return cudaSuccess;
}

cudaError_t cudaGetDevice(int *device)
{
    *device = current;
    return cudaSuccess;
}

cudaError_t cudaSetDevice(int device)
{
    if (device < 0 || device >= FAKE_DEVICES)
        return cudaErrorInvalidDevice;
    current = device;
    return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int *value, enum cudaDeviceAttr attr, int device)
{
    if (device < 0 || device >= FAKE_DEVICES)
        return cudaErrorInvalidDevice;
    const fake_device *d = &devices[device];
    switch (attr) {
    case cudaDevAttrComputeCapabilityMajor: *value = d->major; return cudaSuccess;
    case cudaDevAttrComputeCapabilityMinor: *value = d->minor; return cudaSuccess;
    case cudaDevAttrMultiProcessorCount: *value = d->sms; return cudaSuccess;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = d->smem_optin; return cudaSuccess;
    case cudaDevAttrMaxSharedMemoryPerMultiprocessor: *value = d->smem_per_sm; return cudaSuccess;
    default:
        fprintf(stderr, "fake_cuda: device attribute %d is not faked\n", (int)attr);
        return cudaErrorInvalidValue;
    }
}

cudaError_t cudaFuncSetAttribute(const void *func, enum cudaFuncAttribute attr, int value)
{
    fake_kernel *k = kernel_of(func);
    attribute_calls++;
    if (k == NULL || attr != cudaFuncAttributeMaxDynamicSharedMemorySize || value < 0 ||
        value > devices[current].smem_optin)
        return cudaErrorInvalidValue;
    k->smem_limit[current] = value;
    return cudaSuccess;
}

/* Some number of resident CTAs that depends only on the arguments (registers are not known
 * here): what the threads and the shared memory of an SM allow, capped at 32. */
cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(int *blocks, const void *func, int threads,
                                                                   size_t smem, unsigned flags)
{
    (void)flags;
    const fake_kernel *k = kernel_of(func);
    if (k == NULL || threads < 1 || threads > 1024 || smem > (size_t)k->smem_limit[current])
        return cudaErrorInvalidValue;
    int n = 2048 / threads;
    const size_t per_cta = smem + 1024;
    if ((size_t)n * per_cta > (size_t)devices[current].smem_per_sm)
        n = (int)(devices[current].smem_per_sm / per_cta);
    *blocks = n < 32 ? n : 32;
    return cudaSuccess;
}

cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int *blocks, const void *func, int threads, size_t smem)
{
    return cudaOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(blocks, func, threads, smem, 0);
}
