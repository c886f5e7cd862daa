/*
 * grad_weight_mma.cu - grad_weight on tensor cores (mma.sync), the unit-tiled split-K GEMM of
 * units.cuh: "grad_weight_mma_64x32" (tf32 mode, m16n8k8 TF32) and
 * "grad_weight_mma_3xfp16_64x32" (fp32 mode, 3xFP16 on m16n8k16), and on sm_90a the same with
 * a warpgroup that only copies ("grad_weight_mma_ws_64x32", "grad_weight_mma_3xfp16_ws_64x32").
 * A (16 x 8) = x[ci][pixel], B (8 x 8) = grad_y[pixel + tap shift][co], one accumulator tile
 * per (ci, co, tap); warp w computes ci 32*(w%2) .. +31 x co 8*(w/2) .. +7 x all 9 taps.
 * Each thread rounds (or splits) the x values it copied and stores them in A-fragment order
 * (one LDS.128 per fragment); the 4 k-steps x 3 tap columns of a tap row read one window of
 * 8 + 2*DW <= 12 grad_y floats (3 LDS.128 for 12 B fragments).  The tensor cores chop each
 * mma's sum at the accumulator's ulp, so accumulators are added into outer float sums every
 * GW_MMA_TF32_FLUSH units in tf32 mode and every unit for 3xFP16.  docs/algorithm.md has the
 * fragment order and bank layout.
 */
#include "cuda/grad_weight/units.cuh"

#define GW_MMA_THREADS 256 /* 8 warps: 2 (ci) x 4 (co) */
#define GW_MMA_TF32_FLUSH 4 /* units per flush of the accumulators in tf32 mode */
#define GW_MMA_X_FLOATS (UNITS_CI * UNITS_PX) /* x of one unit, raw or in fragment order */
#define GW_MMA_STAGE_FLOATS (GW_MMA_X_FLOATS + UNITS_GY_FLOATS(UNITS_CO))

/* How the variants multiply: one TF32 product, or 3xFP16. */
enum { GW_MMA_TF32 = 0, GW_MMA_3XFP16 = 1 };
/* the stages, then two buffers of x in fragment order (for 3xFP16 hi and lo halves in the
 * room of one, then the exponents of its 64 x rows): 160,256 bytes, 160,768 for 3xFP16 */
#define GW_MMA_SMEM_BYTES(kind)                                                                      \
    ((UNITS_STAGES * GW_MMA_STAGE_FLOATS + 2 * GW_MMA_X_FLOATS + ((kind) == GW_MMA_3XFP16 ? 2 * UNITS_CI : 0)) * \
     (int)sizeof(float))

/* The x copies of one thread: tile M = T / 64 (ci rows 16*M ..), u = T % 64 / 32,
 * g = T % 32 / 4, t = T % 4: rows 16*M + g and 16*M + g + 8, pixels 32*u + 8*t .. + 7 of the
 * unit, exactly the values of lane (g, t)'s four A fragments of tile M in step u (see
 * gw_mma_arrange).  For 3xFP16, T = 64*M + 8*g + 4*u + t instead: the 8 threads that hold rows
 * g and g + 8 of a unit are 8 consecutive lanes (gw_mma_arrange_fp16 scales each row).  Raw
 * slot (h, q) (row + 8*h, pixels + 4*q) of thread T is the 16 bytes at
 * raw[(2*h + q)*1024 + 4*T]: a warp's accesses to one slot are 512 contiguous bytes. */
struct gw_mma_xpart {
    int row, px; /* ci row 16*M + g within the tile, pixel 32*u + 8*t within the unit */
};
template <int KIND> __device__ __forceinline__ gw_mma_xpart gw_mma_xpart_of(int tid)
{
    gw_mma_xpart r;
    r.row = tid / 64 * 16 + (KIND == GW_MMA_3XFP16 ? tid % 64 / 8 : tid % 32 / 4);
    r.px = (KIND == GW_MMA_3XFP16 ? tid % 8 / 4 : tid % 64 / 32) * 32 + tid % 4 * 8;
    return r;
}

/* Issues the copies of one unit into stage st, V floats per cp.async, from NT threads
 * (tid: this one's index among them): x into the raw slots of threads T = tid, tid + NT, ...
 * < GW_MMA_THREADS (zero where outside the tensor or the tile), then grad_y (units_stage_gy). */
