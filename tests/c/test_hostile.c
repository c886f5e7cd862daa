/*
 * test_hostile.c - the C API against hostile arguments: sizes at and beyond every 32- and
 * 64-bit limit, alone and together (built with AddressSanitizer and UndefinedBehaviorSanitizer
 * by `make c-test`, so that an overflow in the checks stops the run), and output buffers that
 * overlap an input.  Each must give its status, never a crash or a result computed from
 * half-overwritten memory.
 *
 *   make c-test                          (build/test_hostile, fresh random data, seed printed)
 *   TCONV_TEST_SEED=<seed> build/test_hostile
 *
 * XFAIL marks a check of a known defect: while the defect lasts it prints the check as an
 * expected failure; once the check holds it fails the run, so that the fix is noticed and the
 * XFAIL becomes a CHECK.
 */
#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "problem.h" /* tconv_check_aliasing */
#include "tconv.h"

static int xfail_count;

#define XFAIL(cond, ...)                                                                    \
    do {                                                                                    \
        if (cond) {                                                                         \
            check_failed++;                                                                 \
            fflush(stdout);                                                                 \
            fprintf(stderr, "%s:%d: XPASS, the defect is fixed (make this XFAIL a CHECK): ", \
                    __FILE__, __LINE__);                                                    \
            fprintf(stderr, __VA_ARGS__);                                                   \
            fputc('\n', stderr);                                                            \
        } else {                                                                            \
            xfail_count++;                                                                  \
            printf("expected failure (known defect): ");                                    \
            printf(__VA_ARGS__);                                                            \
            putchar('\n');                                                                  \
        }                                                                                   \
    } while (0)

/* ---- sizes ---- */

/* The input fields of tconv_problem, the smallest valid value of each and the status below
 * it. */
typedef struct field_rule {
    const char *name;
    size_t offset;
    int64_t lowest;
    tconv_status below;
} field_rule;

#define RULE(f, lowest, below) {#f, offsetof(tconv_problem, f), lowest, below}
static const field_rule rules[] = {
    RULE(n, 0, TCONV_INVALID_BATCH_SIZE),
    RULE(c_in, 1, TCONV_INVALID_CHANNELS),
    RULE(c_out, 1, TCONV_INVALID_CHANNELS),
    RULE(h_in, 1, TCONV_INVALID_INPUT_SIZE),
    RULE(w_in, 1, TCONV_INVALID_INPUT_SIZE),
    RULE(kernel_h, 1, TCONV_INVALID_KERNEL_SIZE),
    RULE(kernel_w, 1, TCONV_INVALID_KERNEL_SIZE),
    RULE(stride_h, 1, TCONV_INVALID_STRIDE),
    RULE(stride_w, 1, TCONV_INVALID_STRIDE),
    RULE(padding_h, 0, TCONV_INVALID_PADDING),
    RULE(padding_w, 0, TCONV_INVALID_PADDING),
    RULE(output_padding_h, 0, TCONV_INVALID_OUTPUT_PADDING),
    RULE(output_padding_w, 0, TCONV_INVALID_OUTPUT_PADDING),
    RULE(dilation_h, 1, TCONV_INVALID_DILATION),
    RULE(dilation_w, 1, TCONV_INVALID_DILATION),
    RULE(groups, 1, TCONV_INVALID_GROUPS),
};
enum { FIELDS = sizeof rules / sizeof rules[0] };

static int64_t *field(tconv_problem *p, int i) { return (int64_t *)((char *)p + rules[i].offset); }

/* A valid problem: N 2, C_in 4, C_out 6, groups 2, 5x7 input, 3x2 kernel, stride (2, 1),
 * dilation (1, 2), padding (1, 0), output_padding (1, 1). */
static tconv_problem base_problem(void)
{
    tconv_problem p = {2, 4, 5, 7, 6, 3, 2, 2, 1, 1, 0, 1, 1, 1, 2, 2, 0, 0};
    return p;
}

/* Every entry point that validates problems, on p: each must return the status of
 * tconv_problem_check() and leave the caller's struct alone.  The buffers are one element:
 * nothing may be read or written through them for an invalid problem. */
