/*
 * ptx.cuh - every inline-PTX instruction the kernels use, each wrapped once: cp.async,
 * mma.sync (TF32 m16n8k8, FP16 m16n8k16), cvt.rna.tf32, and on sm_90a wgmma, mbarrier,
 * the async-proxy fence and setmaxnreg.
 */
#ifndef TCONV_CUDA_PTX_CUH
#define TCONV_CUDA_PTX_CUH

#include <cuda_runtime.h>
#include <stdint.h>

/* The shared-memory address of a generic pointer to shared memory. */
__device__ __forceinline__ uint32_t smem_addr(const void *p) { return (uint32_t)__cvta_generic_to_shared(p); }

/* ---- cp.async (sm_80 and newer) ---- */

/* BYTES (4, 8 or 16) from global to shared memory; where !valid the bytes are zero and gmem
 * is not read (a source size of 0), so it may point anywhere: callers pass the address the
 * copy would have without selecting a safe one (a select per copy can make ptxas compute the
 * 64-bit address inside a predicated block, three times the instructions).  4 and 8 bytes
 * go through L1 (.ca), 16 around it (.cg). */
template <int BYTES, typename E> __device__ __forceinline__ void cp_async_zfill(E *smem, const E *gmem, bool valid)
{
    static_assert(BYTES == 4 || BYTES == 8 || BYTES == 16, "cp.async copies 4, 8 or 16 bytes");
    const uint32_t s = (uint32_t)__cvta_generic_to_shared(smem);
    if (BYTES == 16)
        asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(valid ? 16 : 0));
    else if (BYTES == 8)
        asm volatile("cp.async.ca.shared.global [%0], [%1], 8, %2;\n" ::"r"(s), "l"(gmem), "r"(valid ? 8 : 0));
    else
        asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(s), "l"(gmem), "r"(valid ? 4 : 0));
}

/* BYTES (4, 8 or 16) from global to shared memory, always read. */
template <int BYTES> __device__ __forceinline__ void cp_async(void *smem, const void *gmem)
{
    static_assert(BYTES == 4 || BYTES == 8 || BYTES == 16, "cp.async copies 4, 8 or 16 bytes");
    const uint32_t s = (uint32_t)__cvta_generic_to_shared(smem);
    if (BYTES == 16)
        asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(s), "l"(gmem));
    else if (BYTES == 8)
        asm volatile("cp.async.ca.shared.global [%0], [%1], 8;\n" ::"r"(s), "l"(gmem));
    else
        asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(s), "l"(gmem));
}

/* n floats (4, 2 or 1, known at run time) from global to shared memory, always read. */
__device__ __forceinline__ void cp_async_floats(float *smem, const float *gmem, int n)
{
    const uint32_t s = (uint32_t)__cvta_generic_to_shared(smem);
    if (n == 4)
        asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(s), "l"(gmem));
    else if (n == 2)
        asm volatile("cp.async.ca.shared.global [%0], [%1], 8;\n" ::"r"(s), "l"(gmem));
    else
        asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(s), "l"(gmem));
}

__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }

/* Waits until at most N of this thread's committed groups are in flight. */
template <int N> __device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

__device__ __forceinline__ void cp_async_wait_all() { asm volatile("cp.async.wait_all;\n" ::); }

/* ---- mma.sync (sm_80 and newer) ---- */

/* D (16 x 8) = A (16 x 8) * B (8 x 8) + (zero ? 0 : D): TF32 operands as float bits (A in one
 * float4 of fragment registers, B in two), float32 accumulators. */
__device__ __forceinline__ void mma_tf32_m16n8k8(float (&d)[4], const float4 &a, uint32_t b0, uint32_t b1,
                                                 bool zero = false)
{
    if (zero)
        asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 "
                     "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%10,%10,%10,%10};\n"
                     : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
                     : "r"(__float_as_uint(a.x)), "r"(__float_as_uint(a.y)), "r"(__float_as_uint(a.z)),
                       "r"(__float_as_uint(a.w)), "r"(b0), "r"(b1), "f"(0.f));
    else
        asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 "
                     "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                     : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                     : "r"(__float_as_uint(a.x)), "r"(__float_as_uint(a.y)), "r"(__float_as_uint(a.z)),
                       "r"(__float_as_uint(a.w)), "r"(b0), "r"(b1));
}

