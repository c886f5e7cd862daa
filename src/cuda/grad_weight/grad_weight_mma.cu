/*
 * grad_weight_mma.cu - grad_weight on tensor cores (mma.sync), variants
 * "grad_weight_mma_64x32" (tf32 mode, m16n8k8 TF32), "grad_weight_mma_3xtf32_64x32" (fp32
 * mode, 3xTF32) and "grad_weight_mma_3xfp16_64x32" (fp32 mode, 3xFP16 on m16n8k16, below),
 * and on sm_90a the same TF32 and 3xFP16 work with a warpgroup that only copies
 * ("grad_weight_mma_ws_64x32", "grad_weight_mma_3xfp16_ws_64x32", further below):
 * the unit-tiled split-K GEMM of units.cuh.  The tensor-core roles:
 * A (16 x 8) = x[ci][pixel], B (8 x 8) = grad_y[pixel + tap shift][co], one accumulator
 * tile per (ci, co, tap).
 *
 * Staging: x as the 64 ci rows x 64 pixels of the unit, raw (each thread's own 4 x 16
 * bytes); after its own copies land, each thread rounds its x to TF32 and stores it in
 * A-fragment order (gwm_arrange), into one of two buffers; then the unit's single
 * barrier.  Warp w computes ci 32*(w%2) .. +31 (two 16-row A tiles) x co 8*(w/2) .. +7
 * (one 8-column B tile) x all 9 taps: 18 accumulator tiles (72 registers).
 *
 * K order inside a 32-pixel step: lane (g = lane/4, t = lane%4) owns pixels 8t .. 8t+7 and
 * k-step j (0..3) maps k = t to pixel 8t + 2j and k = t + 4 to pixel 8t + 2j + 1 (any
 * permutation of k is a valid GEMM as long as A and B agree).  Then
 *   A: one LDS.128 per fragment from the arranged buffer, registers in HMMA order;
 *   B: for tap column kw the lane needs grad_y columns 8t + 2j + kw*DW (+1), so the
 *      4 k-steps x 3 tap columns of one tap row are a window of 8 + 2*DW <= 12
 *      consecutive floats of one staged row: 3 LDS.128 feed 12 B fragments.
 * Per 32-pixel step and warp: 8 + 9 LDS.128 for 72 mma.
 *
 * Banks: a quarter warp of a window LDS.128 is lanes g = 2i, 2i+1, t = 0..3, reading rows g
 * at column offsets 8t.  With the row stride = 4 mod 8 floats (GWU_GS = 68) row g+1 sits 4
 * banks off row g: the 8 lanes cover 8 disjoint bank quads, one wavefront each.  The A
 * fragments and the raw x slots are 512 contiguous bytes per warp access.
 *
 * Precision: float32.  In tf32 mode both operands are rounded to nearest TF32 (half a TF32
 * ulp added to the bits, which the tensor core then truncates: tf32_operand_bits): x once
 * per unit when it is arranged, grad_y as the windows are loaded.  In fp32 mode (3xTF32,
 * grad_weight_mma_3xtf32_64x32) both are split into big and small TF32 pieces the same
 * way, and each product is three mma.  The tensor core chops each mma's sum at the
 * accumulator's ulp (a bias toward zero), so the accumulators hold only a few units before
 * they are added into the outer float sums (round to nearest): one (64 pixels = 8 k-steps)
 * in fp32 mode, where the first mma of a unit starts from zero, and GWM_TF32_FLUSH in tf32
 * mode, where TF32's operand rounding dwarfs the chopping.  A flush waits for the last mma
 * of its accumulators, right before the unit's barrier, where it holds every warp: tf32
 * mode flushing every 4 units instead of every unit runs 7.5% faster.
 */
#include "cuda/grad_weight/units.cuh"

#define GWM_THREADS 256 /* 8 warps: 2 (ci) x 4 (co) */
#define GWM_TF32_FLUSH 4 /* units per flush of the accumulators in tf32 mode */
#define GWM_X_FLOATS (GWU_CI * GWU_PX) /* x of one unit, raw or in fragment order */
#define GWM_STAGE_FLOATS (GWM_X_FLOATS + GWU_GS_FLOATS(GWU_CO))

/* How the variants multiply: one TF32 product, 3xTF32, 3xFP16. */
enum { GWM_TF32 = 0, GWM_3XTF32 = 1, GWM_3XFP16 = 2 };
/* the stages, then two buffers of x in fragment order (each a big and a small piece for
 * 3xTF32; for 3xFP16 hi and lo halves in the room of one, then the exponents of its 64 x
 * rows): 160,256 bytes, 193,024 for 3xTF32, 160,768 for 3xFP16 */
#define GWM_SMEM_BYTES(kind)                                                                      \
    ((GWU_STAGES * GWM_STAGE_FLOATS + 2 * ((kind) == GWM_3XTF32 ? 2 : 1) * GWM_X_FLOATS +      \
      ((kind) == GWM_3XFP16 ? 2 * GWU_CI : 0)) * (int)sizeof(float))

