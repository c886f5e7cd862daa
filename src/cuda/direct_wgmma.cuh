/*
 * direct_wgmma.cuh - the direct-correlation engine (direct.cuh) on Hopper's warpgroup mma:
 * float32 in tf32 mode, sm_90a.
 *
 * One CTA of two warpgroups computes 64 destination channels x 8 rows x tw pixels of one
 * phase; warpgroup w owns rows 4w .. 4w + 3.  The phases, residue planes, tap tables and
 * tile tables are the engine's; what differs is where the operands sit.  A stage holds 8
 * reduction channels (the k of one wgmma) in two K-major operands without swizzle, made of
 * core matrices of 8 rows x 16 bytes (128 contiguous bytes):
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
 * 3 x 3).  Per stage and warpgroup: as many wgmma as taps, D (64 channels x 256) in 128
 * registers, every operand read by the tensor cores from shared memory (A 2 KB + B 8 KB per
 * 128 cycles of the tensor cores: 80 bytes per cycle of the SM's 128).
 *
 * The copies land as they are (cp.async); each thread then rounds the source values it
 * copied to TF32 (cvt.rna, as cuDNN does; the tensor cores would truncate), fences them
 * for the async proxy, and the stage's barrier publishes them.  Four stages, copies two
 * ahead: the wgmma of stage k - 1 still run while stage k is rounded and its barrier
 * passes, and the copies of stage k + 2 reuse the buffer of stage k - 2, whose wgmma every
 * warpgroup has waited for before that barrier.
 *
 * Only builds for sm_90a (TCONV_WGMMA, set by the build with that target) hold the kernel
 * body; direct_wgmma_available() keeps the variant off every other build and device.
 */
#ifndef TCONV_CUDA_DIRECT_WGMMA_CUH
#define TCONV_CUDA_DIRECT_WGMMA_CUH

#define DIRECT_WGMMA_STAGES 4
#define DIRECT_WGMMA_STAGE_BYTES (200 * 1024) /* all stages: one CTA per SM */
#define DIRECT_WGMMA_ROWS 4                   /* destination rows per warpgroup */

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
__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N> __device__ __forceinline__ void wgmma_wait()
{
    asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
/* this thread's generic-proxy writes to shared memory, ordered before later async-proxy reads */
__device__ __forceinline__ void fence_proxy_async() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }
/* keeps the compiler from moving uses of d across the asynchronous mma */
__device__ __forceinline__ void wgmma_pin(float (&d)[128])
{
#pragma unroll
    for (int i = 0; i < 128; ++i) asm volatile("" : "+f"(d[i])::"memory");
}

/* D (64 x 256) = A (64 x 8) * B (8 x 256) + (accumulate ? D : 0), both operands TF32 in
 * shared memory, given by their descriptors' low words; both descriptors' high word is the
 * 128-byte stride of contiguous core matrices. */
__device__ __forceinline__ void wgmma_m64n256k8_tf32(float (&d)[128], uint32_t a, uint32_t b, int accumulate)
{
    asm volatile("{\n.reg .pred p;\n.reg .b64 da, db;\nsetp.ne.b32 p, %130, 0;\n"
                 "mov.b64 da, {%128, %131};\nmov.b64 db, {%129, %131};\n"
                 "wgmma.mma_async.sync.aligned.m64n256k8.f32.tf32.tf32 {"
                 "%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,"
                 "%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,"
                 "%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,"
                 "%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63,"
                 "%64,%65,%66,%67,%68,%69,%70,%71,%72,%73,%74,%75,%76,%77,%78,%79,"
                 "%80,%81,%82,%83,%84,%85,%86,%87,%88,%89,%90,%91,%92,%93,%94,%95,"
                 "%96,%97,%98,%99,%100,%101,%102,%103,%104,%105,%106,%107,%108,%109,%110,%111,"
                 "%112,%113,%114,%115,%116,%117,%118,%119,%120,%121,%122,%123,%124,%125,%126,%127}, da, db, p, 1, 1;\n}\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
                   "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
                   "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
                   "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),
                   "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]),
                   "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
                   "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
                   "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]),
                   "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]),
                   "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]),
                   "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]),
                   "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]),
                   "+f"(d[96]), "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]),
                   "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]), "+f"(d[111]),
                   "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]),
                   "+f"(d[120]), "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127])
                 : "r"(a), "r"(b), "r"(accumulate), "n"(wgmma_desc_hi(128)));
}
#endif

/* The source values of one stage: thread x copies the 8 channels of pixels x, x + 256, ...
 * (zero-filled past the source and past the `nvalid` channels left). */
__device__ __forceinline__ void direct_wgmma_copy(float *stage, const float *src_c0, int64_t src_plane, int nvalid,
                                                  const int *table, int npix)
{
#pragma unroll 2
    for (int pix = threadIdx.x; pix < npix; pix += 256) {
        const int go = table[pix];
        const float *g = src_c0 + go;
        float *s = stage + pix * 4;
#pragma unroll
        for (int c = 0; c < 8; ++c, g += src_plane)
            cp_async(s + (c / 4) * 4 * npix + c % 4, g, go >= 0 && c < nvalid); /* size 0: nothing read */
    }
}

