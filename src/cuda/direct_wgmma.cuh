/*
 * direct_wgmma.cuh - the direct-correlation engine (direct.cuh) on Hopper's warpgroup mma:
 * float32 in tf32 mode, sm_90a.
 *
 * One CTA of three warpgroups computes 64 destination channels x 12 rows x tw pixels of one
 * phase; warpgroup w owns rows 4w .. 4w + 3 (12 rows, not 8: what a CTA costs besides its
 * stages, from its tables to its epilogue, is spread over 1.5 times the pixels).  The
 * phases, residue planes, tap tables and tile tables are the engine's; what differs is
 * where the operands sit.  A stage holds 8 reduction channels (the k of one wgmma) in two
 * K-major operands without swizzle, made of core matrices of 8 rows x 16 bytes (128
 * contiguous bytes):
 *
 *   B, the source halo tile:  [c / 4][pixel of the tile][c % 4]  (rows: pixels)
 *   A, the stage's weights:   [tap][c / 4][o][c % 4]             (rows: destination channels)
 *
 * A pixel's 4 channels are 16 contiguous bytes, so every tap, a fixed pixel offset into the
 * halo tile, is the B descriptor's start address moved by a multiple of 16 bytes.  The
 * tile's source rows are 64 pixels (DIRECT_WGMMA_PITCH): tw destination columns plus the
 * taps' halo, tw = 64 - (column span of the taps - 1), 62 for 3 x 3.  A warpgroup's 4 rows
 * are then 256 consecutive pixels of B: one wgmma.m64n256k8 per tap and stage computes all
 * of them, the 64 - tw columns per row that multiply halo pixels being thrown away (3% for
 * 3 x 3).  The last column strip of the tf32 tile, where its columns and halo fit in fewer
 * pixels, has rows of a multiple of 8 pixels under 64 instead (tap tables of their own,
 * m64n(4 x pitch)k8): a strip of 32 columns costs 40-pixel rows, not 64.  Per stage and
 * warpgroup: as many wgmma as taps, D (64 channels x 256) in 128 registers, every operand
 * read by the tensor cores from shared memory (A 2 KB + B 8 KB per 128 cycles of the tensor
 * cores: 80 bytes per cycle of the SM's 128).
 *
 * The copies land as they are (cp.async); each thread then rounds the source values it
 * copied to nearest TF32 (cvt.rna's rounding, as cuDNN's; the tensor cores alone would
 * truncate) by adding half a TF32 ulp (tf32_rna_operand), fences them for the async
 * proxy, and the stage's barrier publishes them.  Four stages, copies two ahead: the wgmma
 * of stage k - 1 still run while stage k is rounded and its barrier passes, and the copies
 * of stage k + 2 reuse the buffer of stage k - 2, whose wgmma every warpgroup has waited for
 * before that barrier.
 *
 * Only builds for sm_90a (TCONV_WGMMA, set by the build with that target) hold the kernel
 * body; sm90a_available() keeps the variant off every other build and device.
 */
#ifndef TCONV_CUDA_DIRECT_WGMMA_CUH
#define TCONV_CUDA_DIRECT_WGMMA_CUH

#define DIRECT_WGMMA_STAGES 4
#define DIRECT_WGMMA_STAGE_BYTES (200 * 1024) /* all stages: one CTA per SM */
#define DIRECT_WGMMA_ROWS 4                   /* destination rows per warpgroup */
#define DIRECT_WGMMA_GROUPS 3                 /* tf32: warpgroups per CTA, 12 rows */
#define DIRECT_WGMMA_SPLIT_STAGES 3           /* 3xFP16: stages of 16 channels, 61 KB for 3 x 3 */
#define DIRECT_WGMMA_SPLIT_ROWS 2             /* 3xFP16: rows per warpgroup, for two accumulators */

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
/* TF32, k8: the warpgroup tile's 4 rows of `pitch` pixels are N = 4 pitch (direct_wgmma_kernel) */
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
#endif