/* The x copies of one thread: tile M = T / 64 (ci rows 16*M ..), u = T % 64 / 32,
 * g = T % 32 / 4, t = T % 4: rows 16*M + g and 16*M + g + 8, pixels 32*u + 8*t .. + 7 of the
 * unit, exactly the values of lane (g, t)'s four A fragments of tile M in step u (see
 * gwm_arrange).  For 3xFP16, T = 64*M + 8*g + 4*u + t instead: the 8 threads that hold rows
 * g and g + 8 of a unit are 8 consecutive lanes (gwm_arrange_fp16 scales each row).  Raw
 * slot (h, q) (row + 8*h, pixels + 4*q) of thread T is the 16 bytes at
 * raw[(2*h + q)*1024 + 4*T]: a warp's accesses to one slot are 512 contiguous bytes. */
struct gwm_xpart {
    int row, px; /* ci row 16*M + g within the tile, pixel 32*u + 8*t within the unit */
};
template <int KIND> __device__ __forceinline__ gwm_xpart gwm_xpart_of(int tid)
{
    gwm_xpart r;
    r.row = tid / 64 * 16 + (KIND == GWM_3XFP16 ? tid % 64 / 8 : tid % 32 / 4);
    r.px = (KIND == GWM_3XFP16 ? tid % 8 / 4 : tid % 64 / 32) * 32 + tid % 4 * 8;
    return r;
}

/* Issues the copies of one unit into stage st, V floats per cp.async, from NT threads
 * (tid: this one's index among them): x into the raw slots of threads T = tid, tid + NT, ...
 * < GWM_THREADS (zero where outside the tensor or the tile), then grad_y (gwu_stage_gy). */
template <int V, int KIND>
__device__ __forceinline__ void gwm_stage_x(const gwu_params &p, float *st, const gwu_cursor &c, const gwu_tile &t,
                                            unsigned T)
{
    const int iw0 = c.seg * GWU_PX;
    const gwm_xpart xp = gwm_xpart_of<KIND>(T);
    const int64_t x_chan = (int64_t)p.h_in * p.w_in;
    const float *x_row = p.x + ((c.n * p.c_in + (int64_t)t.grp * p.cig + t.ci0 + xp.row) * p.h_in + c.ih) * (int64_t)p.w_in +
                         iw0 + xp.px;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        const bool row_ok = t.ci0 + xp.row + 8 * h < p.cig;
#pragma unroll
        for (int e = 0; e < 8; e += V) {
            const bool ok = row_ok && iw0 + xp.px + e < p.w_in;
            cp_async_zfill<4 * V>(st + (2 * h + e / 4) * 1024 + 4 * T + e % 4, x_row + 8 * h * x_chan + e, ok);
        }
    }
}
template <int V, int KIND, int NT>
__device__ __forceinline__ void gwm_stage(const gwu_params &p, float *st, const gwu_cursor &c, const gwu_tile &t,
                                          unsigned tid)
{
#pragma unroll 1 /* (NT = 128: one thread's x at a time, for the producers' registers) */
    for (int r = 0; r < GWM_THREADS / NT; ++r) gwm_stage_x<V, KIND>(p, st, c, t, tid + r * NT);
    gwu_stage_gy<V, NT, GWU_CO>(p, st + GWM_X_FLOATS, c, t, tid);
}

/* Sums of a lane, the outer ones or the accumulators: s[m][tap][r] is ci 32*wm + 16*m + g +
 * 8*(r/2), co 8*wc + 2*t + r%2 (the C layout of both mma shapes), tap (kh0 + tap / 3,
 * tap % 3). */
typedef float gwm_sums[2][GWU_KH * GWU_KW][4];

__device__ __forceinline__ void gwm_zero(gwm_sums &s)
{
#pragma unroll
    for (int m = 0; m < 2; ++m)
#pragma unroll
        for (int tap = 0; tap < GWU_KH * GWU_KW; ++tap)
#pragma unroll
            for (int r = 0; r < 4; ++r) s[m][tap][r] = 0.f;
}

/* The copies of the pipeline's first GWU_STAGES - 1 units, from NT threads (gwm_stage), in
 * the order of gwu_advance<BAND>.  Every step commits one (maybe empty) group, so that
 * wait<STAGES - 2> means "unit k landed". */
template <int V, int KIND, int NT, int BAND>
__device__ __forceinline__ void gwm_prologue(const gwu_params &p, float *smem, gwu_cursor &cur, const gwu_tile &tile,
                                             int nunits, unsigned tid)
{
    for (int k = 0; k < GWU_STAGES - 1; ++k) {
        if (k < nunits) {
            gwm_stage<V, KIND, NT>(p, smem + k * GWM_STAGE_FLOATS, cur, tile, tid);
            gwu_advance<BAND>(p, cur);
        }
        cp_async_commit();
    }
}

/* The slice's sums of this lane (warp (wm, wc), lane (g, t)) into the workspace. */
__device__ __forceinline__ void gwm_store(const gwu_params &p, const gwu_tile &tile, const gwm_sums &outer, int wm,
                                          int wc, int g, int t)
{
#pragma unroll
    for (int m = 0; m < 2; ++m)
#pragma unroll
        for (int r = 0; r < 4; ++r)
            gwu_store(p, tile, 32 * wm + 16 * m + g + 8 * (r / 2), 8 * wc + 2 * t + r % 2,
                      [&](int tap) { return outer[m][tap][r]; });
}