static void check_every_entry_point(const tconv_problem *p, tconv_status expected, const char *label)
{
    float f[1] = {0};
    double d[1] = {0};
    tconv_config config = {TCONV_FLOAT32, TCONV_PRECISION_FP32, NULL};
    const char *name;
    size_t bytes;
    tconv_problem copy = *p;
    const tconv_status got[] = {
        tconv_forward_cpu_f32(&copy, f, f, f, f),
        tconv_forward_cpu_f64(&copy, d, d, d, d),
        tconv_grad_input_cpu_f32(&copy, f, f, f),
        tconv_grad_input_cpu_f64(&copy, d, d, d),
        tconv_grad_weight_cpu_f32(&copy, f, f, f),
        tconv_grad_weight_cpu_f64(&copy, d, d, d),
        tconv_grad_bias_cpu_f32(&copy, f, f),
        tconv_grad_bias_cpu_f64(&copy, d, d),
        tconv_cuda_algorithm(&copy, TCONV_PASS_FORWARD, &config, &name),
        tconv_cuda_workspace_size(&copy, TCONV_PASS_GRAD_WEIGHT, &config, &bytes),
        tconv_forward_cuda(&copy, &config, f, f, NULL, f, NULL, 0, NULL),
        tconv_grad_input_cuda(&copy, &config, f, f, f, NULL, 0, NULL),
        tconv_grad_weight_cuda(&copy, &config, f, f, f, NULL, 0, NULL),
        tconv_grad_bias_cuda(&copy, &config, f, f, NULL, 0, NULL),
    };
    for (size_t i = 0; i < sizeof got / sizeof got[0]; i++)
        CHECK(got[i] == expected, "%s: entry point %zu gave \"%s\", expected \"%s\"", label, i,
              tconv_status_string(got[i]), tconv_status_string(expected));
    CHECK(memcmp(&copy, p, sizeof copy) == 0, "%s: the caller's problem was written", label);
}

/* The status of the base problem with field i set to v, for v below the field's range or
 * above 2^31 - 1: the field's own status when v is below its range (but output_padding comes
 * before dilation, and the base's output_padding_w needs its dilation_w: with stride_w 1 it
 * is then too large); output_padding at 2^31 or more is not below max(stride, dilation) of
 * the base; groups so large divides neither channel count, nor does the base's groups (2) an
 * odd channel count; else the size is unsupported. */
static tconv_status expected_status(int i, int64_t v)
{
    const field_rule *r = &rules[i];
    const size_t f = r->offset;
    if (v < r->lowest && f == offsetof(tconv_problem, dilation_w))
        return TCONV_INVALID_OUTPUT_PADDING;
    if (v < r->lowest)
        return r->below;
    if (f == offsetof(tconv_problem, output_padding_h) || f == offsetof(tconv_problem, output_padding_w))
        return TCONV_INVALID_OUTPUT_PADDING;
    if (f == offsetof(tconv_problem, groups) ||
        ((f == offsetof(tconv_problem, c_in) || f == offsetof(tconv_problem, c_out)) && v % 2 != 0))
        return TCONV_INVALID_GROUPS;
    return TCONV_UNSUPPORTED_SIZE;
}

/* Each field alone at each extreme value, on the valid base problem. */
static void test_extreme_fields(void)
{
    const int64_t extremes[] = {INT64_MIN, INT64_MIN + 1, -((int64_t)1 << 62), -((int64_t)1 << 31),
                                INT32_MIN, -1, (int64_t)1 << 31, (int64_t)1 << 32,
                                (int64_t)1 << 62, INT64_MAX - 1, INT64_MAX};
    char label[96];
    for (int i = 0; i < FIELDS; i++) {
        for (size_t e = 0; e < sizeof extremes / sizeof extremes[0]; e++) {
            tconv_problem p = base_problem();
            *field(&p, i) = extremes[e];
            const tconv_status expected = expected_status(i, extremes[e]);
            snprintf(label, sizeof label, "%s = %" PRId64, rules[i].name, extremes[e]);
            tconv_problem q = p;
            CHECK(tconv_problem_check(&q) == expected, "%s: tconv_problem_check gave \"%s\"",
                  label, tconv_status_string(tconv_problem_check(&q)));
            check_every_entry_point(&p, expected, label);
        }
    }
}

/* Several fields large together: every 32-bit size at its largest, products of sizes past
 * 2^63 (x, y and the weight each), an output size past 2^31 from sizes that are not. */