template <int V, int KIND> __device__ __forceinline__ void
gw_mma_stage_x(const units_params &p, float *st, const units_cursor &c, const units_tile &t, unsigned T)
{
    const int iw0 = c.seg * UNITS_PX;
    const gw_mma_xpart xp = gw_mma_xpart_of<KIND>(T);
    const int64_t x_chan = (int64_t)p.h_in * p.w_in;
    const float *x_row = p.x +
                         ((c.n * p.c_in + (int64_t)t.grp * p.cig + t.ci0 + xp.row) * p.h_in + c.ih) * (int64_t)p.w_in +
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
template <int V, int KIND, int NT> __device__ __forceinline__ void
gw_mma_stage(const units_params &p, float *st, const units_cursor &c, const units_tile &t, unsigned tid)
{
#pragma unroll 1 /* (NT = 128: one thread's x at a time, for the producers' registers) */
    for (int r = 0; r < GW_MMA_THREADS / NT; ++r) gw_mma_stage_x<V, KIND>(p, st, c, t, tid + r * NT);
    units_stage_gy<V, NT, UNITS_CO>(p, st + GW_MMA_X_FLOATS, c, t, tid);
}

/* Sums of a lane, the outer ones or the accumulators: s[m][tap][r] is ci 32*wm + 16*m + g +
 * 8*(r/2), co 8*wc + 2*t + r%2 (the C layout of both mma shapes), tap (kh0 + tap / 3,
 * tap % 3). */
typedef float gw_mma_sums[2][UNITS_KH * UNITS_KW][4];

__device__ __forceinline__ void gw_mma_zero(gw_mma_sums &s)
{
#pragma unroll
    for (int m = 0; m < 2; ++m)
#pragma unroll
        for (int tap = 0; tap < UNITS_KH * UNITS_KW; ++tap)
#pragma unroll
            for (int r = 0; r < 4; ++r) s[m][tap][r] = 0.f;
}

/* The copies of the pipeline's first UNITS_STAGES - 1 units, from NT threads (gw_mma_stage), in
 * the order of units_advance<BAND>.  Every step commits one (maybe empty) group, so that
 * wait<STAGES - 2> means "unit k landed". */
template <int V, int KIND, int NT, int BAND> __device__ __forceinline__ void
gw_mma_prologue(const units_params &p, float *smem, units_cursor &cur, const units_tile &tile, int nunits, unsigned tid)
{
    for (int k = 0; k < UNITS_STAGES - 1; ++k) {
        if (k < nunits) {
            gw_mma_stage<V, KIND, NT>(p, smem + k * GW_MMA_STAGE_FLOATS, cur, tile, tid);
            units_advance<BAND>(p, cur);
        }
        cp_async_commit();
    }
}

/* The slice's sums of this lane (warp (wm, wc), lane (g, t)) into the workspace. */
__device__ __forceinline__ void gw_mma_store(const units_params &p, const units_tile &tile, const gw_mma_sums &outer,
                                             int wm, int wc, int g, int t)
{
#pragma unroll
    for (int m = 0; m < 2; ++m)
#pragma unroll
        for (int r = 0; r < 4; ++r)
            units_store(p, tile, 32 * wm + 16 * m + g + 8 * (r / 2), 8 * wc + 2 * t + r % 2,
                      [&](int tap) { return outer[m][tap][r]; });
}

/* Thread T's raw x of a landed unit (this thread's own copies: visible to it after its own
 * cp.async wait, no barrier needed), as TF32 operands rounded to nearest (tf32_operand_bits)
 * and stored in A-fragment order:
 * xa[((M*2 + u)*4 + j)*128 + lane*4 + r] is register r of lane (g, t)'s A fragment of tile
 * M, step u, k-step j: (row g, pixel 2j), (row g+8, 2j), (g, 2j+1), (g+8, 2j+1), pixels
 * counted from 32*u + 8*t.  So a warp loads a fragment with one LDS.128 of 512 contiguous
 * bytes, and the registers land in the order HMMA wants them (no moves).  The stores: a
 * quarter warp (one g pair, t = 0..3, one u) writes lanes 8i .. 8i+7, 128 contiguous bytes. */
__device__ __forceinline__ void gw_mma_arrange(const float *raw, float *xa, int T)
{
    float v[2][8];
#pragma unroll
    for (int h = 0; h < 2; ++h)
#pragma unroll
        for (int q = 0; q < 2; ++q) {
            const float4 f = *(const float4 *)(raw + (2 * h + q) * 1024 + 4 * T);
            const float e[4] = {f.x, f.y, f.z, f.w};
#pragma unroll
            for (int i = 0; i < 4; ++i) v[h][4 * q + i] = __uint_as_float(tf32_operand_bits(e[i]));
        }
    float *dst = xa + ((T / 64 * 2 + T % 64 / 32) * 4) * 128 + T % 32 * 4;
#pragma unroll
    for (int j = 0; j < 4; ++j)
        *(float4 *)(dst + j * 128) = make_float4(v[0][2 * j], v[1][2 * j], v[0][2 * j + 1], v[1][2 * j + 1]);
}

/* The A fragments of ci tiles 2*wm + m (m < 2) in 32-pixel step u, k-steps j < J, from x in
 * fragment order (xf: this lane's first fragment, T a fragment's registers): a[m][j], and
 * where TWO the second piece of each, `second` fragments on (3xFP16's lo). */
template <int J, bool TWO, typename T>
__device__ __forceinline__ void gw_mma_load_a(const T *xf, int u, int second, T (&a)[2][J], T (&b)[2][J])
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
 * into w[0..3]. */
__device__ __forceinline__ void gw_mma_load4(uint32_t *w, const float *s)
{
    const float4 q = *(const float4 *)s;
    const float e[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) w[i] = tf32_operand_bits(e[i]);
}

/* The mma of one unit for warp (wm, wc), lane (g, t): x in fragment order at xa, grad_y in
 * stage st, into the accumulators acc, which go into the outer sums where `flush`.
 * DW: dilation_w (1 or 2), compile-time so that the window indices are registers.  FLUSH:
 * units per flush; where it is 1, each unit's first mma starts the accumulators from zero. */
template <int DW, int FLUSH> __device__ __forceinline__ void gw_mma_unit(const float *xa, const float *st, int wm,
                                                                         int wc, int lane, gw_mma_sums &acc,
                                                                         gw_mma_sums &outer, bool flush)
{
    constexpr int NQ = 3; /* LDS.128 per window of 8 + 2*DW <= 12 floats */
    const int g = lane / 4, t = lane % 4;
    const float4 *xf = (const float4 *)xa + wm * 2 * 2 * 4 * 32 + lane;
    const float *gs = st + GW_MMA_X_FLOATS + (8 * wc + g) * UNITS_GY_PITCH + 8 * t;
#pragma unroll
    for (int u = 0; u < UNITS_PX / 32; ++u) {
        /* a[m][j]: the A fragment of ci tile 2*wm + m, step u, k-step j */
        float4 a[2][4], unused[2][4];
        gw_mma_load_a<4, false>(xf, u, 0, a, unused);
#pragma unroll
        for (int kh = 0; kh < UNITS_KH; ++kh) {
            /* w[e]: grad_y of co row g, tap row kh, staged column 32*u + 8*t + e */
            uint32_t w[4 * NQ];
#pragma unroll
            for (int q = 0; q < NQ; ++q) gw_mma_load4(&w[4 * q], gs + kh * UNITS_CO * UNITS_GY_PITCH + 32 * u + 4 * q);
#pragma unroll
            for (int kw = 0; kw < UNITS_KW; ++kw)
#pragma unroll
                for (int j = 0; j < 4; ++j)
#pragma unroll
                    for (int m = 0; m < 2; ++m) {
                        float(&d)[4] = acc[m][kh * UNITS_KW + kw];
                        const int e0 = 2 * j + kw * DW, e1 = e0 + 1;
                        /* the first mma of a unit that starts the accumulators */
                        const bool first = FLUSH == 1 && u == 0 && j == 0;
                        mma_tf32_m16n8k8(d, a[m][j], w[e0], w[e1], first);
                    }
        }
    }
    if (flush) {
#pragma unroll
        for (int m = 0; m < 2; ++m)
#pragma unroll
            for (int tap = 0; tap < UNITS_KH * UNITS_KW; ++tap)
#pragma unroll
                for (int r = 0; r < 4; ++r) outer[m][tap][r] += acc[m][tap][r];
        if (FLUSH > 1) gw_mma_zero(acc);
    }
}

/* ---- 3xFP16 (grad_weight_mma_3xfp16_64x32) ----
 * Both operands split into FP16 pieces (common.cuh, fp16_split, lo unscaled), three
 * m16n8k16 per product (hi x * hi gy, hi x * lo gy, lo x * hi gy) into one accumulator that
 * holds one unit (k16: each mma covers twice the pixels of a TF32 one at the same issue
 * cost).  K order inside a 32-pixel step: lane (g, t) owns pixels 8t .. 8t+7 as before; k16-step j (0, 1) maps k = 2t,
 * 2t + 1 to pixels 8t + 4j, + 1 and k = 2t + 8, 2t + 9 to pixels 8t + 4j + 2, + 3, for A and B alike.
 *
 * Range: FP16 overflows at 65520, so every row of either operand is scaled by a power of
 * two per unit, chosen from the row's largest magnitude (fp16_exponent: into [2^14, 2^15)):
 * an x row (ci) by the 8 threads that arrange it, a grad_y row (co, tap row) by the 4 lanes
 * that read it, from their windows (68 columns).  A row scale factors out of the unit's sums
 * (the rows of A and the columns of B are the sums' rows and columns), so the unit's
 * accumulators go to the outer sums times 2^-ex(ci) 2^-ey(co, kh): exact scaling, no
 * overflow, and small rows keep their bits. */
#define GW_MMA_FP16_TOP 14 /* a row's largest magnitude, scaled: [2^14, 2^15) */

/* The largest of m over the lanes that differ in the bits of `lanes` (xor masks up to it). */
__device__ __forceinline__ float gw_mma_lanes_max(float m, int lanes)
{
    for (int x = 1; x <= lanes; x <<= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, x));
    return m;
}