/* Thread T's raw x of a landed unit (this thread's own copies: visible to it after its own
 * cp.async wait, no barrier needed), as TF32 operands rounded to nearest (tf32_operand_bits;
 * for 3xTF32 split by tf32_split into a big piece at xa and a small one at
 * xa + GWM_X_FLOATS) and stored in A-fragment order:
 * xa[((M*2 + u)*4 + j)*128 + lane*4 + r] is register r of lane (g, t)'s A fragment of tile
 * M, step u, k-step j: (row g, pixel 2j), (row g+8, 2j), (g, 2j+1), (g+8, 2j+1), pixels
 * counted from 32*u + 8*t.  So a warp loads a fragment with one LDS.128 of 512 contiguous
 * bytes, and the registers land in the order HMMA wants them (no moves).  The stores: a
 * quarter warp (one g pair, t = 0..3, one u) writes lanes 8i .. 8i+7, 128 contiguous bytes. */
template <bool SPLIT> __device__ __forceinline__ void gwm_arrange(const float *raw, float *xa, int T)
{
    float v[2][8], w[2][8];
#pragma unroll
    for (int h = 0; h < 2; ++h)
#pragma unroll
        for (int q = 0; q < 2; ++q) {
            const float4 f = *(const float4 *)(raw + (2 * h + q) * 1024 + 4 * T);
            const float e[4] = {f.x, f.y, f.z, f.w};
#pragma unroll
            for (int i = 0; i < 4; ++i) {
                if (SPLIT) {
                    uint32_t big, small;
                    tf32_split(e[i], big, small);
                    v[h][4 * q + i] = __uint_as_float(big);
                    w[h][4 * q + i] = __uint_as_float(small);
                } else {
                    v[h][4 * q + i] = __uint_as_float(tf32_operand_bits(e[i]));
                }
            }
        }
    float *dst = xa + ((T / 64 * 2 + T % 64 / 32) * 4) * 128 + T % 32 * 4;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
        *(float4 *)(dst + j * 128) = make_float4(v[0][2 * j], v[1][2 * j], v[0][2 * j + 1], v[1][2 * j + 1]);
        if (SPLIT)
            *(float4 *)(dst + GWM_X_FLOATS + j * 128) = make_float4(w[0][2 * j], w[1][2 * j], w[0][2 * j + 1], w[1][2 * j + 1]);
    }
}

/* The A fragments of ci tiles 2*wm + m (m < 2) in 32-pixel step u, k-steps j < J, from x in
 * fragment order (xf: this lane's first fragment, T a fragment's registers): a[m][j], and
 * where TWO the second piece of each, `second` fragments on (3xTF32's small, 3xFP16's lo). */
template <int J, bool TWO, typename T>
__device__ __forceinline__ void gwm_load_a(const T *xf, int u, int second, T (&a)[2][J], T (&b)[2][J])
{
#pragma unroll
    for (int m = 0; m < 2; ++m)
#pragma unroll
        for (int j = 0; j < J; ++j) {
            a[m][j] = xf[((m * 2 + u) * J + j) * 32];
            if (TWO) b[m][j] = xf[second + ((m * 2 + u) * J + j) * 32];
        }
}

/* 4 floats from shared memory (16-byte aligned) as TF32 mma operands rounded to nearest
 * into big[0..3]; for 3xTF32 split into big and small pieces. */
template <bool SPLIT> __device__ __forceinline__ void gwm_load4(uint32_t *big, uint32_t *small, const float *s)
{
    const float4 q = *(const float4 *)s;
    const float e[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        if (SPLIT) tf32_split(e[i], big[i], small[i]);
        else big[i] = tf32_operand_bits(e[i]);
    }
}

/* The mma of one unit for warp (wm, wc), lane (g, t): x in fragment order at xa, grad_y in
 * stage st, into the accumulators acc, which go into the outer sums where `flush`.
 * DW: dilation_w (1 or 2), compile-time so that the window indices are registers;
 * SPLIT: 3xTF32 (fp32 mode), three mma per product (small x * big grad_y, big x * small
 * grad_y, big * big) into the same accumulators.  FLUSH: units per flush; where it is 1,
 * each unit's first mma starts the accumulators from zero. */
template <int DW, bool SPLIT, int FLUSH>
__device__ __forceinline__ void gwm_unit(const float *xa, const float *st, int wm, int wc, int lane, gwm_sums &acc,
                                         gwm_sums &outer, bool flush)
{
    constexpr int NQ = 3; /* LDS.128 per window of 8 + 2*DW <= 12 floats */
    const int g = lane / 4, t = lane % 4;
    const float4 *xf = (const float4 *)xa + wm * 2 * 2 * 4 * 32 + lane;
    const float *gs = st + GWM_X_FLOATS + (8 * wc + g) * GWU_GS + 8 * t;
#pragma unroll
    for (int u = 0; u < GWU_PX / 32; ++u) {
        /* a[m][j]: the A fragment of ci tile 2*wm + m, step u, k-step j (as[m][j]: its
         * small piece, 3xTF32) */
        float4 a[2][4], as[2][4];
        gwm_load_a<4, SPLIT>(xf, u, GWM_X_FLOATS / 4, a, as);
#pragma unroll
        for (int kh = 0; kh < GWU_KH; ++kh) {
            /* w[e]: grad_y of co row g, tap row kh, staged column 32*u + 8*t + e (ws: small) */
            uint32_t w[4 * NQ], ws[4 * NQ];
#pragma unroll
            for (int q = 0; q < NQ; ++q)
                gwm_load4<SPLIT>(&w[4 * q], &ws[4 * q], gs + kh * GWU_CO * GWU_GS + 32 * u + 4 * q);
#pragma unroll
            for (int kw = 0; kw < GWU_KW; ++kw)
#pragma unroll
                for (int j = 0; j < 4; ++j)
#pragma unroll
                    for (int m = 0; m < 2; ++m) {
                        float(&d)[4] = acc[m][kh * GWU_KW + kw];
                        const int e0 = 2 * j + kw * DW, e1 = e0 + 1;
                        /* the first mma of a unit that starts the accumulators */
                        const bool first = FLUSH == 1 && u == 0 && j == 0;
                        if (SPLIT) {
                            mma_tf32_m16n8k8(d, as[m][j], w[e0], w[e1], first);
                            mma_tf32_m16n8k8(d, a[m][j], ws[e0], ws[e1], false);
                        }
                        mma_tf32_m16n8k8(d, a[m][j], w[e0], w[e1], first && !SPLIT);
                    }
        }
    }
    if (flush) {
#pragma unroll
        for (int m = 0; m < 2; ++m)
#pragma unroll
            for (int tap = 0; tap < GWU_KH * GWU_KW; ++tap)
#pragma unroll
                for (int r = 0; r < 4; ++r) outer[m][tap][r] += acc[m][tap][r];
        if (FLUSH > 1) gwm_zero(acc);
    }
}