/* The source values of one stage: thread x copies the CH channels of pixels x, x + NT, ...,
 * channel c of a pixel to quad c / 4 of the stage ([c / 4][pixel][c % 4]; zero-filled past
 * the source and past the `nvalid` channels left). */
template <int CH, int NT>
__device__ __forceinline__ void direct_wgmma_copy(float *stage, const float *src_c0, int64_t src_plane, int nvalid,
                                                  const int *table, int npix)
{
#pragma unroll 2
    for (int pix = threadIdx.x; pix < npix; pix += NT) {
        const int go = table[pix];
        const float *g = src_c0 + go;
        float *s = stage + pix * 4;
#pragma unroll
        for (int c = 0; c < CH; ++c, g += src_plane)
            cp_async(s + (c / 4) * 4 * npix + c % 4, g, go >= 0 && c < nvalid); /* size 0: nothing read */
    }
}

/* Rounds the values this thread copied, once they landed (a pixel's channel quads, 16 bytes
 * each), to TF32 in place. */
template <int NT> __device__ __forceinline__ void direct_wgmma_round(float *stage, int npix)
{
#pragma unroll 2
    for (int pix = threadIdx.x; pix < npix; pix += NT) {
#pragma unroll
        for (int q = 0; q < 2; ++q) {
            float4 *p = (float4 *)(stage + (q * npix + pix) * 4);
            float4 v = *p;
            v.x = tf32_rna_operand(v.x);
            v.y = tf32_rna_operand(v.y);
            v.z = tf32_rna_operand(v.z);
            v.w = tf32_rna_operand(v.w);
            *p = v;
        }
    }
}

/* The largest magnitude of n weights, NaN left out, into *out (float bits; zeroed before). */
static __global__ void direct_weight_max(const float *w, int64_t n, unsigned *out)
{
    float m = 0.f;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        m = fmaxf(m, fabsf(w[i]));
    const unsigned r = __reduce_max_sync(0xffffffffu, __float_as_uint(m));
    if (threadIdx.x % 32 == 0) atomicMax(out, r);
}

/* The largest magnitude among the source values this thread copied into a stage (16
 * channels of its pixels), NaN left out. */
__device__ __forceinline__ float direct_wgmma_max(const float *stage, int npix)
{
    float m = 0.f;
#pragma unroll 2
    for (int pix = threadIdx.x; pix < npix; pix += 256) {
#pragma unroll
        for (int q = 0; q < 4; ++q) {
            const float4 v = *(const float4 *)(stage + (q * npix + pix) * 4);
            m = fmaxf(m, fmaxf(fmaxf(fabsf(v.x), fabsf(v.y)), fmaxf(fabsf(v.z), fabsf(v.w))));
        }
    }
    return m;
}

/* Splits the 16 channels of each pixel this thread copied, once they landed, in place: the
 * pixel's four float quads (bytes (q npix + pixel) 16, q < 4) become the FP16 B operands of
 * the stage, hi of channels 0-7 and 8-15 in quads 0 and 1, lo in quads 2 and 3 (each
 * [c / 8][pixel][c % 8], K-major).  Values are scaled by `scale` first.  Returns the largest
 * magnitude among them before scaling (as direct_wgmma_max). */
__device__ __forceinline__ float direct_wgmma_split(float *stage, int npix, float scale)
{
    float m = 0.f;
#pragma unroll 2
    for (int pix = threadIdx.x; pix < npix; pix += 256) {
        float v[16];
#pragma unroll
        for (int q = 0; q < 4; ++q) *(float4 *)(v + 4 * q) = *(const float4 *)(stage + (q * npix + pix) * 4);
        __half2 hi[8], lo[8];
#pragma unroll
        for (int i = 0; i < 8; ++i) {
            m = fmaxf(m, fmaxf(fabsf(v[2 * i]), fabsf(v[2 * i + 1])));
            fp16_split(v[2 * i] * scale, v[2 * i + 1] * scale, 2048.f, hi[i], lo[i]);
        }
#pragma unroll
        for (int q = 0; q < 4; ++q) {
            const __half2 *h = q < 2 ? hi + 4 * q : lo + 4 * (q - 2);
            uint4 u;
            u.x = *(const uint32_t *)&h[0];
            u.y = *(const uint32_t *)&h[1];
            u.z = *(const uint32_t *)&h[2];
            u.w = *(const uint32_t *)&h[3];
            *(uint4 *)(stage + (q * npix + pix) * 4) = u;
        }
    }
    return m;
}