/* Thread T's raw x of a landed unit (this thread's own copies), scaled per row and split
 * into FP16 hi and lo pieces in A-fragment order of m16n8k16: hi at
 * xa[((M*2 + u)*2 + j)*128 + lane*4 + r] (32-bit words, a half pair each), lo
 * GW_MMA_X_FLOATS / 2 words on; register r of lane
 * (g, t) in k16-step j: (row g, pixels 4j, 4j+1), (g+8, 4j, 4j+1), (g, 4j+2, 4j+3),
 * (g+8, 4j+2, 4j+3), pixels counted from 32*u + 8*t.  The rows' exponents go to xe[row]. */
__device__ __forceinline__ void gw_mma_arrange_fp16(const float *raw, uint32_t *xa, int *xe, int T)
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
        const int ex = fp16_exponent(__float_as_uint(gw_mma_lanes_max(m, 4)), GW_MMA_FP16_TOP, 0);
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
        *(uint4 *)(dst + GW_MMA_X_FLOATS / 2 + j * 128) = *(const uint4 *)fl;
    }
}

/* The half pair (e, e + 1) of a window split into pairs p[i] = (2i, 2i + 1). */
__device__ __forceinline__ uint32_t gw_mma_pair(const __half2 *p, int e)
{
    const uint32_t a = *(const uint32_t *)&p[e / 2];
    if (e % 2 == 0) return a;
    return __byte_perm(a, *(const uint32_t *)&p[e / 2 + 1], 0x5432);
}