/* D (16 x 8) = A (16 x 16) * B (16 x 8) + (zero ? 0 : D): FP16 operands, float32 accumulators. */
__device__ __forceinline__ void mma_f16_m16n8k16(float (&d)[4], const uint4 &a, uint32_t b0, uint32_t b1,
                                                 bool zero = false)
{
    if (zero)
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
                     "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%10,%10,%10,%10};\n"
                     : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
                     : "r"(a.x), "r"(a.y), "r"(a.z), "r"(a.w), "r"(b0), "r"(b1), "f"(0.f));
    else
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
                     "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                     : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                     : "r"(a.x), "r"(a.y), "r"(a.z), "r"(a.w), "r"(b0), "r"(b1));
}

/* v rounded to the nearest TF32 value (10 explicit mantissa bits, ties away from zero): what
 * cuDNN does to both operands under torch's default allow_tf32.  The product of two such
 * values is exact in float32, so an FMA over them is a TF32 tensor-core product. */
__device__ __forceinline__ float round_tf32(float v)
{
    uint32_t r;
    asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(v));
    return __uint_as_float(r);
}

/* ---- wgmma (sm_90a) ---- */

/* The low word of a shared-memory matrix descriptor without swizzle: the start address and
 * the byte offset between core matrices adjacent in K (leading), in 16-byte units.  Adding n
 * moves the start by 16 n bytes (shared addresses stay under 256 KB: the 14-bit field never
 * carries).  The high word holds the offset between core matrices adjacent in M or N
 * (wgmma_desc_hi), and zeros: no swizzle, base offset 0. */
__device__ __forceinline__ uint32_t wgmma_desc_lo(const void *smem, uint32_t leading)
{
    return ((uint32_t)__cvta_generic_to_shared(smem) >> 4 & 0x3fff) | (leading >> 4 & 0x3fff) << 16;
}
__host__ __device__ constexpr uint32_t wgmma_desc_hi(uint32_t stride) { return stride >> 4 & 0x3fff; }

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
/* accumulators d[i] .. d[i + 7] as read-write asm operands; WGMMA_Dn: d[0] .. d[n - 1] */
#define WGMMA_D8(i)                                                                                          \
    "+f"(d[i]), "+f"(d[i + 1]), "+f"(d[i + 2]), "+f"(d[i + 3]), "+f"(d[i + 4]), "+f"(d[i + 5]), "+f"(d[i + 6]), \
        "+f"(d[i + 7])
#define WGMMA_D16 WGMMA_D8(0), WGMMA_D8(8)
#define WGMMA_D32 WGMMA_D16, WGMMA_D8(16), WGMMA_D8(24)
#define WGMMA_D48 WGMMA_D32, WGMMA_D8(32), WGMMA_D8(40)
#define WGMMA_D64 WGMMA_D48, WGMMA_D8(48), WGMMA_D8(56)
#define WGMMA_D80 WGMMA_D64, WGMMA_D8(64), WGMMA_D8(72)
#define WGMMA_D96 WGMMA_D80, WGMMA_D8(80), WGMMA_D8(88)
#define WGMMA_D112 WGMMA_D96, WGMMA_D8(96), WGMMA_D8(104)
#define WGMMA_D128 WGMMA_D112, WGMMA_D8(112), WGMMA_D8(120)
/* their names in the asm text: WGMMA_Sn is "%0,%1,...,%(n - 1)" */
#define WGMMA_S16 "%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15"
#define WGMMA_S32 WGMMA_S16 ",%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31"
#define WGMMA_S48 WGMMA_S32 ",%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47"
#define WGMMA_S64 WGMMA_S48 ",%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63"
#define WGMMA_S80 WGMMA_S64 ",%64,%65,%66,%67,%68,%69,%70,%71,%72,%73,%74,%75,%76,%77,%78,%79"
#define WGMMA_S96 WGMMA_S80 ",%80,%81,%82,%83,%84,%85,%86,%87,%88,%89,%90,%91,%92,%93,%94,%95"
#define WGMMA_S112 WGMMA_S96 ",%96,%97,%98,%99,%100,%101,%102,%103,%104,%105,%106,%107,%108,%109,%110,%111"
#define WGMMA_S128 WGMMA_S112 ",%112,%113,%114,%115,%116,%117,%118,%119,%120,%121,%122,%123,%124,%125,%126,%127"