/* Units per flush: 3xTF32 one (its sums must be as accurate as float32's), tf32 mode
 * GWM_TF32_FLUSH. */
template <bool SPLIT> __host__ __device__ constexpr int gwm_flush_units() { return SPLIT ? 1 : GWM_TF32_FLUSH; }

/* ---- 3xFP16 (grad_weight_mma_3xfp16_64x32) ----
 * Both operands split into FP16 pieces (common.cuh, fp16_split, lo unscaled), three
 * m16n8k16 per product (hi x * hi gy, hi x * lo gy, lo x * hi gy) into one accumulator that
 * holds one unit, as 3xTF32's: half the mma of 3xTF32 for the same sums, each at the same
 * issue cost.  K order inside a 32-pixel step: lane (g, t) owns pixels 8t .. 8t+7 as
 * before; k16-step j (0, 1) maps k = 2t, 2t + 1 to pixels 8t + 4j, + 1 and k = 2t + 8, 2t + 9
 * to pixels 8t + 4j + 2, + 3, for A and B alike.
 *
 * Range: FP16 overflows at 65520, so every row of either operand is scaled by a power of
 * two per unit, chosen from the row's largest magnitude (fp16_exponent: into [2^14, 2^15)):
 * an x row (ci) by the 8 threads that arrange it, a grad_y row (co, tap row) by the 4 lanes
 * that read it, from their windows (68 columns).  A row scale factors out of the unit's sums
 * (the rows of A and the columns of B are the sums' rows and columns), so the unit's
 * accumulators go to the outer sums times 2^-ex(ci) 2^-ey(co, kh): exact scaling, no
 * overflow, and small rows keep their bits. */
#define GWM_FP16_TOP 14 /* a row's largest magnitude, scaled: [2^14, 2^15) */

/* The largest of m over the lanes that differ in the bits of `lanes` (xor masks up to it). */
__device__ __forceinline__ float gwm_lanes_max(float m, int lanes)
{
    for (int x = 1; x <= lanes; x <<= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, x));
    return m;
}

/* Thread T's raw x of a landed unit (this thread's own copies), scaled per row and split
 * into FP16 hi and lo pieces in A-fragment order of m16n8k16: hi at
 * xa[((M*2 + u)*2 + j)*128 + lane*4 + r] (32-bit words, a half pair each), lo
 * GWM_X_FLOATS / 2 words on; register r of lane
 * (g, t) in k16-step j: (row g, pixels 4j, 4j+1), (g+8, 4j, 4j+1), (g, 4j+2, 4j+3),
 * (g+8, 4j+2, 4j+3), pixels counted from 32*u + 8*t.  The rows' exponents go to xe[row]. */
__device__ __forceinline__ void gwm_arrange_fp16(const float *raw, uint32_t *xa, int *xe, int T)
{
    const int M = T / 64, g = T % 64 / 8, u = T % 8 / 4, t = T % 4;
    float v[2][8];
#pragma unroll
    for (int h = 0; h < 2; ++h)
#pragma unroll
        for (int q = 0; q < 2; ++q) *(float4 *)&v[h][4 * q] = *(const float4 *)(raw + (2 * h + q) * 1024 + 4 * T);
    __half2 hi[2][4], lo[2][4];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        float m = 0.f;
#pragma unroll
        for (int e = 0; e < 8; ++e) m = fmaxf(m, fabsf(v[h][e]));
        const int ex = fp16_exponent(__float_as_uint(gwm_lanes_max(m, 4)), GWM_FP16_TOP, 0);
        if (T % 8 == 0) xe[16 * M + g + 8 * h] = ex;
        const float sc = pow2f(ex);
#pragma unroll
        for (int q = 0; q < 4; ++q) fp16_split(v[h][2 * q] * sc, v[h][2 * q + 1] * sc, 1.f, hi[h][q], lo[h][q]);
    }
    uint32_t *dst = xa + ((M * 2 + u) * 2) * 128 + (g * 4 + t) * 4;