static void test_large_together(void)
{
    const int64_t m = INT32_MAX;
    tconv_problem all = {m, m, m, m, m, m, m, m, m, m, m, m - 1, m - 1, m, m, m, 0, 0};
    check_every_entry_point(&all, TCONV_UNSUPPORTED_SIZE, "every field 2^31 - 1");

    /* x of (2^31 - 1)^4 elements (2^124), y and weight small */
    tconv_problem x_huge = base_problem();
    x_huge.n = x_huge.h_in = x_huge.w_in = m;
    x_huge.c_in = x_huge.c_out = x_huge.groups = m;
    check_every_entry_point(&x_huge, TCONV_UNSUPPORTED_SIZE, "x of 2^124 elements");

    /* the weight: C_in * C_out/groups * kH * kW past 2^63 with everything else small */
    tconv_problem w_huge = base_problem();
    w_huge.n = 1;
    w_huge.c_in = w_huge.c_out = m - 1;
    w_huge.groups = 1;
    w_huge.kernel_h = w_huge.kernel_w = 3;
    w_huge.h_in = w_huge.w_in = 1;
    check_every_entry_point(&w_huge, TCONV_UNSUPPORTED_SIZE, "a weight of 9 (2^31 - 2)^2 elements");

    /* H_out = (2^31 - 2) * (2^31 - 1) + ...: past 2^31 from sides of 2^31 - 1, near 2^63 */
    tconv_problem out_huge = base_problem();
    out_huge.h_in = out_huge.stride_h = out_huge.kernel_h = out_huge.dilation_h = m;
    out_huge.output_padding_h = m - 1;
    check_every_entry_point(&out_huge, TCONV_UNSUPPORTED_SIZE, "H_out near 2^63");

    /* padding that makes H_out negative by about 2^32 */
    tconv_problem out_negative = base_problem();
    out_negative.padding_h = m;
    check_every_entry_point(&out_negative, TCONV_INVALID_OUTPUT_SIZE, "H_out near -2^32");

    /* x and y at 2^62 elements, the largest that fit, then at 2^63, every side legal */
    tconv_problem y_edge = base_problem();
    y_edge.n = (int64_t)1 << 30;
    y_edge.c_in = y_edge.c_out = y_edge.groups = (int64_t)1 << 16;
    y_edge.h_in = y_edge.w_in = 1;
    y_edge.kernel_h = y_edge.kernel_w = 1;
    y_edge.stride_h = y_edge.stride_w = 1;
    y_edge.dilation_h = y_edge.dilation_w = 1;
    y_edge.padding_h = y_edge.padding_w = 0;
    y_edge.output_padding_h = y_edge.output_padding_w = 0;
    tconv_problem fits = y_edge;
    CHECK(tconv_problem_check(&fits) == TCONV_SUCCESS && fits.h_out == 1 && fits.w_out == 1,
          "2^46-element x and y are valid problems");
    y_edge.h_in = (int64_t)1 << 16; /* x and y of 2^62 elements: the largest that fit */
    tconv_problem at_limit = y_edge;
    CHECK(tconv_problem_check(&at_limit) == TCONV_SUCCESS, "2^62-element x and y are valid");
    y_edge.w_in = 2; /* 2^63 */
    check_every_entry_point(&y_edge, TCONV_UNSUPPORTED_SIZE, "2^63-element x and y");
}

/* An empty batch of planes of 2^60 pixels (H_out 2^31 - 2): every pass returns at once, with
 * NULL for the empty tensors; grad_weight and grad_bias are zeros. */
static void test_empty_batch_of_huge_planes(void)
{
    tconv_problem p = base_problem();
    p.n = 0;
    p.h_in = p.w_in = ((int64_t)1 << 30) - 1;
    p.c_in = p.c_out = p.groups = 4; /* a weight of (4, 1, 3, 2) */
    CHECK(tconv_problem_check(&p) == TCONV_SUCCESS && p.h_out == ((int64_t)1 << 31) - 2,
          "N = 0, huge planes: a valid problem");
    double w[24], b[4], gw[24], gb[4];
    fill_f64(w, 24);
    fill_f64(b, 4);
    poison_f64(gw, 24);
    poison_f64(gb, 4);
    CHECK(tconv_forward_cpu_f64(&p, NULL, w, b, NULL) == TCONV_SUCCESS, "N = 0, huge planes: forward");
    CHECK(tconv_grad_input_cpu_f64(&p, NULL, w, NULL) == TCONV_SUCCESS, "N = 0, huge planes: grad_input");
    CHECK(tconv_grad_weight_cpu_f64(&p, NULL, NULL, gw) == TCONV_SUCCESS, "N = 0, huge planes: grad_weight");
    CHECK(tconv_grad_bias_cpu_f64(&p, NULL, gb) == TCONV_SUCCESS, "N = 0, huge planes: grad_bias");
    const double zeros[24] = {0};
    CHECK(max_abs_diff_f64(gw, zeros, 24) == 0.0 && max_abs_diff_f64(gb, zeros, 4) == 0.0,
          "N = 0, huge planes: grad_weight and grad_bias not zero");
}