/* Rounds the values this thread copied, once they landed: a pixel's channel quads, 16 bytes each. */
__device__ __forceinline__ void direct_wgmma_round(float *stage, int npix)
{
#pragma unroll 2
    for (int pix = threadIdx.x; pix < npix; pix += 256) {
#pragma unroll
        for (int q = 0; q < 2; ++q) {
            float4 *p = (float4 *)(stage + (q * npix + pix) * 4);
            float4 v = *p;
            v.x = round_tf32(v.x);
            v.y = round_tf32(v.y);
            v.z = round_tf32(v.z);
            v.w = round_tf32(v.w);
            *p = v;
        }
    }
}

/* The epilogue of a tile: D row m = channel 16 * (warp in group) + lane / 4 (+ 8), column
 * n = 8 j + 2 (lane % 4) (+ 1) = pixel n % 64 of the warpgroup's row n / 64, kept where
 * n % 64 < tw (the others multiplied halo columns); a lane quad writes 8 consecutive pixels
 * of a channel's row. */
template <int MODE>
__device__ __forceinline__ void direct_wgmma_store(const direct_params &P, const direct_block &b,
                                                   const float (&acc)[128])
{
    constexpr int TCO = 64, ROWS = DIRECT_WGMMA_ROWS;
    const int lane = threadIdx.x % 32, wq = threadIdx.x % 128 / 32, wg = threadIdx.x / 128;
    const int oh_step = MODE == DIRECT_FORWARD ? P.ah.stride : 1;
    const int ow_step = MODE == DIRECT_FORWARD ? P.aw.stride : 1;
    const int64_t dst_plane = (int64_t)P.ah.dst_size * P.aw.dst_size;
    const float *bias = (const float *)P.bias;
    const int cols = min(P.tw, b.count_w - b.j0); /* this tile's columns */
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
            for (int j = 8 * r; j < 8 * r + 8; ++j) {
                const int c = 8 * (j % 8) + 2 * (lane % 4);
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

/* TAPS: the taps of every phase, 9 (3 x 3, stride 1) or 4 (4 x 4, stride 2 forward): the tap
 * loop unrolled, so that ptxas sees the wgmma in straight-line code (a loop over a count read
 * from shared memory serializes them). */
template <int MODE, int TAPS>
__global__ void __launch_bounds__(256, 1) direct_wgmma_kernel(const direct_params P)
{
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    constexpr int TCO = 64, S = DIRECT_WGMMA_STAGES, AHEAD = S - 2, ROWS = DIRECT_WGMMA_ROWS;
    constexpr int PITCH = DIRECT_WGMMA_PITCH;
    extern __shared__ __align__(16) unsigned char direct_smem[];
    float *smem = (float *)direct_smem;
    __shared__ direct_taps t;
    direct_block b;
    if (!direct_block_init<MODE, 2 * ROWS>(P, b, P.tw)) return;
    direct_block_tables<MODE, 256>(P, b, t, (int *)(smem + P.table));

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
        direct_wgmma_copy(st, src + (int64_t)k * 8 * src_plane, src_plane, P.cr - k * 8, table, npix);
        const float4 *w = (const float4 *)(wts + (int64_t)k * P.wchunk);
        for (int e = threadIdx.x; e < wsize; e += 256) cp_async16(st + wofs + 4 * e, w + e);
    };

    float acc[128]; /* no instruction but wgmma may write them: the first tap's wgmma zero them */
    for (int k = 0; k < AHEAD; ++k) {
        if (k < nchunks) copy(k);
        cp_async_commit();
    }
    for (int k = 0; k < nchunks; ++k) {
        float *st = smem + k % S * P.stage;
        cp_async_wait<AHEAD - 1>();
        direct_wgmma_round(st, npix);
        fence_proxy_async();
        wgmma_wait<1>(); /* this warpgroup's wgmma of stage k - 2 are done */
        __syncthreads();
        if (k + AHEAD < nchunks) copy(k + AHEAD);
        cp_async_commit();

        /* B: the warpgroup's 4 rows of 64 pixels from the tap's offset on (next channel quad
         * npix * 16 bytes on, next 8 pixels 128); A: the tap's weights (next quad 64 * 16) */
        const uint32_t bdesc = wgmma_desc_lo(st, npix * 16) + wg * ROWS * PITCH;
        const uint32_t adesc = wgmma_desc_lo(st + wofs, TCO * 16);
        wgmma_fence();
#pragma unroll
        for (int tap = 0; tap < TAPS; ++tap)
            wgmma_m64n256k8_tf32(acc, adesc + tap * (8 * TCO * 4 / 16), bdesc + t.tap_off[tap], k > 0 || tap > 0);
        wgmma_commit();
    }
    wgmma_wait<0>();
    wgmma_pin(acc);
    cp_async_wait<0>();
    direct_wgmma_store<MODE>(P, b, acc);
#else
    __trap(); /* direct_wgmma_available() keeps other builds from launching it */
#endif
}

/* Whether this build holds the kernel for device dev: an sm_90a build on a 9.0 device. */
static inline int direct_wgmma_available(int dev)
{
#if defined(TCONV_WGMMA)
    int major = 0, minor = 0;
    return cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) == cudaSuccess &&
           cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev) == cudaSuccess && major == 9 &&
           minor == 0;
#else
    (void)dev;
    return 0;
#endif
}

#endif /* TCONV_CUDA_DIRECT_WGMMA_CUH */
