/*
 * test_cpu.c - tests of the C library without CUDA: problem checks, status strings, the
 * CPU reference of every pass, and the CUDA stubs.
 *
 *   make c-test                       fresh random data each run, seed printed
 *   TCONV_TEST_SEED=<seed> make c-test  replays a run
 *
 * The reference is checked against numbers worked out by hand, against an independent
 * conv2d (grad_x is the cross-correlation of grad_y with the weight), against the adjoint
 * identities that tie the passes together, and against finite differences.
 */
#include <inttypes.h>
#include <math.h>
#include <omp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "tconv.h"

/* ---- buffers ---- */

static void *alloc_or_die(int64_t count, size_t size)
{
    /* at least one element, so that empty tensors (N == 0) still get a valid pointer */
    void *a = calloc((size_t)(count > 0 ? count : 1), size);
    if (a == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return a;
}

static double *alloc_f64(int64_t count) { return alloc_or_die(count, sizeof(double)); }
static float *alloc_f32(int64_t count) { return alloc_or_die(count, sizeof(float)); }

/* Random float32 data for one problem, and the same values as doubles, so that the float64
 * results are the exact reference of the float32 entry points. */
typedef struct tensors {
    int64_t nx, ny, nw, nb;
    float *xf, *wf, *bf, *gf; /* x, weight, bias, grad_y */
    double *x, *w, *b, *g;
} tensors;

static void widen(const float *a, double *out, int64_t count)
{
    for (int64_t i = 0; i < count; i++)
        out[i] = a[i];
}

static tensors random_tensors(const tconv_problem *p)
{
    tensors t;
    t.nx = tconv_x_elems(p);
    t.ny = tconv_y_elems(p);
    t.nw = tconv_weight_elems(p);
    t.nb = p->c_out;
    t.xf = alloc_f32(t.nx);
    t.wf = alloc_f32(t.nw);
    t.bf = alloc_f32(t.nb);
    t.gf = alloc_f32(t.ny);
    t.x = alloc_f64(t.nx);
    t.w = alloc_f64(t.nw);
    t.b = alloc_f64(t.nb);
    t.g = alloc_f64(t.ny);
    fill_f32(t.xf, t.nx);
    fill_f32(t.wf, t.nw);
    fill_f32(t.bf, t.nb);
    fill_f32(t.gf, t.ny);
    widen(t.xf, t.x, t.nx);
    widen(t.wf, t.w, t.nw);
    widen(t.bf, t.b, t.nb);
    widen(t.gf, t.g, t.ny);
    return t;
}

static void free_tensors(tensors *t)
{
    free(t->xf);
    free(t->wf);
    free(t->bf);
    free(t->gf);
    free(t->x);
    free(t->w);
    free(t->b);
    free(t->g);
}

/* The larger of two errors, a NaN counting as infinitely large. */
static double worse(double worst, double e)
{
    if (isnan(e))
        return INFINITY;
    return e > worst ? e : worst;
}

/* ---- independent oracles ---- */

/* sum a[i] * b[i], and in *scale the sum of |a[i] * b[i]|, the size of its rounding error. */
static double dot(const double *a, const double *b, int64_t count, double *scale)
{
    double s = 0.0, abs_sum = 0.0;
    for (int64_t i = 0; i < count; i++) {
        s += a[i] * b[i];
        abs_sum += fabs(a[i] * b[i]);
    }
    *scale = abs_sum;
    return s;
}

/* torch.nn.functional.conv2d(grad_y, weight, stride, padding, dilation, groups), written from
 * the convolution's own definition, cropped to (H_in, W_in) as PyTorch crops grad_x.
 * The convolution reads grad_y, (N, C, H, W) = (N, C_out, H_out, W_out), with the kernel
 * weight viewed as (O, C/groups, kH, kW) = (C_in, C_out/groups, kH, kW), and writes
 * out, (N, O, H_in, W_in):
 *   out[n, o, i, j] = sum over c, a, b of
 *       in[n, (o / (O/groups))*(C/groups) + c, i*stride - padding + a*dilation, ...]
 *       * kernel[o, c, a, b] */
static void conv2d(const tconv_problem *p, const double *in, const double *kernel, double *out)
{
    const int64_t C = p->c_out, H = p->h_out, W = p->w_out;
    const int64_t O = p->c_in, OH = p->h_in, OW = p->w_in;
    const int64_t c_per_group = C / p->groups, o_per_group = O / p->groups;
    for (int64_t n = 0; n < p->n; n++)
        for (int64_t o = 0; o < O; o++)
            for (int64_t i = 0; i < OH; i++)
                for (int64_t j = 0; j < OW; j++) {
                    double s = 0.0;
                    for (int64_t c = 0; c < c_per_group; c++)
                        for (int64_t a = 0; a < p->kernel_h; a++)
                            for (int64_t b = 0; b < p->kernel_w; b++) {
                                int64_t r = i * p->stride_h - p->padding_h + a * p->dilation_h;
                                int64_t q = j * p->stride_w - p->padding_w + b * p->dilation_w;
                                if (r < 0 || r >= H || q < 0 || q >= W)
                                    continue;
                                int64_t ch = o / o_per_group * c_per_group + c;
                                int64_t k =
                                    ((o * c_per_group + c) * p->kernel_h + a) * p->kernel_w + b;
                                s += in[((n * C + ch) * H + r) * W + q] * kernel[k];
                            }
                    out[((n * O + o) * OH + i) * OW + j] = s;
                }
}

/* grad_bias from its definition: each channel of grad_y summed over batch and plane. */
static void channel_sums(const tconv_problem *p, const double *grad_y, double *sums)
{
    const int64_t plane = p->h_out * p->w_out;
    for (int64_t c = 0; c < p->c_out; c++) {
        sums[c] = 0.0;
        for (int64_t n = 0; n < p->n; n++)
            for (int64_t i = 0; i < plane; i++)
                sums[c] += grad_y[(n * p->c_out + c) * plane + i];
    }
}

/* ---- one problem through every identity ---- */

/* Each element of a float32 result must be its float64 counterpart rounded once. */
static int64_t rounding_mismatches(const float *a, const double *ref, int64_t count)
{
    int64_t bad = 0;
    for (int64_t i = 0; i < count; i++)
        bad += !(a[i] == (float)ref[i]);
    return bad;
}

static void check_identities(const tconv_problem *p, const char *label)
{
    char desc[256];
    problem_string(p, desc);
    tensors t = random_tensors(p);
    double *y = alloc_f64(t.ny), *y0 = alloc_f64(t.ny), *gx = alloc_f64(t.nx);
    double *gx_ref = alloc_f64(t.nx), *gw = alloc_f64(t.nw), *gb = alloc_f64(t.nb);
    double *gb_ref = alloc_f64(t.nb);
    float *yf = alloc_f32(t.ny), *gxf = alloc_f32(t.nx), *gwf = alloc_f32(t.nw);
    float *gbf = alloc_f32(t.nb);
    poison_f64(y, t.ny);
    poison_f64(y0, t.ny);
    poison_f64(gx, t.nx);
    poison_f64(gw, t.nw);
    poison_f64(gb, t.nb);
    poison_f32(yf, t.ny);
    poison_f32(gxf, t.nx);
    poison_f32(gwf, t.nw);
    poison_f32(gbf, t.nb);

    tconv_status st[8] = {
        tconv_forward_cpu_f64(p, t.x, t.w, t.b, y),
        tconv_forward_cpu_f64(p, t.x, t.w, NULL, y0),
        tconv_grad_input_cpu_f64(p, t.g, t.w, gx),
        tconv_grad_weight_cpu_f64(p, t.x, t.g, gw),
        tconv_grad_bias_cpu_f64(p, t.g, gb),
        tconv_forward_cpu_f32(p, t.xf, t.wf, t.bf, yf),
        tconv_grad_input_cpu_f32(p, t.gf, t.wf, gxf),
        tconv_grad_weight_cpu_f32(p, t.xf, t.gf, gwf),
    };
    for (int i = 0; i < 8; i++)
        CHECK(st[i] == TCONV_SUCCESS, "%s: call %d returned %s [%s]", label, i,
              tconv_status_string(st[i]), desc);
    CHECK(tconv_grad_bias_cpu_f32(p, t.gf, gbf) == TCONV_SUCCESS, "%s: grad_bias f32 [%s]",
          label, desc);

    /* the bias is added once to every output element */
    double bias_err = 0.0;
    for (int64_t i = 0; i < t.ny; i++) {
        int64_t c = i / (p->h_out * p->w_out) % p->c_out;
        double e = fabs(y[i] - y0[i] - t.b[c]) / (1.0 + fabs(y0[i]));
        bias_err = worse(bias_err, e);
    }
    CHECK(bias_err <= 1e-14, "%s: bias off by %g [%s]", label, bias_err, desc);

    /* grad_x is the plain convolution of grad_y with the weight */
    conv2d(p, t.g, t.w, gx_ref);
    double gx_scale = max_abs_f64(gx_ref, t.nx);
    double gx_err = max_abs_diff_f64(gx, gx_ref, t.nx);
    CHECK(gx_err <= 1e-13 * (1.0 + gx_scale), "%s: grad_x vs conv2d off by %g [%s]", label,
          gx_err, desc);

    /* adjoints: <T(x), g> = <x, T^T(g)>, and <T_W(x), g> = <W, grad_weight(x, g)> */
    double s_yg, s_xgx, s_wgw;
    double yg = dot(y0, t.g, t.ny, &s_yg);
    double xgx = dot(t.x, gx, t.nx, &s_xgx);
    double wgw = dot(t.w, gw, t.nw, &s_wgw);
    double scale = 1e-300 + fmax(s_yg, fmax(s_xgx, s_wgw));
    CHECK(fabs(yg - xgx) <= 1e-12 * scale, "%s: <T x, g> = %.17g but <x, T' g> = %.17g [%s]",
          label, yg, xgx, desc);
    CHECK(fabs(yg - wgw) <= 1e-12 * scale, "%s: <T x, g> = %.17g but <W, grad_W> = %.17g [%s]",
          label, yg, wgw, desc);

    channel_sums(p, t.g, gb_ref);
    double gb_err = max_abs_diff_f64(gb, gb_ref, t.nb);
    CHECK(gb_err <= 1e-13 * (1.0 + max_abs_f64(gb_ref, t.nb)), "%s: grad_bias off by %g [%s]",
          label, gb_err, desc);

    /* float32 entry points: the float64 result rounded once (accumulation is in double) */
    int64_t bad = rounding_mismatches(yf, y, t.ny) + rounding_mismatches(gxf, gx, t.nx) +
                  rounding_mismatches(gwf, gw, t.nw) + rounding_mismatches(gbf, gb, t.nb);
    CHECK(bad == 0, "%s: %" PRId64 " float32 elements are not the rounded float64 ones [%s]",
          label, bad, desc);
    double f32_err = max_abs_diff_f32(yf, y, t.ny);
    CHECK(f32_err <= 1e-6 * (1.0 + max_abs_f64(y, t.ny)), "%s: float32 forward off by %g [%s]",
          label, f32_err, desc);

    free_tensors(&t);
    free(y);
    free(y0);
    free(gx);
    free(gx_ref);
    free(gw);
    free(gb);
    free(gb_ref);
    free(yf);
    free(gxf);
    free(gwf);
    free(gbf);
}

/* grad_weight against central differences of L(W) = <forward(x, W), g> in double. */
static void check_finite_differences(const tconv_problem *p, const char *label)
{
    char desc[256];
    problem_string(p, desc);
    tensors t = random_tensors(p);
    double *y = alloc_f64(t.ny), *gw = alloc_f64(t.nw), *w = alloc_f64(t.nw);
    const double h = 1e-3;
    poison_f64(gw, t.nw);
    CHECK(tconv_grad_weight_cpu_f64(p, t.x, t.g, gw) == TCONV_SUCCESS, "%s [%s]", label, desc);
    memcpy(w, t.w, (size_t)t.nw * sizeof(double));
    double worst = 0.0;
    for (int64_t e = 0; e < t.nw; e++) {
        double scale, l_plus, l_minus;
        w[e] = t.w[e] + h;
        tconv_forward_cpu_f64(p, t.x, w, NULL, y);
        l_plus = dot(y, t.g, t.ny, &scale);
        w[e] = t.w[e] - h;
        tconv_forward_cpu_f64(p, t.x, w, NULL, y);
        l_minus = dot(y, t.g, t.ny, &scale);
        w[e] = t.w[e];
        /* L is linear in W, so only rounding (relative to the terms' size) separates them */
        double err = fabs((l_plus - l_minus) / (2 * h) - gw[e]) / (1.0 + scale);
        worst = worse(worst, err);
    }
    CHECK(worst <= 1e-10, "%s: grad_weight vs finite differences off by %g [%s]", label, worst,
          desc);
    free_tensors(&t);
    free(y);
    free(gw);
    free(w);
}

/* ---- numbers worked out by hand ---- */

static tconv_problem make_problem(int64_t n, int64_t c_in, int64_t c_out, int64_t h_in,
                                  int64_t w_in, int64_t kernel_h, int64_t kernel_w)
{
    tconv_problem p = {0};
    p.n = n;
    p.c_in = c_in;
    p.c_out = c_out;
    p.h_in = h_in;
    p.w_in = w_in;
    p.kernel_h = kernel_h;
    p.kernel_w = kernel_w;
    p.stride_h = p.stride_w = 1;
    p.dilation_h = p.dilation_w = 1;
    p.groups = 1;
    return p;
}

/* Runs forward in float64 and float32 and compares with the exact expected values. */
static void check_forward_by_hand(const char *label, tconv_problem p, const double *x,
                                  const double *w, const double *b, const double *expected,
                                  int64_t h_out, int64_t w_out)
{
    CHECK(tconv_problem_check(&p) == TCONV_SUCCESS, "%s: problem rejected", label);
    CHECK(p.h_out == h_out && p.w_out == w_out,
          "%s: output %" PRId64 "x%" PRId64 ", expected %" PRId64 "x%" PRId64, label, p.h_out,
          p.w_out, h_out, w_out);
    int64_t nx = tconv_x_elems(&p), ny = tconv_y_elems(&p), nw = tconv_weight_elems(&p);
    double *y = alloc_f64(ny);
    float *xf = alloc_f32(nx), *wf = alloc_f32(nw), *bf = alloc_f32(p.c_out), *yf = alloc_f32(ny);
    for (int64_t i = 0; i < nx; i++)
        xf[i] = (float)x[i];
    for (int64_t i = 0; i < nw; i++)
        wf[i] = (float)w[i];
    for (int64_t i = 0; i < p.c_out; i++)
        bf[i] = (float)b[i];
    poison_f64(y, ny);
    poison_f32(yf, ny);
    CHECK(tconv_forward_cpu_f64(&p, x, w, b, y) == TCONV_SUCCESS, "%s: forward f64", label);
    CHECK(tconv_forward_cpu_f32(&p, xf, wf, bf, yf) == TCONV_SUCCESS, "%s: forward f32", label);
    CHECK(max_abs_diff_f64(y, expected, ny) == 0.0, "%s: float64 forward off by %g", label,
          max_abs_diff_f64(y, expected, ny));
    CHECK(max_abs_diff_f32(yf, expected, ny) == 0.0, "%s: float32 forward off by %g", label,
          max_abs_diff_f32(yf, expected, ny));
    free(y);
    free(xf);
    free(wf);
    free(bf);
    free(yf);
}

static void test_by_hand(void)
{
    /* 1x1x2x2 input, 2x2 kernel, stride 2: every input pixel stamps a scaled copy of the
     * kernel into its own 2x2 block; the bias 0.5 lands everywhere. */
    const double x[4] = {1, 2, 3, 4}, w[4] = {1, 2, 3, 4}, half[1] = {0.5};
    tconv_problem p = make_problem(1, 1, 1, 2, 2, 2, 2);
    p.stride_h = p.stride_w = 2;
    const double stamped[16] = {1.5, 2.5, 2.5, 4.5,   3.5, 4.5, 6.5, 8.5,
                                3.5, 6.5, 4.5, 8.5,   9.5, 12.5, 12.5, 16.5};
    check_forward_by_hand("stride 2", p, x, w, half, stamped, 4, 4);

    /* stride 1: the stamps overlap and add up */
    const double zero[1] = {0};
    const double overlapping[9] = {1, 4, 4, 6, 20, 16, 9, 24, 16};
    check_forward_by_hand("stride 1", make_problem(1, 1, 1, 2, 2, 2, 2), x, w, zero,
                          overlapping, 3, 3);

    /* stride 2 with padding (1, 0) and output_padding (1, 1): rows 1..3 of the stride-2
     * result; columns 0..3 plus one extra column that only the bias reaches */
    p.padding_h = 1;
    p.output_padding_h = p.output_padding_w = 1;
    const double padded[15] = {3.5, 4.5, 6.5, 8.5, 0.5,   3.5, 6.5, 4.5, 8.5, 0.5,
                               9.5, 12.5, 12.5, 16.5, 0.5};
    check_forward_by_hand("padding and output_padding", p, x, w, half, padded, 3, 5);

    /* groups = 2, C_in = 2, C_out = 4, a 1x1 input, a 2x1 kernel with dilation 2: channel
     * pair g reads only input channel g; the middle row is bias only */
    tconv_problem pg = make_problem(1, 2, 4, 1, 1, 2, 1);
    pg.groups = 2;
    pg.dilation_h = 2;
    const double xg[2] = {2, 3};
    const double wg[8] = {1, 5, 2, 6, 3, 7, 4, 8}; /* weight[ci][co][kh] */
    const double bg[4] = {1, 2, 3, 4};
    const double grouped[12] = {3, 1, 11, 6, 2, 14, 12, 3, 24, 16, 4, 28};
    check_forward_by_hand("groups and dilation", pg, xg, wg, bg, grouped, 3, 1);

    /* The gradients of the stride-2 case for grad_y = 1..16 row by row */
    tconv_problem pb = make_problem(1, 1, 1, 2, 2, 2, 2);
    pb.stride_h = pb.stride_w = 2;
    CHECK(tconv_problem_check(&pb) == TCONV_SUCCESS, "gradients by hand: problem");
    double gy[16], gx[4], gw[4], gb[1];
    float gyf[16], gxf[4], gwf[4], gbf[1], xf[4], wf[4];
    for (int i = 0; i < 16; i++)
        gyf[i] = (float)(gy[i] = i + 1);
    for (int i = 0; i < 4; i++) {
        xf[i] = (float)x[i];
        wf[i] = (float)w[i];
    }
    const double gx_hand[4] = {44, 64, 124, 144}, gw_hand[4] = {78, 88, 118, 128};
    const double gb_hand[1] = {136};
    poison_f64(gx, 4);
    poison_f64(gw, 4);
    poison_f64(gb, 1);
    poison_f32(gxf, 4);
    poison_f32(gwf, 4);
    poison_f32(gbf, 1);
    CHECK(tconv_grad_input_cpu_f64(&pb, gy, w, gx) == TCONV_SUCCESS, "grad_input by hand");
    CHECK(tconv_grad_weight_cpu_f64(&pb, x, gy, gw) == TCONV_SUCCESS, "grad_weight by hand");
    CHECK(tconv_grad_bias_cpu_f64(&pb, gy, gb) == TCONV_SUCCESS, "grad_bias by hand");
    CHECK(tconv_grad_input_cpu_f32(&pb, gyf, wf, gxf) == TCONV_SUCCESS, "grad_input f32 by hand");
    CHECK(tconv_grad_weight_cpu_f32(&pb, xf, gyf, gwf) == TCONV_SUCCESS, "grad_weight f32 by hand");
    CHECK(tconv_grad_bias_cpu_f32(&pb, gyf, gbf) == TCONV_SUCCESS, "grad_bias f32 by hand");
    CHECK(max_abs_diff_f64(gx, gx_hand, 4) == 0.0, "grad_x by hand off by %g",
          max_abs_diff_f64(gx, gx_hand, 4));
    CHECK(max_abs_diff_f64(gw, gw_hand, 4) == 0.0, "grad_weight by hand off by %g",
          max_abs_diff_f64(gw, gw_hand, 4));
    CHECK(max_abs_diff_f64(gb, gb_hand, 1) == 0.0, "grad_bias by hand off by %g",
          max_abs_diff_f64(gb, gb_hand, 1));
    CHECK(max_abs_diff_f32(gxf, gx_hand, 4) == 0.0, "grad_x f32 by hand");
    CHECK(max_abs_diff_f32(gwf, gw_hand, 4) == 0.0, "grad_weight f32 by hand");
    CHECK(max_abs_diff_f32(gbf, gb_hand, 1) == 0.0, "grad_bias f32 by hand");
}

/* ---- awkward problems and random ones ---- */

typedef struct awkward {
    const char *label;
    /* n, c_in, c_out, h_in, w_in, kH, kW, stride h/w, padding h/w, output_padding h/w,
     * dilation h/w, groups */
    int64_t v[16];
} awkward;

static const awkward awkward_problems[] = {
    {"1x1 input", {2, 3, 2, 1, 1, 3, 3, 1, 1, 0, 0, 0, 0, 1, 1, 1}},
    {"1x1 input and kernel", {1, 2, 3, 1, 1, 1, 1, 2, 2, 0, 0, 1, 1, 1, 1, 1}},
    {"stride > kernel", {2, 2, 3, 4, 5, 2, 2, 3, 3, 0, 0, 0, 0, 1, 1, 1}},
    {"output_padding = stride - 1", {1, 2, 2, 3, 4, 3, 3, 3, 3, 1, 1, 2, 2, 1, 1, 1}},
    {"output_padding < dilation, stride 1", {2, 2, 2, 4, 3, 3, 2, 1, 1, 1, 0, 2, 1, 3, 2, 1}},
    {"depthwise", {2, 4, 4, 5, 6, 3, 3, 2, 1, 1, 1, 1, 0, 1, 1, 4}},
    {"depthwise multiplier 2", {1, 3, 6, 4, 4, 3, 2, 1, 2, 1, 0, 0, 1, 2, 1, 3}},
    {"dilation 3", {1, 2, 2, 4, 4, 3, 3, 1, 1, 2, 2, 0, 0, 3, 3, 1}},
    {"every argument asymmetric", {2, 4, 6, 3, 5, 2, 3, 2, 3, 1, 2, 1, 0, 2, 1, 2}},
    {"padding crops to 1x1", {1, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 1, 1, 1}},
    {"kernel larger than input", {1, 1, 2, 2, 3, 5, 4, 2, 1, 0, 1, 1, 0, 1, 2, 1}},
};

static tconv_problem awkward_problem(const awkward *a)
{
    tconv_problem p = make_problem(a->v[0], a->v[1], a->v[2], a->v[3], a->v[4], a->v[5], a->v[6]);
    p.stride_h = a->v[7];
    p.stride_w = a->v[8];
    p.padding_h = a->v[9];
    p.padding_w = a->v[10];
    p.output_padding_h = a->v[11];
    p.output_padding_w = a->v[12];
    p.dilation_h = a->v[13];
    p.dilation_w = a->v[14];
    p.groups = a->v[15];
    return p;
}

static void test_awkward(void)
{
    for (size_t i = 0; i < sizeof awkward_problems / sizeof awkward_problems[0]; i++) {
        tconv_problem p = awkward_problem(&awkward_problems[i]);
        tconv_status st = tconv_problem_check(&p);
        CHECK(st == TCONV_SUCCESS, "%s: %s", awkward_problems[i].label, tconv_status_string(st));
        if (st != TCONV_SUCCESS)
            continue;
        check_identities(&p, awkward_problems[i].label);
        check_finite_differences(&p, awkward_problems[i].label);
    }
}

static void test_random(int count)
{
    char label[64];
    for (int i = 0; i < count; i++) {
        tconv_problem p;
        random_problem(&p, 8);
        snprintf(label, sizeof label, "random problem %d", i);
        check_identities(&p, label);
        if (i % 10 == 0) {
            /* a smaller one: finite differences run two forward passes per weight */
            random_problem(&p, 4);
            check_finite_differences(&p, label);
        }
    }
}

/* N == 0: the calls succeed, grad_weight and grad_bias are zeros, empty tensors may be NULL. */
static void test_empty_batch(void)
{
    tconv_problem p = make_problem(0, 4, 6, 3, 5, 3, 2);
    p.groups = 2;
    p.stride_h = 2;
    CHECK(tconv_problem_check(&p) == TCONV_SUCCESS, "N = 0 must be valid");
    tensors t = random_tensors(&p);
    double *y = alloc_f64(1), *gx = alloc_f64(1), *gw = alloc_f64(t.nw), *gb = alloc_f64(t.nb);
    float *gwf = alloc_f32(t.nw), *gbf = alloc_f32(t.nb);
    poison_f64(gw, t.nw);
    poison_f64(gb, t.nb);
    poison_f32(gwf, t.nw);
    poison_f32(gbf, t.nb);
    CHECK(tconv_forward_cpu_f64(&p, t.x, t.w, t.b, y) == TCONV_SUCCESS, "N = 0 forward");
    CHECK(tconv_grad_input_cpu_f64(&p, t.g, t.w, gx) == TCONV_SUCCESS, "N = 0 grad_input");
    CHECK(tconv_grad_weight_cpu_f64(&p, t.x, t.g, gw) == TCONV_SUCCESS, "N = 0 grad_weight");
    CHECK(tconv_grad_bias_cpu_f64(&p, t.g, gb) == TCONV_SUCCESS, "N = 0 grad_bias");
    CHECK(tconv_grad_weight_cpu_f32(&p, t.xf, t.gf, gwf) == TCONV_SUCCESS, "N = 0 grad_weight");
    CHECK(tconv_grad_bias_cpu_f32(&p, t.gf, gbf) == TCONV_SUCCESS, "N = 0 grad_bias");
    double *zeros = alloc_f64(t.nw); /* calloc: zeros, and nw >= C_out here */
    CHECK(max_abs_diff_f64(gw, zeros, t.nw) == 0.0, "N = 0: grad_weight not zero");
    CHECK(max_abs_diff_f64(gb, zeros, t.nb) == 0.0, "N = 0: grad_bias not zero");
    CHECK(max_abs_diff_f32(gwf, zeros, t.nw) == 0.0, "N = 0: grad_weight f32 not zero");
    CHECK(max_abs_diff_f32(gbf, zeros, t.nb) == 0.0, "N = 0: grad_bias f32 not zero");

    /* the empty tensors may be NULL (as PyTorch's are, and as on CUDA); the others may not */
    poison_f64(gw, t.nw);
    CHECK(tconv_forward_cpu_f64(&p, NULL, t.w, t.b, NULL) == TCONV_SUCCESS, "N = 0 forward, NULL x and y");
    CHECK(tconv_grad_input_cpu_f64(&p, NULL, t.w, NULL) == TCONV_SUCCESS, "N = 0 grad_input, NULL grad_y, grad_x");
    CHECK(tconv_grad_weight_cpu_f64(&p, NULL, NULL, gw) == TCONV_SUCCESS, "N = 0 grad_weight, NULL x, grad_y");
    CHECK(tconv_grad_bias_cpu_f64(&p, NULL, gb) == TCONV_SUCCESS, "N = 0 grad_bias, NULL grad_y");
    CHECK(max_abs_diff_f64(gw, zeros, t.nw) == 0.0, "N = 0, NULL inputs: grad_weight not zero");
    CHECK(tconv_forward_cpu_f64(&p, NULL, NULL, NULL, NULL) == TCONV_INVALID_POINTER, "N = 0 forward, NULL weight");
    CHECK(tconv_grad_weight_cpu_f64(&p, NULL, NULL, NULL) == TCONV_INVALID_POINTER, "N = 0, NULL grad_weight");
    CHECK(tconv_grad_bias_cpu_f64(&p, NULL, NULL) == TCONV_INVALID_POINTER, "N = 0, NULL grad_bias");
    free_tensors(&t);
    free(zeros);
    free(y);
    free(gx);
    free(gw);
    free(gb);
    free(gwf);
    free(gbf);
}

/* The four passes in float32 on `threads` threads; seconds[i] is the time of pass i. */
static void run_passes(const tconv_problem *p, const tensors *t, int threads, float *out[4],
                       double seconds[4])
{
    omp_set_num_threads(threads);
    tconv_status st[4];
    double t0 = omp_get_wtime();
    st[0] = tconv_forward_cpu_f32(p, t->xf, t->wf, t->bf, out[0]);
    double t1 = omp_get_wtime();
    st[1] = tconv_grad_input_cpu_f32(p, t->gf, t->wf, out[1]);
    double t2 = omp_get_wtime();
    st[2] = tconv_grad_weight_cpu_f32(p, t->xf, t->gf, out[2]);
    double t3 = omp_get_wtime();
    st[3] = tconv_grad_bias_cpu_f32(p, t->gf, out[3]);
    double t4 = omp_get_wtime();
    const double marks[5] = {t0, t1, t2, t3, t4};
    for (int i = 0; i < 4; i++) {
        CHECK(st[i] == TCONV_SUCCESS, "pass %d on %d threads: %s", i, threads,
              tconv_status_string(st[i]));
        seconds[i] = marks[i + 1] - marks[i];
    }
}

/* The result must not depend on the number of threads, and a (2, 16, 64, 64) 3x3 problem
 * must stay fast (the times are printed, not asserted). */
static void test_threads_and_speed(void)
{
    tconv_problem p = make_problem(2, 16, 16, 64, 64, 3, 3);
    CHECK(tconv_problem_check(&p) == TCONV_SUCCESS, "speed problem");
    tensors t = random_tensors(&p);
    const int64_t count[4] = {t.ny, t.nx, t.nw, t.nb};
    const char *names[4] = {"forward", "grad_input", "grad_weight", "grad_bias"};
    float *one[4], *many[4];
    for (int i = 0; i < 4; i++) {
        one[i] = alloc_f32(count[i]);
        many[i] = alloc_f32(count[i]);
    }
    /* at least two threads, so that the work is split even on one core */
    const int threads = omp_get_max_threads() > 1 ? omp_get_max_threads() : 2;
    double seconds_one[4], seconds[4];
    run_passes(&p, &t, 1, one, seconds_one);
    run_passes(&p, &t, threads, many, seconds);
    for (int i = 0; i < 4; i++)
        CHECK(memcmp(one[i], many[i], (size_t)count[i] * sizeof(float)) == 0,
              "%s differs between 1 and %d threads", names[i], threads);
    printf("(2, 16, 64, 64) k3 on %d threads: forward %.3f s, grad_input %.3f s, "
           "grad_weight %.3f s, grad_bias %.3f s\n",
           threads, seconds[0], seconds[1], seconds[2], seconds[3]);
    free_tensors(&t);
    for (int i = 0; i < 4; i++) {
        free(one[i]);
        free(many[i]);
    }
}

/* ---- invalid problems, status strings, version, CUDA stubs ---- */

typedef struct invalid_case {
    const char *label;
    tconv_status expected;
    size_t field; /* offsetof the int64_t field of tconv_problem that is set to value */
    int64_t value;
} invalid_case;

#define F_N offsetof(tconv_problem, n)
#define F_C_IN offsetof(tconv_problem, c_in)
#define F_C_OUT offsetof(tconv_problem, c_out)
#define F_H_IN offsetof(tconv_problem, h_in)
#define F_W_IN offsetof(tconv_problem, w_in)
#define F_KH offsetof(tconv_problem, kernel_h)
#define F_KW offsetof(tconv_problem, kernel_w)
#define F_SH offsetof(tconv_problem, stride_h)
#define F_SW offsetof(tconv_problem, stride_w)
#define F_PH offsetof(tconv_problem, padding_h)
#define F_PW offsetof(tconv_problem, padding_w)
#define F_OPH offsetof(tconv_problem, output_padding_h)
#define F_OPW offsetof(tconv_problem, output_padding_w)
#define F_DH offsetof(tconv_problem, dilation_h)
#define F_DW offsetof(tconv_problem, dilation_w)
#define F_GROUPS offsetof(tconv_problem, groups)

static const invalid_case invalid_cases[] = {
    {"N < 0", TCONV_INVALID_BATCH_SIZE, F_N, -1},
    {"C_in = 0", TCONV_INVALID_CHANNELS, F_C_IN, 0},
    {"C_out = 0", TCONV_INVALID_CHANNELS, F_C_OUT, 0},
    {"groups = 0", TCONV_INVALID_GROUPS, F_GROUPS, 0},
    {"groups does not divide C_in", TCONV_INVALID_GROUPS, F_C_IN, 5},
    {"groups does not divide C_out", TCONV_INVALID_GROUPS, F_C_OUT, 3},
    {"H_in = 0", TCONV_INVALID_INPUT_SIZE, F_H_IN, 0},
    {"W_in < 0", TCONV_INVALID_INPUT_SIZE, F_W_IN, -3},
    {"kH = 0", TCONV_INVALID_KERNEL_SIZE, F_KH, 0},
    {"kW = 0", TCONV_INVALID_KERNEL_SIZE, F_KW, 0},
    {"stride_h = 0", TCONV_INVALID_STRIDE, F_SH, 0},
    {"stride_w = -1", TCONV_INVALID_STRIDE, F_SW, -1},
    {"padding_h < 0", TCONV_INVALID_PADDING, F_PH, -1},
    {"padding_w < 0", TCONV_INVALID_PADDING, F_PW, -2},
    {"output_padding_h < 0", TCONV_INVALID_OUTPUT_PADDING, F_OPH, -1},
    {"output_padding_h = max(stride, dilation)", TCONV_INVALID_OUTPUT_PADDING, F_OPH, 2},
    {"output_padding_w = max(stride, dilation)", TCONV_INVALID_OUTPUT_PADDING, F_OPW, 3},
    {"dilation_h = 0", TCONV_INVALID_DILATION, F_DH, 0},
    {"dilation_w < 0", TCONV_INVALID_DILATION, F_DW, -1},
    {"padding eats the output", TCONV_INVALID_OUTPUT_SIZE, F_PH, 4},
    {"H_in over 2^31 - 1", TCONV_UNSUPPORTED_SIZE, F_H_IN, (int64_t)1 << 31},
    {"W_in = INT64_MAX", TCONV_UNSUPPORTED_SIZE, F_W_IN, INT64_MAX},
    {"stride = INT64_MAX", TCONV_UNSUPPORTED_SIZE, F_SH, INT64_MAX},
    {"padding = INT64_MAX", TCONV_UNSUPPORTED_SIZE, F_PW, INT64_MAX},
    {"dilation = INT64_MAX", TCONV_UNSUPPORTED_SIZE, F_DW, INT64_MAX},
    {"kernel = INT64_MAX", TCONV_UNSUPPORTED_SIZE, F_KH, INT64_MAX},
    {"N = INT64_MAX", TCONV_UNSUPPORTED_SIZE, F_N, INT64_MAX},
    {"H_out over 2^31 - 1", TCONV_UNSUPPORTED_SIZE, F_H_IN, (int64_t)1 << 30},
    /* with N = 2^31 - 1 (below): each tensor on its own, the other two stay small */
    {"x over 2^62 elements", TCONV_UNSUPPORTED_SIZE, F_C_IN, ((int64_t)1 << 31) - 2},
    {"y over 2^62 elements", TCONV_UNSUPPORTED_SIZE, F_C_OUT, ((int64_t)1 << 31) - 2},
};

/* A valid base problem: C_in 4, C_out 4, groups 2, 3x3 input, 2x3 kernel, stride (2, 1),
 * dilation (1, 3), so output_padding may go up to (1, 2). */
static tconv_problem base_problem(void)
{
    tconv_problem p = make_problem(2, 4, 4, 3, 3, 2, 3);
    p.groups = 2;
    p.stride_h = 2;
    p.dilation_w = 3;
    p.padding_h = 1;
    return p;
}

static void test_invalid(void)
{
    tconv_problem base = base_problem();
    CHECK(tconv_problem_check(&base) == TCONV_SUCCESS, "base problem is valid");
    for (size_t i = 0; i < sizeof invalid_cases / sizeof invalid_cases[0]; i++) {
        const invalid_case *c = &invalid_cases[i];
        tconv_problem p = base_problem();
        *(int64_t *)((char *)&p + c->field) = c->value;
        if (c->value == ((int64_t)1 << 31) - 2)
            p.n = ((int64_t)1 << 31) - 1; /* each side fits 32 bits, the product not 2^62 */
        if (c->field == F_H_IN && c->value == (int64_t)1 << 30)
            p.stride_h = 3;
        tconv_problem copy = p;
        copy.h_out = copy.w_out = -7;
        float dummy[1] = {0};
        tconv_status st = tconv_problem_check(&p);
        CHECK(st == c->expected, "%s: got \"%s\", expected \"%s\"", c->label,
              tconv_status_string(st), tconv_status_string(c->expected));
        if (st == TCONV_SUCCESS)
            continue; /* already failed; the one-element buffers below would overflow */
        /* every entry point reports the same status and leaves the caller's problem alone */
        tconv_status each[4] = {
            tconv_forward_cpu_f32(&copy, dummy, dummy, NULL, dummy),
            tconv_grad_input_cpu_f32(&copy, dummy, dummy, dummy),
            tconv_grad_weight_cpu_f32(&copy, dummy, dummy, dummy),
            tconv_grad_bias_cpu_f32(&copy, dummy, dummy),
        };
        for (int k = 0; k < 4; k++)
            CHECK(each[k] == c->expected, "%s: pass %d returned \"%s\"", c->label, k,
                  tconv_status_string(each[k]));
        CHECK(copy.h_out == -7 && copy.w_out == -7, "%s: a const problem was written", c->label);
    }
    /* at the edge: output_padding just below max(stride, dilation) on each axis is valid */
    tconv_problem edge = base_problem();
    edge.output_padding_h = 1;
    edge.output_padding_w = 2;
    CHECK(tconv_problem_check(&edge) == TCONV_SUCCESS, "output_padding (1, 2) must be valid");
    /* the largest weight that fits: (2^31 - 1)^2 < 2^62 elements */
    tconv_problem big = make_problem(1, ((int64_t)1 << 31) - 1, ((int64_t)1 << 31) - 1, 1, 1, 1, 1);
    CHECK(tconv_problem_check(&big) == TCONV_SUCCESS, "a (2^31 - 1)^2 weight fits");
    big.kernel_h = 2;
    CHECK(tconv_problem_check(&big) == TCONV_UNSUPPORTED_SIZE, "a 2^63 weight does not fit");
}

static void test_null_pointers(void)
{
    tconv_problem p = base_problem();
    CHECK(tconv_problem_check(NULL) == TCONV_INVALID_POINTER, "tconv_problem_check(NULL)");
    CHECK(tconv_problem_check(&p) == TCONV_SUCCESS, "base problem");
    tensors t = random_tensors(&p);
    float *out = alloc_f32(t.ny + t.nx + t.nw);
    double *outd = alloc_f64(t.ny + t.nx + t.nw);
    const tconv_status want = TCONV_INVALID_POINTER;
    tconv_status st[] = {
        tconv_forward_cpu_f32(NULL, t.xf, t.wf, t.bf, out),
        tconv_forward_cpu_f32(&p, NULL, t.wf, t.bf, out),
        tconv_forward_cpu_f32(&p, t.xf, NULL, t.bf, out),
        tconv_forward_cpu_f32(&p, t.xf, t.wf, t.bf, NULL),
        tconv_forward_cpu_f64(&p, t.x, t.w, t.b, NULL),
        tconv_grad_input_cpu_f32(NULL, t.gf, t.wf, out),
        tconv_grad_input_cpu_f32(&p, NULL, t.wf, out),
        tconv_grad_input_cpu_f32(&p, t.gf, NULL, out),
        tconv_grad_input_cpu_f64(&p, t.g, t.w, NULL),
        tconv_grad_weight_cpu_f32(NULL, t.xf, t.gf, out),
        tconv_grad_weight_cpu_f32(&p, NULL, t.gf, out),
        tconv_grad_weight_cpu_f32(&p, t.xf, NULL, out),
        tconv_grad_weight_cpu_f64(&p, t.x, t.g, NULL),
        tconv_grad_bias_cpu_f32(NULL, t.gf, out),
        tconv_grad_bias_cpu_f32(&p, NULL, out),
        tconv_grad_bias_cpu_f64(&p, t.g, NULL),
    };
    for (size_t i = 0; i < sizeof st / sizeof st[0]; i++)
        CHECK(st[i] == want, "NULL pointer case %zu returned \"%s\"", i,
              tconv_status_string(st[i]));
    /* bias is optional */
    CHECK(tconv_forward_cpu_f64(&p, t.x, t.w, NULL, outd) == TCONV_SUCCESS, "bias may be NULL");
    free_tensors(&t);
    free(out);
    free(outd);
}

static void test_status_strings(void)
{
    const char *unknown = tconv_status_string((tconv_status)-1);
    CHECK(unknown != NULL && *unknown != '\0', "unknown status needs text");
    CHECK(tconv_status_string((tconv_status)(TCONV_ERROR_CUDA + 1)) != NULL,
          "status past the last needs text");
    for (int s = TCONV_SUCCESS; s <= TCONV_ERROR_CUDA; s++) {
        const char *text = tconv_status_string((tconv_status)s);
        CHECK(text != NULL && *text != '\0', "status %d has no text", s);
        CHECK(text != NULL && strcmp(text, unknown) != 0, "status %d reads as unknown", s);
        for (int o = TCONV_SUCCESS; o < s; o++)
            CHECK(text != NULL && strcmp(text, tconv_status_string((tconv_status)o)) != 0,
                  "statuses %d and %d share their text", o, s);
    }
    char version[64];
    snprintf(version, sizeof version, "%d.%d.%d", TCONV_VERSION_MAJOR, TCONV_VERSION_MINOR,
             TCONV_VERSION_PATCH);
    CHECK(strcmp(tconv_version(), version) == 0, "tconv_version() is %s, macros say %s",
          tconv_version(), version);
}

static void test_no_cuda(void)
{
    tconv_problem p = base_problem();
    tconv_config config = {TCONV_FLOAT32, TCONV_PRECISION_TF32, NULL};
    char buf[1];
    void *d = buf; /* never dereferenced without CUDA */
    const char *name = "x";
    size_t bytes = 1;
    CHECK(tconv_cuda_available() == 0, "built without CUDA");
    CHECK(tconv_cuda_variant(0, NULL) == NULL, "no variants without CUDA");
    CHECK(tconv_cuda_last_error() == 0, "no CUDA error without CUDA");

    const tconv_status none = TCONV_UNSUPPORTED_NO_CUDA;
    CHECK(tconv_cuda_algorithm(&p, TCONV_PASS_FORWARD, &config, &name) == none && name == NULL,
          "algorithm");
    CHECK(tconv_cuda_workspace_size(&p, TCONV_PASS_GRAD_WEIGHT, &config, &bytes) == none &&
              bytes == 0,
          "workspace_size");
    /* tensors far apart (never dereferenced), so that no output overlaps an input */
    void *in1 = (void *)((uintptr_t)1 << 40), *in2 = (void *)((uintptr_t)2 << 40);
    void *out = (void *)((uintptr_t)3 << 40);
    CHECK(tconv_forward_cuda(&p, &config, in1, in2, NULL, out, NULL, 0, NULL) == none, "forward");
    CHECK(tconv_grad_input_cuda(&p, &config, in1, in2, out, NULL, 0, NULL) == none, "grad_input");
    CHECK(tconv_grad_weight_cuda(&p, &config, in1, in2, out, NULL, 0, NULL) == none, "grad_weight");
    CHECK(tconv_grad_bias_cuda(&p, &config, in1, out, NULL, 0, NULL) == none, "grad_bias");
    CHECK(tconv_forward_cuda(&p, &config, in1, in2, NULL, in1, NULL, 0, NULL) == TCONV_INVALID_ALIASING,
          "forward with y over x");

    /* no plan can be made; any plan given is refused */
    tconv_plan *plan = (tconv_plan *)d;
    tconv_plan *foreign = (tconv_plan *)d;
    CHECK(tconv_plan_create(&plan, &p, TCONV_PASS_FORWARD, &config) == none && plan == NULL, "plan_create");
    CHECK(tconv_plan_create(NULL, &p, TCONV_PASS_FORWARD, &config) == TCONV_INVALID_POINTER, "plan_create(NULL)");
    CHECK(tconv_plan_destroy(NULL) == TCONV_SUCCESS, "plan_destroy(NULL)");
    CHECK(tconv_plan_destroy(foreign) == TCONV_INVALID_PLAN, "plan_destroy of no plan");
    CHECK(tconv_plan_workspace_size(foreign, &bytes) == TCONV_INVALID_PLAN, "plan_workspace_size");
    CHECK(tconv_plan_algorithm(foreign, &name) == TCONV_INVALID_PLAN, "plan_algorithm");
    CHECK(tconv_plan_forward(foreign, &p, d, d, NULL, d, NULL, 0, NULL) == TCONV_INVALID_PLAN, "plan_forward");
    CHECK(tconv_plan_grad_input(foreign, &p, d, d, d, NULL, 0, NULL) == TCONV_INVALID_PLAN, "plan_grad_input");
    CHECK(tconv_plan_grad_weight(foreign, &p, d, d, d, NULL, 0, NULL) == TCONV_INVALID_PLAN, "plan_grad_weight");
    CHECK(tconv_plan_grad_bias(foreign, &p, d, d, NULL, 0, NULL) == TCONV_INVALID_PLAN, "plan_grad_bias");

    /* the caller's mistakes come first */
    tconv_config bad_dtype = {(tconv_dtype)7, TCONV_PRECISION_FP32, NULL};
    tconv_config bad_precision = {TCONV_FLOAT64, (tconv_precision)5, NULL};
    tconv_problem bad = p;
    bad.stride_w = 0;
    CHECK(tconv_config_check(&config) == TCONV_SUCCESS, "config_check of a good config");
    CHECK(tconv_config_check(NULL) == TCONV_INVALID_POINTER, "config_check(NULL)");
    CHECK(tconv_forward_cuda(&p, &bad_dtype, d, d, d, d, NULL, 0, NULL) == TCONV_INVALID_DTYPE,
          "bad dtype");
    CHECK(tconv_grad_input_cuda(&p, &bad_precision, d, d, d, NULL, 0, NULL) ==
              TCONV_INVALID_PRECISION,
          "bad precision");
    CHECK(tconv_cuda_algorithm(&p, (tconv_pass)9, &config, &name) == TCONV_INVALID_PASS,
          "bad pass");
    CHECK(tconv_cuda_workspace_size(&p, (tconv_pass)-1, &config, &bytes) == TCONV_INVALID_PASS,
          "bad pass");
    CHECK(tconv_grad_weight_cuda(&bad, &config, d, d, d, NULL, 0, NULL) == TCONV_INVALID_STRIDE,
          "bad problem");
    CHECK(tconv_grad_bias_cuda(&p, NULL, d, d, NULL, 0, NULL) == TCONV_INVALID_POINTER,
          "NULL config");
    CHECK(tconv_grad_bias_cuda(NULL, &config, d, d, NULL, 0, NULL) == TCONV_INVALID_POINTER,
          "NULL problem");
    CHECK(tconv_forward_cuda(&p, &config, d, NULL, NULL, d, NULL, 0, NULL) ==
              TCONV_INVALID_POINTER,
          "NULL weight");
    CHECK(tconv_grad_input_cuda(&p, &config, d, d, NULL, NULL, 0, NULL) == TCONV_INVALID_POINTER,
          "NULL grad_x");
    CHECK(tconv_grad_weight_cuda(&p, &config, NULL, d, d, NULL, 0, NULL) ==
              TCONV_INVALID_POINTER,
          "NULL x");
    CHECK(tconv_cuda_algorithm(&p, TCONV_PASS_FORWARD, &config, NULL) == TCONV_INVALID_POINTER,
          "NULL name");
    CHECK(tconv_cuda_workspace_size(&p, TCONV_PASS_FORWARD, &config, NULL) ==
              TCONV_INVALID_POINTER,
          "NULL bytes");
}

int main(void)
{
    test_seed();
    test_status_strings();
    test_invalid();
    test_null_pointers();
    test_no_cuda();
    test_by_hand();
    test_empty_batch();
    test_awkward();
    test_random(100);
    test_threads_and_speed();
    return check_report();
}
