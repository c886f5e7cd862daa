/*
 * device.cu - what each device lends the kernels, queried once per device, and the kernels'
 * dynamic shared-memory limits, set once per device and kernel (and raised where a later plan
 * needs more): plans do both, so that runs make no such calls.
 */
#include <mutex>
#include <unordered_map>

#include "cuda/variant.h"

#define TCONV_MAX_DEVICES 64

static std::mutex caps_lock;
static tconv_device_caps caps_of[TCONV_MAX_DEVICES];
static bool caps_known[TCONV_MAX_DEVICES];

cudaError_t tconv_device_caps_of(int ordinal, const tconv_device_caps **caps)
{
    if (ordinal < 0 || ordinal >= TCONV_MAX_DEVICES)
        return cudaErrorInvalidDevice;
    std::lock_guard<std::mutex> hold(caps_lock);
    tconv_device_caps *c = &caps_of[ordinal];
    if (!caps_known[ordinal]) {
        c->ordinal = ordinal;
        cudaError_t err = cudaDeviceGetAttribute(&c->cc_major, cudaDevAttrComputeCapabilityMajor, ordinal);
        if (err == cudaSuccess)
            err = cudaDeviceGetAttribute(&c->cc_minor, cudaDevAttrComputeCapabilityMinor, ordinal);
        if (err == cudaSuccess)
            err = cudaDeviceGetAttribute(&c->sms, cudaDevAttrMultiProcessorCount, ordinal);
        if (err == cudaSuccess)
            err = cudaDeviceGetAttribute(&c->smem_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, ordinal);
        if (err != cudaSuccess)
            return err;
#if defined(TCONV_WGMMA)
        /* sm_90a code runs on 9.0 devices only */
        c->sm90a = c->cc_major == 9 && c->cc_minor == 0;
#else
        c->sm90a = 0;
#endif
        caps_known[ordinal] = true;
    }
    *caps = c;
    return cudaSuccess;
}

/* (device, kernel) -> the dynamic shared-memory limit last set */
struct kernel_key {
    int ordinal;
    const void *kernel;
    bool operator==(const kernel_key &o) const { return ordinal == o.ordinal && kernel == o.kernel; }
};
struct kernel_key_hash {
    size_t operator()(const kernel_key &k) const { return std::hash<const void *>()(k.kernel) ^ (size_t)k.ordinal; }
};
static std::mutex smem_lock;
static std::unordered_map<kernel_key, size_t, kernel_key_hash> smem_limits;

cudaError_t tconv_kernel_smem(const void *kernel, size_t bytes, int ordinal)
{
    std::lock_guard<std::mutex> hold(smem_lock);
    size_t &limit = smem_limits[kernel_key{ordinal, kernel}];
    if (bytes <= limit && limit > 0)
        return cudaSuccess;
    const cudaError_t err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes);
    if (err == cudaSuccess)
        limit = bytes;
    return err;
}