#pragma unroll
    for (int j = 0; j < 2; ++j) {
        const __half2 fh[4] = {hi[0][2 * j], hi[1][2 * j], hi[0][2 * j + 1], hi[1][2 * j + 1]};
        const __half2 fl[4] = {lo[0][2 * j], lo[1][2 * j], lo[0][2 * j + 1], lo[1][2 * j + 1]};
        *(uint4 *)(dst + j * 128) = *(const uint4 *)fh;
        *(uint4 *)(dst + GWM_X_FLOATS / 2 + j * 128) = *(const uint4 *)fl;
    }
}

/* The half pair (e, e + 1) of a window split into pairs p[i] = (2i, 2i + 1). */
__device__ __forceinline__ uint32_t gwm_pair(const __half2 *p, int e)
{
    const uint32_t a = *(const uint32_t *)&p[e / 2];
    if (e % 2 == 0) return a;
    return __byte_perm(a, *(const uint32_t *)&p[e / 2 + 1], 0x5432);
}

/* The mma of one unit for warp (wm, wc), lane (g, t), into the outer sums: x in fragment
 * order at xa with its rows' exponents at xe, grad_y in stage st.  DW: dilation_w (1 or 2). */
template <int DW>
__device__ __forceinline__ void gwm_unit_fp16(const uint32_t *xa, const int *xe, const float *st, int wm, int wc,
                                              int lane, gwm_sums &outer)
{
    constexpr int NQ = 3;
    const int g = lane / 4, t = lane % 4;
    /* x rows 32*wm + 16*m + g (+ 8): their scales back (the unit's exponents, xe) */
    float sx[2][2];
#pragma unroll
    for (int m = 0; m < 2; ++m)
#pragma unroll
        for (int h = 0; h < 2; ++h) sx[m][h] = pow2f(-xe[32 * wm + 16 * m + g + 8 * h]);
    const uint4 *xf = (const uint4 *)xa + wm * 2 * 2 * 2 * 32 + lane;
    const float *gs = st + GWM_X_FLOATS + (8 * wc + g) * GWU_GS + 8 * t;
    /* one tap row at a time, so that only its 3 taps' accumulators are live */
#pragma unroll
    for (int kh = 0; kh < GWU_KH; ++kh) {
        /* the windows of grad_y row (kh, co 8*wc + g) for both steps: staged columns
         * 32*u + 8*t + 0 .. 11; the row's exponent from the 68 columns of the 4 lanes t */
        float w[GWU_PX / 32][4 * NQ];
        float mx = 0.f;
#pragma unroll
        for (int u = 0; u < GWU_PX / 32; ++u)
#pragma unroll
            for (int q = 0; q < NQ; ++q) {
                *(float4 *)&w[u][4 * q] = *(const float4 *)(gs + kh * GWU_CO * GWU_GS + 32 * u + 4 * q);
#pragma unroll
                for (int e = 0; e < 4; ++e) mx = fmaxf(mx, fabsf(w[u][4 * q + e]));
            }
        const int ey = fp16_exponent(__float_as_uint(gwm_lanes_max(mx, 2)), GWM_FP16_TOP, 0);
        const float sc = pow2f(ey);
        float acc[2][GWU_KW][4];
#pragma unroll
        for (int u = 0; u < GWU_PX / 32; ++u) {
            /* ah[m][j], al[m][j]: the A fragments (hi, lo) of ci tile 2*wm + m, step u, k16-step j */
            uint4 ah[2][2], al[2][2];
            gwm_load_a<2, true>(xf, u, GWM_X_FLOATS / 8, ah, al);
            /* the window scaled and split into half pairs (0, 1), (2, 3), ... */
            __half2 wh[2 * NQ], wl[2 * NQ];
#pragma unroll
            for (int i = 0; i < 2 * NQ; ++i) fp16_split(w[u][2 * i] * sc, w[u][2 * i + 1] * sc, 1.f, wh[i], wl[i]);
#pragma unroll
            for (int kw = 0; kw < GWU_KW; ++kw)
#pragma unroll
                for (int j = 0; j < 2; ++j) {
                    const int e0 = 4 * j + kw * DW, e1 = e0 + 2;
                    const uint32_t bh0 = gwm_pair(wh, e0), bh1 = gwm_pair(wh, e1);
                    const uint32_t bl0 = gwm_pair(wl, e0), bl1 = gwm_pair(wl, e1);
#pragma unroll
                    for (int m = 0; m < 2; ++m) {
                        mma_f16_m16n8k16(acc[m][kw], ah[m][j], bh0, bh1, u == 0 && j == 0);
                        mma_f16_m16n8k16(acc[m][kw], ah[m][j], bl0, bl1, false);
                        mma_f16_m16n8k16(acc[m][kw], al[m][j], bh0, bh1, false);
                    }
                }
        }
        /* the tap row's sums back to their scale, into the outer sums: columns
         * 8*wc + 2*t (+ 1), whose exponents lanes 4 * (2t) and 4 * (2t + 1) hold */
        float sy[2];
#pragma unroll
        for (int c = 0; c < 2; ++c) sy[c] = pow2f(-__shfl_sync(0xffffffffu, ey, 4 * (2 * t + c)));
#pragma unroll
        for (int m = 0; m < 2; ++m)
#pragma unroll
            for (int kw = 0; kw < GWU_KW; ++kw)
#pragma unroll
                for (int r = 0; r < 4; ++r) {
                    float &o = outer[m][kh * GWU_KW + kw][r];
                    o = fmaf(acc[m][kw][r] * sx[m][r / 2], sy[r % 2], o);
                }
    }
}