/* The CTA's largest m (m >= 0), through `red` in shared memory: every thread calls it. */
__device__ __forceinline__ float direct_cta_max(float m, unsigned *red)
{
    __syncthreads(); /* earlier readers of red are past it */
    if (threadIdx.x == 0) *red = 0u;
    __syncthreads();
    const unsigned w = __reduce_max_sync(0xffffffffu, __float_as_uint(m));
    if (threadIdx.x % 32 == 0) atomicMax(red, w);
    __syncthreads();
    return __uint_as_float(*red);
}

/* The epilogue of a tile of ROWS rows of PITCH pixels per warpgroup: D row m = channel
 * 16 * (warp in group) + lane / 4 (+ 8), column n = 8 j + 2 (lane % 4) (+ 1) = pixel n % PITCH
 * of the warpgroup's row n / PITCH, kept where n % PITCH is a column of the tile (the others
 * multiplied halo columns); a lane quad writes 8 consecutive pixels of a channel's row. */
template <int MODE, int ROWS, int PITCH>
__device__ __forceinline__ void direct_wgmma_store(const direct_params &P, const direct_block &b,
                                                   const float (&acc)[ROWS * PITCH / 2])
{
    constexpr int TCO = 64, JR = PITCH / 8; /* 8-pixel column groups per row */
    const int lane = threadIdx.x % 32, wq = threadIdx.x % 128 / 32, wg = threadIdx.x / 128;
    const int oh_step = MODE == DIRECT_FORWARD ? P.ah.stride : 1;
    const int ow_step = MODE == DIRECT_FORWARD ? P.aw.stride : 1;
    const int64_t dst_plane = (int64_t)P.ah.dst_size * P.aw.dst_size;
    const float *bias = (const float *)P.bias;
    const int cols = min(P.tw, b.count_w - b.j0); /* this tile's columns (a last strip's: fewer) */
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        const int ch = b.cot * TCO + 16 * wq + lane / 4 + 8 * h;
        if (ch >= P.co) continue;
        const float bv = bias ? bias[(int64_t)b.g * P.co + ch] : 0.f;
        float *plane = (float *)P.dst + (((int64_t)b.n * P.groups + b.g) * P.co + ch) * dst_plane + b.rw;
#pragma unroll
        for (int r = 0; r < ROWS; ++r) {
            const int i = b.i0 + wg * ROWS + r;
            if (i >= b.count_h) continue;
            float *row = plane + (int64_t)(b.rh + oh_step * i) * P.aw.dst_size + (int64_t)ow_step * b.j0;
#pragma unroll
            for (int j = JR * r; j < JR * r + JR; ++j) {
                const int c = 8 * (j - JR * r) + 2 * (lane % 4);
                const float v0 = acc[4 * j + 2 * h] + bv, v1 = acc[4 * j + 2 * h + 1] + bv;
                float *out = row + (int64_t)ow_step * c;
                if (ow_step == 1 && c + 1 < cols && ((uintptr_t)out & 7) == 0) {
                    *(float2 *)out = make_float2(v0, v1);
                } else {
                    if (c < cols) out[0] = v0;
                    if (c + 1 < cols) out[ow_step] = v1;
                }
            }
        }
    }
}

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
/* One tile of the tf32 kernel whose warpgroup rows are PITCH source pixels (the tables in t
 * are built for that pitch): one wgmma.m64n(4 PITCH)k8 per tap and stage. */