/* ---- outputs that overlap inputs ---- */

typedef struct pass_tensors {
    tconv_pass pass;
    const char *name;
    int inputs[3];   /* indices into the tensor list below, -1 for none */
    int output;
} pass_tensors;

enum { X, WEIGHT, BIAS, GRAD_Y, Y, GRAD_X, GRAD_WEIGHT, GRAD_BIAS, TENSORS };

static const pass_tensors pass_list[4] = {
    {TCONV_PASS_FORWARD, "forward", {X, WEIGHT, BIAS}, Y},
    {TCONV_PASS_GRAD_INPUT, "grad_input", {GRAD_Y, WEIGHT, -1}, GRAD_X},
    {TCONV_PASS_GRAD_WEIGHT, "grad_weight", {X, GRAD_Y, -1}, GRAD_WEIGHT},
    {TCONV_PASS_GRAD_BIAS, "grad_bias", {GRAD_Y, -1, -1}, GRAD_BIAS},
};

static int64_t elems_of(const tconv_problem *p, int tensor)
{
    switch (tensor) {
    case X:
    case GRAD_X: return tconv_x_elems(p);
    case WEIGHT:
    case GRAD_WEIGHT: return tconv_weight_elems(p);
    case BIAS:
    case GRAD_BIAS: return p->c_out;
    default: return tconv_y_elems(p);
    }
}

static tconv_status alias_check(const tconv_problem *p, const pass_tensors *pt, const double *const at[TENSORS])
{
    return tconv_check_aliasing(p, pt->pass, sizeof(double), at[X], at[WEIGHT], at[BIAS], at[GRAD_Y],
                                at[pt->output]);
}

/* tconv_check_aliasing for every pass: disjoint tensors pass, an output that shares even one
 * element with one of its pass's inputs (its first or its last) does not, inputs may share
 * memory with each other, and tensors the pass does not take are ignored. */