/* What differs between the kinds of multiply, for the kernels below: thread T's x of a
 * landed unit in stage st arranged into x buffer xa (for 3xFP16 with its rows' exponents
 * at xe; gwm_arrange, gwm_arrange_fp16), and the unit's mma for warp `warp`, lane `lane`
 * (gwm_unit with FLUSH units per flush, gwm_unit_fp16). */
template <int KIND> __device__ __forceinline__ void gwm_arrange_kind(const float *st, float *xa, int *xe, int T)
{
    if constexpr (KIND == GWM_3XFP16)
        gwm_arrange_fp16(st, (uint32_t *)xa, xe, T);
    else
        gwm_arrange<KIND == GWM_3XTF32>(st, xa, T);
}
template <int DW, int KIND, int FLUSH>
__device__ __forceinline__ void gwm_unit_kind(const float *xa, const int *xe, const float *st, int warp, int lane,
                                              gwm_sums &acc, gwm_sums &outer, bool flush)
{
    if constexpr (KIND == GWM_3XFP16)
        gwm_unit_fp16<DW>((const uint32_t *)xa, xe, st, warp % 2, warp / 2, lane, outer);
    else
        gwm_unit<DW, KIND == GWM_3XTF32, FLUSH>(xa, st, warp % 2, warp / 2, lane, acc, outer, flush);
}

/* The kernels with one barrier per unit.  V: the cp.async width in floats. */
template <int DW, int V, int KIND> __device__ __forceinline__ void grad_weight_barrier_body(const gwu_params &p)
{
    constexpr int FLUSH = gwm_flush_units<KIND != GWM_TF32>();
    extern __shared__ __align__(16) float gwm_smem[];
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const gwu_tile tile = gwu_tile_of<GWU_CO>(p);
    gwu_cursor cur;
    const int nunits = gwu_slice<0>(p, cur);

    gwm_sums outer;
    gwm_sums acc; /* mma.sync TF32's and 3xTF32's (3xFP16 keeps a tap row's in gwm_unit_fp16) */
    gwm_zero(outer);
    if (FLUSH > 1) gwm_zero(acc);
    gwm_prologue<V, KIND, GWM_THREADS, 0>(p, gwm_smem, cur, tile, nunits, threadIdx.x);
    float *xa_buf = gwm_smem + GWU_STAGES * GWM_STAGE_FLOATS;
    int *xe_buf = (int *)(xa_buf + 2 * GWM_X_FLOATS); /* 3xFP16: the x rows' exponents */
    for (int k = 0; k < nunits; ++k) {
        cp_async_wait<GWU_STAGES - 2>();
        const float *st = gwm_smem + k % GWU_STAGES * GWM_STAGE_FLOATS;
        /* x buffer k % 2 (and its exponents) was last read for unit k - 2, before the
         * previous barrier */
        float *xa = xa_buf + k % 2 * (KIND == GWM_3XTF32 ? 2 : 1) * GWM_X_FLOATS;
        int *xe = xe_buf + k % 2 * GWU_CI;
        gwm_arrange_kind<KIND>(st, xa, xe, threadIdx.x);
        /* unit k is visible to all; every warp is done with unit k - 1, whose stage the
         * copies of unit k + STAGES - 1 reuse */
        __syncthreads();
        if (k + GWU_STAGES - 1 < nunits) {
            gwm_stage<V, KIND, GWM_THREADS>(p, gwm_smem + (k + GWU_STAGES - 1) % GWU_STAGES * GWM_STAGE_FLOATS, cur,
                                            tile, threadIdx.x);
            gwu_advance<0>(p, cur);
        }
        cp_async_commit();
        gwm_unit_kind<DW, KIND, FLUSH>(xa, xe, st, warp, lane, acc, outer, k % FLUSH == FLUSH - 1 || k == nunits - 1);
    }
    cp_async_wait<0>();
    gwm_store(p, tile, outer, warp % 2, warp / 2, lane / 4, lane % 4);
}

/* ---- warp-specialized (grad_weight_mma_ws_64x32, grad_weight_mma_3xfp16_ws_64x32) ----
 * The same units, sums and mma as the kernels above, without the unit's barrier: a fourth
 * warpgroup copies and arranges, the two others only multiply, and shared-memory barriers
 * (mbarrier) per buffer say when a unit is ready and when its buffers are free.  Producer
 * thread P plays threads P and P + 128 of the barrier kernels' x copies and arranging, and
 * copies grad_y as 4 warps.  Unit k: the producers wait for their copies of k, wait until
 * every mma thread is done with unit k - 2 (x buffer k % 2), arrange, arrive on full[k % 3];
 * then wait until they are done with unit k - 1 (stage (k + 2) % 3) and copy unit k + 2.
 * The mma warps wait on full[k % 3], multiply, arrive on done[k % 3].  So the mma warps run
 * from one unit into the next while the producers arrange, and a slow warp holds the others
 * only a unit later.  setmaxnreg moves registers from the producers to the mma warps
 * (gwm_ws_regs): the 168 per thread of the launch (384 threads) become 2 x mma + copy <=
 * 504.  sm_90a only (setmaxnreg, mbarrier.try_wait); the plan declines elsewhere. */