template <int MODE, int TAPS, int PITCH>
__device__ __forceinline__ void direct_wgmma_body(const direct_params &P, const direct_block &b, const direct_taps &t,
                                                  float *smem)
{
    constexpr int TCO = 64, S = DIRECT_WGMMA_STAGES, AHEAD = S - 2, ROWS = DIRECT_WGMMA_ROWS;
    constexpr int NT = 128 * DIRECT_WGMMA_GROUPS;
    const int *table = (const int *)(smem + P.table);
    const int npix = t.chan; /* pixels of the source tile, every residue plane */
    const int wofs = direct_round4(8 * npix), wsize = 2 * TAPS * TCO;
    const int64_t src_plane = (int64_t)P.ah.src_size * P.aw.src_size;
    const float *src = (const float *)P.src + ((int64_t)b.n * P.groups + b.g) * P.cr * src_plane;
    const float *wts = (const float *)P.prepared + direct_weights_offset(P, b.phase, b.g, b.cot, 0);
    const int nchunks = P.nchunks; /* from the parameters: uniform */
    const int wg = threadIdx.x / 128;

    auto copy = [&](int k) {
        float *st = smem + k % S * P.stage;
        direct_wgmma_copy<8, NT>(st, src + (int64_t)k * 8 * src_plane, src_plane, P.cr - k * 8, table, npix);
        const float4 *w = (const float4 *)(wts + (int64_t)k * P.wchunk);
        for (int e = threadIdx.x; e < wsize; e += NT) cp_async16(st + wofs + 4 * e, w + e);
    };

    float acc[ROWS * PITCH / 2]; /* no instruction but wgmma may write them: the first tap's wgmma zero them */
    for (int k = 0; k < AHEAD; ++k) {
        if (k < nchunks) copy(k);
        cp_async_commit();
    }
    for (int k = 0; k < nchunks; ++k) {
        float *st = smem + k % S * P.stage;
        cp_async_wait<AHEAD - 1>();
        direct_wgmma_round<NT>(st, npix);
        fence_proxy_async();
        wgmma_wait<1>(); /* this warpgroup's wgmma of stage k - 2 are done */
        __syncthreads();
        if (k + AHEAD < nchunks) copy(k + AHEAD);
        cp_async_commit();

        /* B: the warpgroup's 4 rows of PITCH pixels from the tap's offset on (next channel
         * quad npix * 16 bytes on, next 8 pixels 128); A: the tap's weights (next quad 64 * 16) */
        const uint32_t bdesc = wgmma_desc_lo(st, npix * 16) + wg * ROWS * PITCH;
        const uint32_t adesc = wgmma_desc_lo(st + wofs, TCO * 16);
        wgmma_fence();
#pragma unroll
        for (int tap = 0; tap < TAPS; ++tap)
            wgmma_tf32(acc, adesc + tap * (8 * TCO * 4 / 16), bdesc + t.tap_off[tap], k > 0 || tap > 0);
        wgmma_commit();
    }
    wgmma_wait<0>();
    wgmma_pin(acc);
    cp_async_wait<0>();
    direct_wgmma_store<MODE, ROWS, PITCH>(P, b, acc);
}
#endif

/* TAPS: the taps of every phase, 9 (3 x 3, stride 1) or 4 (4 x 4, stride 2 forward): the tap
 * loop unrolled, so that ptxas sees the wgmma in straight-line code (a loop over a count read
 * from shared memory serializes them).  LAST: the source pitch of the last column strip's
 * tiles (P.last_pitch; 0: DIRECT_WGMMA_PITCH as every other strip), so that a strip of a few
 * columns does not cost a full tile (see direct_shape_make). */
template <int MODE, int TAPS, int LAST>
__global__ void __launch_bounds__(128 * DIRECT_WGMMA_GROUPS, 1) direct_wgmma_kernel(const direct_params P)
{
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    extern __shared__ __align__(16) unsigned char direct_smem[];
    float *smem = (float *)direct_smem;
    __shared__ direct_taps t;
    direct_block b;
    if (!direct_block_init<MODE, DIRECT_WGMMA_GROUPS * DIRECT_WGMMA_ROWS>(P, b, P.tw)) return;
    const bool last = LAST && b.j0 == (P.tiles_w - 1) * P.tw;
    direct_block_tables<MODE, 128 * DIRECT_WGMMA_GROUPS>(P, b, t, (int *)(smem + P.table), last);
    if (LAST && last)
        direct_wgmma_body<MODE, TAPS, LAST ? LAST : DIRECT_WGMMA_PITCH>(P, b, t, smem);
    else
        direct_wgmma_body<MODE, TAPS, DIRECT_WGMMA_PITCH>(P, b, t, smem);
#else
    __trap(); /* sm90a_available() keeps other builds from launching it */
#endif
}