static void test_aliasing_check(void)
{
    tconv_problem p = base_problem();
    CHECK(tconv_problem_check(&p) == TCONV_SUCCESS, "base problem");
    int64_t total = 0;
    for (int t = 0; t < TENSORS; t++)
        total += elems_of(&p, t);
    double *arena = calloc((size_t)(3 * total), sizeof(double));
    if (arena == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    const double *apart[TENSORS]; /* disjoint, with gaps */
    int64_t offset = 0;
    for (int t = 0; t < TENSORS; t++) {
        apart[t] = arena + offset;
        offset += elems_of(&p, t) + 3;
    }
    double *spare = arena + 2 * total; /* room to place an output anywhere below */
    char label[128];
    for (int k = 0; k < 4; k++) {
        const pass_tensors *pt = &pass_list[k];
        CHECK(alias_check(&p, pt, apart) == TCONV_SUCCESS, "%s: disjoint tensors", pt->name);
        const int64_t out_elems = elems_of(&p, pt->output);
        for (int i = 0; i < 3 && pt->inputs[i] >= 0; i++) {
            const int in = pt->inputs[i];
            const int64_t in_elems = elems_of(&p, in);
            /* output placements relative to the input: the same start; sharing only the
             * input's last element; sharing only its first; just after it; just before it */
            const int64_t starts[5] = {0, in_elems - 1, 1 - out_elems, in_elems, -out_elems};
            const int overlaps[5] = {1, 1, 1, 0, 0};
            for (int s = 0; s < 5; s++) {
                const double *at[TENSORS];
                memcpy(at, apart, sizeof at);
                at[in] = spare + out_elems; /* so that every start stays inside the arena */
                at[pt->output] = at[in] + starts[s];
                snprintf(label, sizeof label, "%s: output at %+" PRId64 " of input %d (%" PRId64
                         " elements, output %" PRId64 ")", pt->name, starts[s], in, in_elems, out_elems);
                CHECK(alias_check(&p, pt, at) == (overlaps[s] ? TCONV_INVALID_ALIASING : TCONV_SUCCESS),
                      "%s", label);
            }
        }
        /* a tensor the pass does not take may sit anywhere */
        for (int t = 0; t < GRAD_Y + 1; t++) {
            int taken = 0;
            for (int i = 0; i < 3; i++)
                taken |= pt->inputs[i] == t;
            if (taken)
                continue;
            const double *at[TENSORS];
            memcpy(at, apart, sizeof at);
            at[t] = at[pt->output];
            CHECK(alias_check(&p, pt, at) == TCONV_SUCCESS, "%s: tensor %d it does not take", pt->name, t);
        }
    }
    /* inputs that share memory; NULL bias; an empty batch (x, y, grad_x, grad_y empty) */
    const double *at[TENSORS];
    memcpy(at, apart, sizeof at);
    at[GRAD_Y] = at[X];
    CHECK(alias_check(&p, &pass_list[2], at) == TCONV_SUCCESS, "grad_weight with x == grad_y");
    at[BIAS] = NULL;
    CHECK(alias_check(&p, &pass_list[0], at) == TCONV_SUCCESS, "forward without bias");
    tconv_problem empty = p;
    empty.n = 0;
    memcpy(at, apart, sizeof at);
    at[Y] = at[X];
    at[GRAD_X] = at[GRAD_Y];
    CHECK(alias_check(&empty, &pass_list[0], at) == TCONV_SUCCESS, "N = 0: empty x and y");
    CHECK(alias_check(&empty, &pass_list[1], at) == TCONV_SUCCESS, "N = 0: empty grad_y and grad_x");
    CHECK(tconv_check_aliasing(&p, (tconv_pass)7, 8, NULL, NULL, NULL, NULL, NULL) == TCONV_INVALID_PASS,
          "pass 7");
    /* a huge tensor's end past the address space does not wrap around */
    tconv_problem huge = p;
    huge.n = (int64_t)1 << 40;
    memcpy(at, apart, sizeof at);
    at[X] = (const double *)(uintptr_t)(UINTPTR_MAX - 64);
    at[Y] = apart[Y];
    CHECK(alias_check(&huge, &pass_list[0], at) == TCONV_SUCCESS, "an x near the top of memory");
    at[Y] = (const double *)(uintptr_t)(UINTPTR_MAX - 4096);
    CHECK(alias_check(&huge, &pass_list[0], at) == TCONV_INVALID_ALIASING, "x and y near the top of memory");
    free(arena);
}

/* The entry points themselves, for an output exactly on an input: TCONV_INVALID_ALIASING,
 * before any computing.  The buffer is large enough for either tensor, so that the defect
 * (computing over the input) stays inside it. */
static void test_entry_points_refuse_aliasing(void)
{
    tconv_problem p = base_problem();
    CHECK(tconv_problem_check(&p) == TCONV_SUCCESS, "base problem");
    const int64_t size = tconv_y_elems(&p) + tconv_x_elems(&p) + tconv_weight_elems(&p) + p.c_out;
    double *a = calloc((size_t)size, sizeof(double)), *b = calloc((size_t)size, sizeof(double));
    float *af = calloc((size_t)size, sizeof(float)), *bf = calloc((size_t)size, sizeof(float));
    if (a == NULL || b == NULL || af == NULL || bf == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    fill_f64(a, size);
    fill_f64(b, size);
    for (int64_t i = 0; i < size; i++) {
        af[i] = (float)a[i];
        bf[i] = (float)b[i];
    }
    tconv_config config = {TCONV_FLOAT32, TCONV_PRECISION_FP32, NULL};
    const tconv_status want = TCONV_INVALID_ALIASING;
    const tconv_status cpu[] = {
        tconv_forward_cpu_f64(&p, a, b, NULL, a),       /* y over x */
        tconv_forward_cpu_f32(&p, af, bf, NULL, bf),    /* y over weight */
        tconv_grad_input_cpu_f64(&p, a, b, a),          /* grad_x over grad_y */
        tconv_grad_weight_cpu_f32(&p, af, bf, af),      /* grad_weight over x */
        tconv_grad_bias_cpu_f64(&p, a, a),              /* grad_bias over grad_y */
    };
    for (size_t i = 0; i < sizeof cpu / sizeof cpu[0]; i++)
        CHECK(cpu[i] == want, "CPU aliasing case %zu gave \"%s\"", i, tconv_status_string(cpu[i]));
    /* without CUDA the caller's mistakes also come before TCONV_UNSUPPORTED_NO_CUDA */
    if (!tconv_cuda_available()) {
        const tconv_status stub = tconv_forward_cuda(&p, &config, af, bf, NULL, af, NULL, 0, NULL);
        CHECK(stub == want, "forward_cuda with y over x gave \"%s\"", tconv_status_string(stub));
    }
    free(a);
    free(b);
    free(af);
    free(bf);
}

int main(void)
{
    test_seed();
    test_extreme_fields();
    test_large_together();
    test_empty_batch_of_huge_planes();
    test_aliasing_check();
    test_entry_points_refuse_aliasing();
    printf("%d expected failures of known defects\n", xfail_count);
    return check_report();
}