#define GWM_WS_THREADS (GWM_THREADS + 128)
/* Registers per thread after setmaxnreg, mma warps and producers: 3xFP16's mma warps use
 * up to 222 (they spilled at 216), TF32's up to 188; producers use up to 50 (3xFP16) and 47
 * (TF32), and spilled at 40. */
template <int KIND, bool MMA> __host__ __device__ constexpr int gwm_ws_regs()
{
    return KIND == GWM_3XFP16 ? (MMA ? 224 : 56) : (MMA ? 216 : 72);
}
/* the barrier kernels' shared memory, then full[GWU_STAGES] and done[GWU_STAGES] */
#define GWM_WS_SMEM_BYTES(kind) (GWM_SMEM_BYTES(kind) + 2 * GWU_STAGES * 8)

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
template <int DW, int V, int KIND> __device__ __forceinline__ void grad_weight_ws_body(const gwu_params &p)
{
    constexpr int S = GWU_STAGES, FLUSH = gwm_flush_units<false>();
    /* units in bands of 4 segments for TF32 (H100, seed: 3.51-3.54 against 3.66-3.67 ms in
     * row order); 3xFP16 gained nothing (5.76-5.80 against 5.75-5.79) */
    constexpr int BAND = KIND == GWM_TF32 ? 4 : 0;
    extern __shared__ __align__(16) float gwm_smem[];
    uint64_t *full = (uint64_t *)(gwm_smem + GWM_SMEM_BYTES(KIND) / sizeof(float)), *done = full + S;
    const gwu_tile tile = gwu_tile_of<GWU_CO>(p);
    gwu_cursor cur;
    const int nunits = gwu_slice<BAND>(p, cur);
    float *xa_buf = gwm_smem + S * GWM_STAGE_FLOATS;
    int *xe_buf = (int *)(xa_buf + 2 * GWM_X_FLOATS); /* 3xFP16: the x rows' exponents */
    if (threadIdx.x < S) {
        mbar_init(full + threadIdx.x, GWM_WS_THREADS - GWM_THREADS);
        mbar_init(done + threadIdx.x, GWM_THREADS);
    }
    __syncthreads();

    if (threadIdx.x >= GWM_THREADS) { /* the producers */
        setmaxnreg_dec<gwm_ws_regs<KIND, false>()>();
        constexpr int NT = GWM_WS_THREADS - GWM_THREADS;
        const unsigned P = threadIdx.x - GWM_THREADS;
        gwm_prologue<V, KIND, NT, BAND>(p, gwm_smem, cur, tile, nunits, P);
        for (int k = 0; k < nunits; ++k) {
            cp_async_wait<S - 2>();
            const float *st = gwm_smem + k % S * GWM_STAGE_FLOATS;
            if (k >= 2) mbar_wait(done + (k - 2) % S, (k - 2) / S % 2);
            float *xa = xa_buf + k % 2 * GWM_X_FLOATS;
#pragma unroll 1 /* one thread's x at a time: unrolled, the producers spilled */
            for (int r = 0; r < GWM_THREADS / NT; ++r)
                gwm_arrange_kind<KIND>(st, xa, xe_buf + k % 2 * GWU_CI, P + r * NT);
            mbar_arrive(full + k % S);
            if (k + S - 1 < nunits) {
                if (k >= 1) mbar_wait(done + (k - 1) % S, (k - 1) / S % 2);
                gwm_stage<V, KIND, NT>(p, gwm_smem + (k + S - 1) % S * GWM_STAGE_FLOATS, cur, tile, P);
                gwu_advance<BAND>(p, cur);
            }
            cp_async_commit();
        }
        cp_async_wait<0>();
        return;
    }

    setmaxnreg_inc<gwm_ws_regs<KIND, true>()>();
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    gwm_sums outer, acc; /* acc: tf32 mode's (3xFP16 keeps a tap row's in gwm_unit_fp16) */
    gwm_zero(outer);
    gwm_zero(acc);
    for (int k = 0; k < nunits; ++k) {
        mbar_wait(full + k % S, k / S % 2);
        const float *st = gwm_smem + k % S * GWM_STAGE_FLOATS;
        const float *xa = xa_buf + k % 2 * GWM_X_FLOATS;
        gwm_unit_kind<DW, KIND, FLUSH>(xa, xe_buf + k % 2 * GWU_CI, st, warp, lane, acc, outer,
                                       k % FLUSH == FLUSH - 1 || k == nunits - 1);
        mbar_arrive(done + k % S);
    }
    gwm_store(p, tile, outer, warp % 2, warp / 2, lane / 4, lane % 4);
}
#endif

/* KIND: GWM_TF32 or GWM_3XFP16. */
template <int DW, int V, int KIND>
__global__ void __launch_bounds__(GWM_WS_THREADS, 1) grad_weight_mma_ws_kernel(const gwu_params p)
{
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    grad_weight_ws_body<DW, V, KIND>(p);
#else
    __trap(); /* sm90a_available() keeps other builds from launching it */
#endif
}

/* 3xTF32 needs more shared memory per CTA than sm_80 has (the plan declines there), and it
 * and 3xFP16 spill when compiled for it: their bodies exist for sm_90 and newer only (the
 * plan declines 3xFP16 on older devices). */