/* The tf32 kernel for a last column strip of source pitch `last` (P.last_pitch: 0, or a
 * multiple of 8 under DIRECT_WGMMA_PITCH). */
template <int MODE, int TAPS> static void (*direct_wgmma_pick(int last))(const direct_params)
{
    switch (last) {
    case 8: return direct_wgmma_kernel<MODE, TAPS, 8>;
    case 16: return direct_wgmma_kernel<MODE, TAPS, 16>;
    case 24: return direct_wgmma_kernel<MODE, TAPS, 24>;
    case 32: return direct_wgmma_kernel<MODE, TAPS, 32>;
    case 40: return direct_wgmma_kernel<MODE, TAPS, 40>;
    case 48: return direct_wgmma_kernel<MODE, TAPS, 48>;
    case 56: return direct_wgmma_kernel<MODE, TAPS, 56>;
    default: return direct_wgmma_kernel<MODE, TAPS, 0>;
    }
}

/* fp32 mode by 3xFP16 on wgmma (see the pieces above): the engine with 16 reduction
 * channels per stage (the k of one FP16 wgmma), the source values split in place by the
 * thread that copied them, the weights split once per call (direct_prepare_weights), and
 * per tap three wgmma into two accumulators, big += hi_w hi_x and small += hi_w lo_x +
 * lo_w hi_x: 2 x 64 registers per thread, so a warpgroup takes 2 rows (m64n128k16), a CTA
 * 4 rows x tw.  No flush: what the tensor cores chop is in big at 2^-24 of the sums, in
 * small 2^-11 lower.  Stages of 61 KB (3 x 3): 3 of them, copies one stage ahead while the
 * wgmma of the stage before stay in flight.
 *
 * The source's scale 2^ex is the CTA's: from the largest magnitude of its first stage, then
 * checked at every stage: where a scaled value reaches DIRECT_FP16_LIMIT (FP16 overflows at
 * 65520) the CTA lowers ex to fit that stage, rescales both accumulators by the same power
 * of two (exact), and copies and splits the stage again.  NaN stays NaN; an infinite value
 * leaves ex as it is (its lo is NaN: the output is NaN). */