/* The mma of one unit for warp (wm, wc), lane (g, t), into the outer sums: x in fragment
 * order at xa with its rows' exponents at xe, grad_y in stage st.  DW: dilation_w (1 or 2). */
template <int DW>
__device__ __forceinline__ void gw_mma_unit_fp16(const uint32_t *xa, const int *xe, const float *st, int wm, int wc,
                                              int lane, gw_mma_sums &outer)
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
    const float *gs = st + GW_MMA_X_FLOATS + (8 * wc + g) * UNITS_GY_PITCH + 8 * t;
    /* one tap row at a time, so that only its 3 taps' accumulators are live */
#pragma unroll
    for (int kh = 0; kh < UNITS_KH; ++kh) {
        /* the windows of grad_y row (kh, co 8*wc + g) for both steps: staged columns
         * 32*u + 8*t + 0 .. 11; the row's exponent from the 68 columns of the 4 lanes t */
        float w[UNITS_PX / 32][4 * NQ];
        float mx = 0.f;
#pragma unroll
        for (int u = 0; u < UNITS_PX / 32; ++u)
#pragma unroll
            for (int q = 0; q < NQ; ++q) {
                *(float4 *)&w[u][4 * q] = *(const float4 *)(gs + kh * UNITS_CO * UNITS_GY_PITCH + 32 * u + 4 * q);
#pragma unroll
                for (int e = 0; e < 4; ++e) mx = fmaxf(mx, fabsf(w[u][4 * q + e]));
            }
        const int ey = fp16_exponent(__float_as_uint(gw_mma_lanes_max(mx, 2)), GW_MMA_FP16_TOP, 0);
        const float sc = pow2f(ey);
        float acc[2][UNITS_KW][4];
#pragma unroll
        for (int u = 0; u < UNITS_PX / 32; ++u) {
            /* ah[m][j], al[m][j]: the A fragments (hi, lo) of ci tile 2*wm + m, step u, k16-step j */
            uint4 ah[2][2], al[2][2];
            gw_mma_load_a<2, true>(xf, u, GW_MMA_X_FLOATS / 8, ah, al);
            /* the window scaled and split into half pairs (0, 1), (2, 3), ... */
            __half2 wh[2 * NQ], wl[2 * NQ];
#pragma unroll
            for (int i = 0; i < 2 * NQ; ++i) fp16_split(w[u][2 * i] * sc, w[u][2 * i + 1] * sc, 1.f, wh[i], wl[i]);
#pragma unroll
            for (int kw = 0; kw < UNITS_KW; ++kw)
#pragma unroll
                for (int j = 0; j < 2; ++j) {
                    const int e0 = 4 * j + kw * DW, e1 = e0 + 2;
                    const uint32_t bh0 = gw_mma_pair(wh, e0), bh1 = gw_mma_pair(wh, e1);
                    const uint32_t bl0 = gw_mma_pair(wl, e0), bl1 = gw_mma_pair(wl, e1);
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
            for (int kw = 0; kw < UNITS_KW; ++kw)
#pragma unroll
                for (int r = 0; r < 4; ++r) {
                    float &o = outer[m][kh * UNITS_KW + kw][r];
                    o = fmaf(acc[m][kw][r] * sx[m][r / 2], sy[r % 2], o);
                }
    }
}

/* What differs between the kinds of multiply, for the kernels below: thread T's x of a
 * landed unit in stage st arranged into x buffer xa (for 3xFP16 with its rows' exponents
 * at xe; gw_mma_arrange, gw_mma_arrange_fp16), and the unit's mma for warp `warp`, lane `lane`
 * (gw_mma_unit with FLUSH units per flush, gw_mma_unit_fp16). */
template <int KIND> __device__ __forceinline__ void gw_mma_arrange_kind(const float *st, float *xa, int *xe, int T)
{
    if constexpr (KIND == GW_MMA_3XFP16)
        gw_mma_arrange_fp16(st, (uint32_t *)xa, xe, T);
    else
        gw_mma_arrange(st, xa, T);
}
template <int DW, int KIND, int FLUSH>
__device__ __forceinline__ void gw_mma_unit_kind(const float *xa, const int *xe, const float *st, int warp, int lane,
                                              gw_mma_sums &acc, gw_mma_sums &outer, bool flush)
{
    if constexpr (KIND == GW_MMA_3XFP16)
        gw_mma_unit_fp16<DW>((const uint32_t *)xa, xe, st, warp % 2, warp / 2, lane, outer);
    else
        gw_mma_unit<DW, FLUSH>(xa, st, warp % 2, warp / 2, lane, acc, outer, flush);
}

/* The kernels with one barrier per unit.  V: the cp.async width in floats. */
template <int DW, int V, int KIND> __device__ __forceinline__ void grad_weight_barrier_body(const units_params &p)
{
    constexpr int FLUSH = KIND == GW_MMA_TF32 ? GW_MMA_TF32_FLUSH : 1; /* 3xFP16: no accumulators kept (FLUSH unused) */
    extern __shared__ __align__(16) float gw_mma_smem[];
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const units_tile tile = units_tile_of<UNITS_CO>(p);
    units_cursor cur;
    const int nunits = units_slice<0>(p, cur);

    gw_mma_sums outer;
    gw_mma_sums acc; /* mma.sync TF32's (3xFP16 keeps a tap row's in gw_mma_unit_fp16) */
    gw_mma_zero(outer);
    if (FLUSH > 1) gw_mma_zero(acc);
    gw_mma_prologue<V, KIND, GW_MMA_THREADS, 0>(p, gw_mma_smem, cur, tile, nunits, threadIdx.x);
    float *xa_buf = gw_mma_smem + UNITS_STAGES * GW_MMA_STAGE_FLOATS;
    int *xe_buf = (int *)(xa_buf + 2 * GW_MMA_X_FLOATS); /* 3xFP16: the x rows' exponents */
    for (int k = 0; k < nunits; ++k) {
        cp_async_wait<UNITS_STAGES - 2>();
        const float *st = gw_mma_smem + k % UNITS_STAGES * GW_MMA_STAGE_FLOATS;
        /* x buffer k % 2 (and its exponents) was last read for unit k - 2, before the
         * previous barrier */
        float *xa = xa_buf + k % 2 * GW_MMA_X_FLOATS;
        int *xe = xe_buf + k % 2 * UNITS_CI;
        gw_mma_arrange_kind<KIND>(st, xa, xe, threadIdx.x);
        /* unit k is visible to all; every warp is done with unit k - 1, whose stage the
         * copies of unit k + STAGES - 1 reuse */
        __syncthreads();
        if (k + UNITS_STAGES - 1 < nunits) {
            gw_mma_stage<V, KIND, GW_MMA_THREADS>(
                p, gw_mma_smem + (k + UNITS_STAGES - 1) % UNITS_STAGES * GW_MMA_STAGE_FLOATS, cur, tile, threadIdx.x);
            units_advance<0>(p, cur);
        }
        cp_async_commit();
        gw_mma_unit_kind<DW, KIND, FLUSH>(xa, xe, st, warp, lane, acc, outer,
                                          k % FLUSH == FLUSH - 1 || k == nunits - 1);
    }
    cp_async_wait<0>();
    gw_mma_store(p, tile, outer, warp % 2, warp / 2, lane / 4, lane % 4);
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
 * (gw_mma_ws_regs): the 168 per thread of the launch (384 threads) become 2 x mma + copy <=
 * 504.  sm_90a only (setmaxnreg, mbarrier.try_wait); the plan declines elsewhere. */
#define GW_MMA_WS_THREADS (GW_MMA_THREADS + 128)
/* Registers per thread after setmaxnreg, mma warps and producers: 3xFP16's mma warps use
 * up to 222, TF32's up to 188; producers up to 50 (3xFP16) and 47 (TF32). */
template <int KIND, bool MMA> __host__ __device__ constexpr int gw_mma_ws_regs()
{
    return KIND == GW_MMA_3XFP16 ? (MMA ? 224 : 56) : (MMA ? 216 : 72);
}
/* the barrier kernels' shared memory, then full[UNITS_STAGES] and done[UNITS_STAGES] */
#define GW_MMA_WS_SMEM_BYTES(kind) (GW_MMA_SMEM_BYTES(kind) + 2 * UNITS_STAGES * 8)

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
template <int DW, int V, int KIND> __device__ __forceinline__ void grad_weight_ws_body(const units_params &p)
{
    constexpr int S = UNITS_STAGES, FLUSH = GW_MMA_TF32_FLUSH;
    /* units in bands of 4 segments for TF32 (grad_y rows re-read from L2, docs/perf-notes.md);
     * 3xFP16 gained nothing from them */
    constexpr int BAND = KIND == GW_MMA_TF32 ? 4 : 0;
    extern __shared__ __align__(16) float gw_mma_smem[];
    uint64_t *full = (uint64_t *)(gw_mma_smem + GW_MMA_SMEM_BYTES(KIND) / sizeof(float)), *done = full + S;
    const units_tile tile = units_tile_of<UNITS_CO>(p);
    units_cursor cur;
    const int nunits = units_slice<BAND>(p, cur);
    float *xa_buf = gw_mma_smem + S * GW_MMA_STAGE_FLOATS;
    int *xe_buf = (int *)(xa_buf + 2 * GW_MMA_X_FLOATS); /* 3xFP16: the x rows' exponents */
    if (threadIdx.x < S) {
        mbar_init(full + threadIdx.x, GW_MMA_WS_THREADS - GW_MMA_THREADS);
        mbar_init(done + threadIdx.x, GW_MMA_THREADS);
    }
    __syncthreads();

    if (threadIdx.x >= GW_MMA_THREADS) { /* the producers */
        setmaxnreg_dec<gw_mma_ws_regs<KIND, false>()>();
        constexpr int NT = GW_MMA_WS_THREADS - GW_MMA_THREADS;
        const unsigned P = threadIdx.x - GW_MMA_THREADS;
        gw_mma_prologue<V, KIND, NT, BAND>(p, gw_mma_smem, cur, tile, nunits, P);
        for (int k = 0; k < nunits; ++k) {
            cp_async_wait<S - 2>();
            const float *st = gw_mma_smem + k % S * GW_MMA_STAGE_FLOATS;
            if (k >= 2) mbar_wait(done + (k - 2) % S, (k - 2) / S % 2);
            float *xa = xa_buf + k % 2 * GW_MMA_X_FLOATS;
#pragma unroll 1 /* one thread's x at a time: unrolled, the producers spilled */
            for (int r = 0; r < GW_MMA_THREADS / NT; ++r)
                gw_mma_arrange_kind<KIND>(st, xa, xe_buf + k % 2 * UNITS_CI, P + r * NT);
            mbar_arrive(full + k % S);
            if (k + S - 1 < nunits) {
                if (k >= 1) mbar_wait(done + (k - 1) % S, (k - 1) / S % 2);
                gw_mma_stage<V, KIND, NT>(p, gw_mma_smem + (k + S - 1) % S * GW_MMA_STAGE_FLOATS, cur, tile, P);
                units_advance<BAND>(p, cur);
            }
            cp_async_commit();
        }
        cp_async_wait<0>();
        return;
    }

    setmaxnreg_inc<gw_mma_ws_regs<KIND, true>()>();
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    gw_mma_sums outer, acc; /* acc: tf32 mode's (3xFP16 keeps a tap row's in gw_mma_unit_fp16) */
    gw_mma_zero(outer);
    gw_mma_zero(acc);
    for (int k = 0; k < nunits; ++k) {
        mbar_wait(full + k % S, k / S % 2);
        const float *st = gw_mma_smem + k % S * GW_MMA_STAGE_FLOATS;
        const float *xa = xa_buf + k % 2 * GW_MMA_X_FLOATS;
        gw_mma_unit_kind<DW, KIND, FLUSH>(xa, xe_buf + k % 2 * UNITS_CI, st, warp, lane, acc, outer,
                                       k % FLUSH == FLUSH - 1 || k == nunits - 1);
        mbar_arrive(done + k % S);
    }
    gw_mma_store(p, tile, outer, warp % 2, warp / 2, lane / 4, lane % 4);
}
#endif

/* KIND: GW_MMA_TF32 or GW_MMA_3XFP16. */
template <int DW, int V, int KIND>
__global__ void __launch_bounds__(GW_MMA_WS_THREADS, 1) grad_weight_mma_ws_kernel(const units_params p)
{
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    grad_weight_ws_body<DW, V, KIND>(p);
#else
    __trap(); /* can_implement keeps it off builds and devices without sm_90a */
#endif
}

/* 3xFP16 spills when compiled for sm_80: its body exists for sm_90 and newer only (the plan
 * declines it on older devices). */
template <int DW, int V, int KIND>
__global__ void __launch_bounds__(GW_MMA_THREADS, 1) grad_weight_mma_kernel(const units_params p)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 900
    if constexpr (KIND != GW_MMA_TF32) return;
#endif
    grad_weight_barrier_body<DW, V, KIND>(p);
}

/* ---- host side ---- */

template <int DW, int KIND, bool WS> static units_kernel gw_mma_kernel_dw(int v)
{
    if constexpr (WS)
        return v == 4 ? grad_weight_mma_ws_kernel<DW, 4, KIND>
                      : v == 2 ? grad_weight_mma_ws_kernel<DW, 2, KIND> : grad_weight_mma_ws_kernel<DW, 1, KIND>;
    else
        return v == 4 ? grad_weight_mma_kernel<DW, 4, KIND>
                      : v == 2 ? grad_weight_mma_kernel<DW, 2, KIND> : grad_weight_mma_kernel<DW, 1, KIND>;
}

/* The kernel for p with tensors x and grad_y (NULL: only the shape is known yet); one copy
 * width for both.  WS: the warp-specialized kernel. */
template <int KIND, bool WS>
static units_kernel gw_mma_kernel(const tconv_problem *p, const void *x, const void *grad_y)
{
    const int vx = units_width_x(p, x), vg = units_width_gy(p, grad_y), v = vx < vg ? vx : vg;
    return p->dilation_w == 1 ? gw_mma_kernel_dw<1, KIND, WS>(v) : gw_mma_kernel_dw<2, KIND, WS>(v);
}

template <bool WS> static constexpr int gw_mma_threads() { return WS ? GW_MMA_WS_THREADS : GW_MMA_THREADS; }
template <int KIND, bool WS> static constexpr int gw_mma_smem_bytes()
{
    return WS ? GW_MMA_WS_SMEM_BYTES(KIND) : GW_MMA_SMEM_BYTES(KIND);
}

/* float32 only, TF32 in tf32 mode, 3xFP16 in fp32 mode (its barrier kernels on 9.0 devices
 * and newer); the warp-specialized kernels where the build and the device have sm_90a. */
template <int KIND, bool WS>
static int gw_mma_can_implement(const tconv_problem *p, const tconv_config *config, const tconv_device_caps *d)
{
    if (config->dtype != TCONV_FLOAT32 || (config->precision == TCONV_PRECISION_TF32) != (KIND == GW_MMA_TF32))
        return 0;
    if ((WS && !d->sm90a) || (KIND == GW_MMA_3XFP16 && d->cc_major < 9)) return 0;
    return units_can_implement(p, gw_mma_smem_bytes<KIND, WS>(), d);
}

/* The plan readies the kernel of every copy width of the problem's dilation_w; a launch
 * picks the one of its tensors' widths. */
template <int KIND, bool WS>
static int gw_mma_plan(const tconv_problem *p, const tconv_config *, const tconv_device_caps *d, void *state,
                    size_t *workspace_bytes)
{
    units_params *q = (units_params *)state;
    static_assert(sizeof(units_params) <= TCONV_VARIANT_STATE_BYTES, "a unit plan fits a variant's state");
    const int dw1 = p->dilation_w == 1;
    const units_kernel kernels[4] = {gw_mma_kernel<KIND, WS>(p, NULL, NULL),
                                   dw1 ? gw_mma_kernel_dw<1, KIND, WS>(4) : gw_mma_kernel_dw<2, KIND, WS>(4),
                                   dw1 ? gw_mma_kernel_dw<1, KIND, WS>(2) : gw_mma_kernel_dw<2, KIND, WS>(2),
                                   dw1 ? gw_mma_kernel_dw<1, KIND, WS>(1) : gw_mma_kernel_dw<2, KIND, WS>(1)};
    if (!units_plan(p, d, kernels, 4, gw_mma_threads<WS>(), gw_mma_smem_bytes<KIND, WS>(), UNITS_CO, q)) return 0;
    *workspace_bytes = units_workspace_bytes(q);
    return 1;
}

template <int KIND, bool WS> static cudaError_t gw_mma_launch(const tconv_args *a, const void *state)
{
    return units_launch(a, (const units_params *)state, gw_mma_kernel<KIND, WS>(a->p, a->x, a->grad_y),
                        gw_mma_threads<WS>(), gw_mma_smem_bytes<KIND, WS>());
}

/* The variant NAME: KIND's kernels, warp-specialized where WS. */
#define GW_MMA_VARIANT(NAME, KIND, WS)                                                                              \
    const tconv_variant tconv_variant_##NAME = {#NAME, TCONV_PASS_GRAD_WEIGHT, gw_mma_can_implement<KIND, WS>,      \
                                                gw_mma_plan<KIND, WS>, gw_mma_launch<KIND, WS>}
GW_MMA_VARIANT(grad_weight_mma_ws_64x32, GW_MMA_TF32, true);
GW_MMA_VARIANT(grad_weight_mma_64x32, GW_MMA_TF32, false);
GW_MMA_VARIANT(grad_weight_mma_3xfp16_ws_64x32, GW_MMA_3XFP16, true);
GW_MMA_VARIANT(grad_weight_mma_3xfp16_64x32, GW_MMA_3XFP16, false);