template <int DW, int V, int KIND>
__global__ void __launch_bounds__(GWM_THREADS, 1) grad_weight_mma_kernel(const gwu_params p)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 900
    if constexpr (KIND != GWM_TF32) return;
#endif
    grad_weight_barrier_body<DW, V, KIND>(p);
}

/* ---- host side ---- */

/* 3xTF32 sits at 246-255 registers: its kernels copy at most 8 bytes at a time, and with
 * dilation_w 2 4 bytes, where wider copies spilled (every copy width is valid where a
 * wider one is). */
template <int DW, int KIND, bool WS> static gwu_kernel gwm_kernel_dw(int v)
{
    if constexpr (WS)
        return v == 4 ? grad_weight_mma_ws_kernel<DW, 4, KIND>
                      : v == 2 ? grad_weight_mma_ws_kernel<DW, 2, KIND> : grad_weight_mma_ws_kernel<DW, 1, KIND>;
    else if constexpr (KIND == GWM_3XTF32 && DW == 2)
        return grad_weight_mma_kernel<DW, 1, KIND>;
    else if constexpr (KIND == GWM_3XTF32)
        return v >= 2 ? grad_weight_mma_kernel<DW, 2, KIND> : grad_weight_mma_kernel<DW, 1, KIND>;
    else
        return v == 4 ? grad_weight_mma_kernel<DW, 4, KIND>
                      : v == 2 ? grad_weight_mma_kernel<DW, 2, KIND> : grad_weight_mma_kernel<DW, 1, KIND>;
}

/* The kernel for p with tensors x and grad_y (NULL: only the shape is known yet); one copy
 * width for both.  WS: the warp-specialized kernel. */
template <int KIND, bool WS> static gwu_kernel gwm_kernel(const tconv_problem *p, const void *x, const void *grad_y)
{
    const int vx = gwu_width_x(p, x), vg = gwu_width_gy(p, grad_y), v = vx < vg ? vx : vg;
    return p->dilation_w == 1 ? gwm_kernel_dw<1, KIND, WS>(v) : gwm_kernel_dw<2, KIND, WS>(v);
}

template <bool WS> static constexpr int gwm_threads() { return WS ? GWM_WS_THREADS : GWM_THREADS; }
template <int KIND, bool WS> static constexpr int gwm_smem_bytes()
{
    return WS ? GWM_WS_SMEM_BYTES(KIND) : GWM_SMEM_BYTES(KIND);
}

/* Fills *q, or returns 0 when this variant cannot run the problem: float32 only, TF32 in
 * tf32 mode, 3xTF32 and 3xFP16 in fp32 mode (3xFP16 on 9.0 devices and newer; the
 * warp-specialized kernels where this build holds sm_90a's). */
template <int KIND, bool WS> static int gwm_make_plan(const tconv_problem *p, const tconv_config *config, gwu_params *q)
{
    if (config->dtype != TCONV_FLOAT32 || (config->precision == TCONV_PRECISION_TF32) != (KIND == GWM_TF32)) return 0;
    int dev = 0, major = 0;
    if (cudaGetDevice(&dev) != cudaSuccess || (WS && !sm90a_available(dev))) return 0;
    if (KIND == GWM_3XFP16 && !WS && /* (a 9.0 device where WS: sm90a_available) */
        (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess || major < 9))
        return 0;
    return gwu_make_plan(p, gwm_kernel<KIND, WS>(p, NULL, NULL), gwm_threads<WS>(), gwm_smem_bytes<KIND, WS>(),
                         GWU_CO, q);
}

template <int KIND, bool WS> static int gwm_can_implement(const tconv_problem *p, const tconv_config *config)
{
    gwu_params q;
    return gwm_make_plan<KIND, WS>(p, config, &q);
}

template <int KIND, bool WS> static size_t gwm_workspace_size(const tconv_problem *p, const tconv_config *config)
{
    gwu_params q;
    return gwm_make_plan<KIND, WS>(p, config, &q) ? gwu_workspace_bytes(&q) : 0;
}

template <int KIND, bool WS> static cudaError_t gwm_launch(const tconv_args *a)
{
    gwu_params q;
    if (!gwm_make_plan<KIND, WS>(a->p, a->config, &q)) return cudaErrorInvalidValue;
    return gwu_launch(a, &q, gwm_kernel<KIND, WS>(a->p, a->x, a->grad_y), gwm_threads<WS>(),
                      gwm_smem_bytes<KIND, WS>());
}

/* The variant NAME: KIND's kernels, warp-specialized where WS. */
#define GWM_VARIANT(NAME, KIND, WS)                                                                              \
    const tconv_variant tconv_variant_##NAME = {#NAME, TCONV_PASS_GRAD_WEIGHT, gwm_can_implement<KIND, WS>,      \
                                                gwm_workspace_size<KIND, WS>, gwm_launch<KIND, WS>}
GWM_VARIANT(grad_weight_mma_ws_64x32, GWM_TF32, true);
GWM_VARIANT(grad_weight_mma_64x32, GWM_TF32, false);
GWM_VARIANT(grad_weight_mma_3xfp16_ws_64x32, GWM_3XFP16, true);
GWM_VARIANT(grad_weight_mma_3xfp16_64x32, GWM_3XFP16, false);
GWM_VARIANT(grad_weight_mma_3xtf32_64x32, GWM_3XTF32, false);