__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N> __device__ __forceinline__ void wgmma_wait()
{
    asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
/* this thread's generic-proxy writes to shared memory, ordered before later async-proxy reads */
__device__ __forceinline__ void fence_proxy_async() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }
/* keeps the compiler from moving uses of d across the asynchronous mma */
template <int R> __device__ __forceinline__ void wgmma_pin(float (&d)[R])
{
#pragma unroll
    for (int i = 0; i < R; ++i) asm volatile("" : "+f"(d[i])::"memory");
}

/* D (64 x N) = A (64 x K) * B (K x N) + (accumulate ? D : 0), float32 accumulators d[R]
 * (R = N / 2), both operands K-major in shared memory without swizzle, given by their
 * descriptors' low words; both descriptors' high word is the 128-byte stride of contiguous
 * core matrices.  A, B, P, HI: the asm operand numbers of a, b, accumulate and that word
 * (R to R + 3); TAIL: what the instruction takes after its scales. */
#define WGMMA_DEFINE(NAME, SHAPE, R, A, B, P, HI, TAIL)                                                       \
    __device__ __forceinline__ void NAME(float (&d)[R], uint32_t a, uint32_t b, int accumulate)               \
    {                                                                                                         \
        asm volatile("{\n.reg .pred p;\n.reg .b64 da, db;\nsetp.ne.b32 p, %" #P ", 0;\n"                      \
                     "mov.b64 da, {%" #A ", %" #HI "};\nmov.b64 db, {%" #B ", %" #HI "};\n"                    \
                     "wgmma.mma_async.sync.aligned." SHAPE " {" WGMMA_S##R "}, da, db, p, 1, 1" TAIL ";\n}\n" \
                     : WGMMA_D##R                                                                             \
                     : "r"(a), "r"(b), "r"(accumulate), "n"(wgmma_desc_hi(128)));                             \
    }
/* TF32, k8, N = 32 .. 256 */
WGMMA_DEFINE(wgmma_tf32, "m64n32k8.f32.tf32.tf32", 16, 16, 17, 18, 19, "")
WGMMA_DEFINE(wgmma_tf32, "m64n64k8.f32.tf32.tf32", 32, 32, 33, 34, 35, "")
WGMMA_DEFINE(wgmma_tf32, "m64n96k8.f32.tf32.tf32", 48, 48, 49, 50, 51, "")
WGMMA_DEFINE(wgmma_tf32, "m64n128k8.f32.tf32.tf32", 64, 64, 65, 66, 67, "")
WGMMA_DEFINE(wgmma_tf32, "m64n160k8.f32.tf32.tf32", 80, 80, 81, 82, 83, "")
WGMMA_DEFINE(wgmma_tf32, "m64n192k8.f32.tf32.tf32", 96, 96, 97, 98, 99, "")
WGMMA_DEFINE(wgmma_tf32, "m64n224k8.f32.tf32.tf32", 112, 112, 113, 114, 115, "")
WGMMA_DEFINE(wgmma_tf32, "m64n256k8.f32.tf32.tf32", 128, 128, 129, 130, 131, "")
/* FP16, k16, no transpose of either operand */
WGMMA_DEFINE(wgmma_f16, "m64n128k16.f32.f16.f16", 64, 64, 65, 66, 67, ", 0, 0")

/* ---- mbarrier and register reallocation (sm_90a) ---- */

__device__ __forceinline__ void mbar_init(uint64_t *bar, unsigned count)
{
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(smem_addr(bar)), "r"(count) : "memory");
}
/* arrive (release: this thread's earlier shared-memory reads and writes come first) */
__device__ __forceinline__ void mbar_arrive(uint64_t *bar)
{
    asm volatile("{\n.reg .b64 state;\nmbarrier.arrive.shared::cta.b64 state, [%0];\n}\n" ::"r"(smem_addr(bar))
                 : "memory");
}
/* wait (acquire) until the phase of parity `parity` has completed */
__device__ __forceinline__ void mbar_wait(uint64_t *bar, unsigned parity)
{
    uint32_t ready;
    do {
        asm volatile("{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\nselp.u32 %0, 1, 0, p;\n}\n"
                     : "=r"(ready)
                     : "r"(smem_addr(bar)), "r"(parity)
                     : "memory");
    } while (!ready);
}

/* This warpgroup's registers per thread raised or lowered to N. */
template <int N> __device__ __forceinline__ void setmaxnreg_inc()
{
    asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(N));
}
template <int N> __device__ __forceinline__ void setmaxnreg_dec()
{
    asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(N));
}
#endif

#endif /* TCONV_CUDA_PTX_CUH */