template <int MODE, int TAPS>
__global__ void __launch_bounds__(256, 1) direct_wgmma_fp16_kernel(const direct_params P)
{
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    constexpr int TCO = 64, S = DIRECT_WGMMA_SPLIT_STAGES, AHEAD = S - 2, ROWS = DIRECT_WGMMA_SPLIT_ROWS;
    constexpr int PITCH = DIRECT_WGMMA_PITCH, CH = 16;
    extern __shared__ __align__(16) unsigned char direct_smem[];
    float *smem = (float *)direct_smem;
    __shared__ direct_taps t;
    __shared__ unsigned red;
    direct_block b;
    if (!direct_block_init<MODE, 2 * ROWS>(P, b, P.tw)) return;
    direct_block_tables<MODE, 256>(P, b, t, (int *)(smem + P.table));

    const int *table = (const int *)(smem + P.table);
    const int npix = t.chan; /* pixels of the source tile */
    const int wofs = direct_round4(CH * npix), wsize = CH * TAPS * TCO / 4; /* float4s: both pieces */
    const int64_t src_plane = (int64_t)P.ah.src_size * P.aw.src_size;
    const float *src = (const float *)P.src + ((int64_t)b.n * P.groups + b.g) * P.cr * src_plane;
    const float *wts = (const float *)P.prepared + direct_weights_offset(P, b.phase, b.g, b.cot, 0);
    const int nchunks = P.nchunks;
    const int wg = threadIdx.x / 128;

    auto copy_src = [&](int k) {
        direct_wgmma_copy<CH, 256>(smem + k % S * P.stage, src + (int64_t)k * CH * src_plane, src_plane, P.cr - k * CH,
                              table, npix);
    };
    auto copy = [&](int k) {
        copy_src(k);
        const float4 *w = (const float4 *)(wts + (int64_t)k * P.wchunk);
        float *st = smem + k % S * P.stage + wofs;
        for (int e = threadIdx.x; e < wsize; e += 256) cp_async16(st + 4 * e, w + e);
    };

    float big[64], small[64]; /* written first by the first tap's wgmma (scale-d 0) */
    for (int k = 0; k < AHEAD; ++k) {
        if (k < nchunks) copy(k);
        cp_async_commit();
    }
    int ex = 0;
    for (int k = 0; k < nchunks; ++k) {
        float *st = smem + k % S * P.stage;
        cp_async_wait<AHEAD - 1>();
        if (k == 0) ex = fp16_exponent(__float_as_uint(direct_cta_max(direct_wgmma_max(st, npix), &red)),
                                              DIRECT_FP16_X_TOP, 0);
        float m = direct_wgmma_split(st, npix, pow2f(ex));
        fence_proxy_async();
        wgmma_wait<1>(); /* this warpgroup's wgmma of stage k - 2 are done */
        if (__syncthreads_or(m * pow2f(ex) >= DIRECT_FP16_LIMIT)) {
            const int lower = fp16_exponent(__float_as_uint(direct_cta_max(m, &red)), DIRECT_FP16_X_TOP, ex);
            if (lower < ex) {
                wgmma_wait<0>();
                wgmma_pin(big);
                wgmma_pin(small);
                const float f = pow2f((lower - ex) / 2), g = pow2f((lower - ex) - (lower - ex) / 2);
#pragma unroll
                for (int i = 0; i < 64; ++i) {
                    big[i] = big[i] * f * g;
                    small[i] = small[i] * f * g;
                }
                ex = lower;
                copy_src(k);
                cp_async_commit();
                cp_async_wait<0>();
                direct_wgmma_split(st, npix, pow2f(ex));
                fence_proxy_async();
                __syncthreads();
            }
        }
        if (k + AHEAD < nchunks) copy(k + AHEAD);
        cp_async_commit();

        /* B hi, B lo 2 npix (16-byte units) on; A hi, A lo TAPS x 2 KB on */
        const uint32_t bhi = wgmma_desc_lo(st, npix * 16) + wg * ROWS * PITCH, blo = bhi + 2 * npix;
        const uint32_t ahi = wgmma_desc_lo(st + wofs, TCO * 16), alo = ahi + TAPS * (TCO * CH * 2 / 16);
        wgmma_fence();
#pragma unroll
        for (int tap = 0; tap < TAPS; ++tap) {
            const uint32_t a = tap * (TCO * CH * 2 / 16), off = t.tap_off[tap];
            wgmma_f16(big, ahi + a, bhi + off, k > 0 || tap > 0);
            wgmma_f16(small, ahi + a, blo + off, k > 0 || tap > 0);
            wgmma_f16(small, alo + a, bhi + off, 1);
        }
        wgmma_commit();
    }
    wgmma_wait<0>();
    wgmma_pin(big);
    wgmma_pin(small);
    cp_async_wait<0>();
    /* back to the products' scale: both scales are powers of two in [2^-120, 2^120] */
    const float unscale_x = pow2f(-ex), unscale_w = pow2f(-fp16_exponent(*P.wmax, DIRECT_FP16_W_TOP, 0));
#pragma unroll
    for (int i = 0; i < 64; ++i) big[i] = fmaf(small[i], 1.f / 2048.f, big[i]) * unscale_x * unscale_w;
    direct_wgmma_store<MODE, ROWS, PITCH>(P, b, big);
#else
    __trap(); /* sm90a_available() keeps other builds from launching it */
#endif
}

#endif /* TCONV_CUDA_DIRECT_WGMMA_CUH */
