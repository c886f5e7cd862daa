/*
 * common.cuh - element types and numerics shared by every kernel.
 *
 * Kernels are templates over the storage type T of the tensors; arithmetic happens in
 * acc_t<T>: float for float32, float16 and bfloat16, double for float64.
 */
#ifndef TCONV_CUDA_COMMON_CUH
#define TCONV_CUDA_COMMON_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

#include "cuda/ptx.cuh"
#include "tconv.h"

template <typename T> struct acc_type { typedef float type; };
template <> struct acc_type<double> { typedef double type; };
template <typename T> using acc_t = typename acc_type<T>::type;

/* Bytes of acc_t for a dtype (host side). */
static inline size_t acc_bytes(tconv_dtype dtype) { return dtype == TCONV_FLOAT64 ? sizeof(double) : sizeof(float); }

/* Whether both operands are rounded to nearest TF32: float32 in tf32 mode (other dtypes
 * ignore the precision mode). */
static inline bool tf32_mode(const tconv_config *config)
{
    return config->dtype == TCONV_FLOAT32 && config->precision == TCONV_PRECISION_TF32;
}

__device__ __forceinline__ float to_acc(float v) { return v; }
__device__ __forceinline__ double to_acc(double v) { return v; }
__device__ __forceinline__ float to_acc(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_acc(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T> __device__ __forceinline__ T from_acc(acc_t<T> v);
template <> __device__ __forceinline__ float from_acc<float>(float v) { return v; }
template <> __device__ __forceinline__ double from_acc<double>(double v) { return v; }
template <> __device__ __forceinline__ __half from_acc<__half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ __nv_bfloat16 from_acc<__nv_bfloat16>(float v)
{
    return __float2bfloat16_rn(v);
}

/* The bits of v as an mma.sync TF32 operand rounded to nearest.  The tensor cores read a
 * float32 register and truncate it to TF32; half a TF32 ulp added to the bits first makes
 * that truncation round to nearest, ties away, as cvt.rna does (finite v and infinities).
 * NaNs go as the canonical NaN: the add would carry one whose top mantissa bits are all
 * set (CUDA's own 0x7fffffff) into the sign bit, and the tensor core would read -0. */
__device__ __forceinline__ uint32_t tf32_operand_bits(float v) { return v == v ? __float_as_uint(v) + 0x1000u : 0x7fffffffu; }

/* v as a TF32 operand of the tensor cores, rounded to nearest: cvt.rna's add of half a TF32
 * ulp to finite values (infinities and NaN as they are), without its mask of the 13 low
 * bits, which the tensor cores drop as they read the operand: two instructions, not three. */
__device__ __forceinline__ float tf32_rna_operand(float v)
{
    return fabsf(v) < __int_as_float(0x7f800000) ? __uint_as_float(__float_as_uint(v) + 0x1000u) : v;
}

/* v as the sum of two TF32 mma operands, big = round_tf32(v) exactly (the same bits as
 * cvt.rna) and small = v - big (exact in float32), rounded where the mma reads it: the
 * 3xTF32 split.  An infinite v gives a NaN small part. */
__device__ __forceinline__ void tf32_split(float v, uint32_t &big, uint32_t &small)
{
    big = (__float_as_uint(v) + 0x1000u) & 0xffffe000u;
    small = tf32_operand_bits(v - __uint_as_float(big));
}

/* 3xFP16: a float32 v, scaled by a power of two s (exact), is hi + lo with hi = fp16(v s) and
 * lo = fp16(v s - hi): 22 significant bits where both are normal, so that three FP16
 * products (hi hi + hi lo + lo hi; lo lo, 2^-22 of the product, dropped) make a float32
 * product.  FP16 overflows at 65520: s comes from the largest magnitude of the values that
 * share it (fp16_exponent), and whatever shares an accumulator shares s. */

/* The exponent e that puts a largest magnitude m (float bits: non-negative floats order as
 * their bits, so maxima can be taken on them) in [2^top, 2^(top + 1)) when scaled by 2^e,
 * within [-120, 120] so that 2^e and 2^-e are normal floats; `keep` where m is 0, infinite
 * or NaN. */
__device__ __forceinline__ int fp16_exponent(unsigned m, int top, int keep)
{
    const int field = (int)(m >> 23 & 0xff);
    if (m == 0u || field == 0xff) return keep;
    const int e = top - (field ? field - 127 : -126);
    return e < -120 ? -120 : e > 120 ? 120 : e;
}

/* 2^e as a float, e within [-126, 127] */
__device__ __forceinline__ float pow2f(int e) { return __int_as_float((127 + e) << 23); }

/* Two values, already scaled, as their FP16 pieces: hi, and lo times lo_scale (a power of
 * two). */
__device__ __forceinline__ void fp16_split(float v0, float v1, float lo_scale, __half2 &hi, __half2 &lo)
{
    hi = __floats2half2_rn(v0, v1);
    const float2 h = __half22float2(hi);
    lo = __floats2half2_rn((v0 - h.x) * lo_scale, (v1 - h.y) * lo_scale);
}

/* An operand as the kernels multiply it: rounded to TF32 when `tf32` is set (float only). */
__device__ __forceinline__ float operand(float v, bool tf32) { return tf32 ? round_tf32(v) : v; }
__device__ __forceinline__ double operand(double v, bool) { return v; }

/* Calls body.template operator()<T>() with T the storage type of dtype; returns
 * cudaErrorInvalidValue for an unknown dtype (the dispatcher rejects those first). */
template <typename Body> static cudaError_t with_dtype(tconv_dtype dtype, Body body)
{
    switch (dtype) {
    case TCONV_FLOAT32: return body.template operator()<float>();
    case TCONV_FLOAT64: return body.template operator()<double>();
    case TCONV_FLOAT16: return body.template operator()<__half>();
    case TCONV_BFLOAT16: return body.template operator()<__nv_bfloat16>();
    }
    return cudaErrorInvalidValue;
}

static inline int64_t ceil_div64(int64_t a, int64_t b) { return (a + b - 1) / b; }

#endif /* TCONV_CUDA_COMMON_CUH */
