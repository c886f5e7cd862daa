/*
 * test_cuda.c - every CUDA variant against the CPU float64 reference.
 *
 * For the problems of tests/problems.txt tagged test plus random ones, every dtype (float32 in both precisions,
 * float64, float16, bfloat16), every pass and every variant that accepts the problem
 * (forced through config.algorithm): the output is poisoned with NaN bytes and the
 * workspace with a byte pattern, the pass runs twice and must give bitwise equal results,
 * and each element must be within an error bound of the float64 reference computed from
 * the same (dtype-rounded, TF32-rounded where the precision says so) inputs.  Then every
 * invalid argument must give its status.
 *
 *   build/test_cuda           the full run
 *   build/test_cuda --small   the problems tagged small (compute-sanitizer runs them)
 *   TCONV_TEST_SEED=<seed>    replays a run
 *
 * Prints "N passed, M failed"; exits non-zero on a failure or without a usable GPU.
 */
#include <cuda_runtime_api.h>
#include <string.h>

#include "check.h"

/* ---- dtypes: rounding onto their grids, and their bytes on the device ---- */

typedef struct dtype_case {
    const char *name;
    tconv_dtype dtype;
    tconv_precision precision;
    int digits;      /* significand bits, the implicit one included */
    int emin;        /* exponent of the smallest normal number */
    double u_acc;    /* unit roundoff of the accumulation */
    double u_out;    /* unit roundoff of rounding the result to the dtype (0: it is the acc type) */
} dtype_case;

static const dtype_case dtype_cases[] = {
    {"float32/fp32", TCONV_FLOAT32, TCONV_PRECISION_FP32, 24, -126, 0x1p-24, 0.0},
    {"float32/tf32", TCONV_FLOAT32, TCONV_PRECISION_TF32, 24, -126, 0x1p-24, 0.0},
    {"float64", TCONV_FLOAT64, TCONV_PRECISION_FP32, 53, -1022, 0x1p-53, 0.0},
    {"float16", TCONV_FLOAT16, TCONV_PRECISION_FP32, 11, -14, 0x1p-24, 0x1p-11},
    {"bfloat16", TCONV_BFLOAT16, TCONV_PRECISION_FP32, 8, -126, 0x1p-24, 0x1p-8},
};
enum { DTYPE_CASES = sizeof(dtype_cases) / sizeof(dtype_cases[0]) };

/* v rounded to `digits` significant bits with exponents down to emin (subnormals below),
 * to nearest: ties to even, or away from zero as TF32's cvt.rna does. */
static double round_to(double v, int digits, int emin, int ties_away)
{
    if (v == 0.0)
        return v;
    int e = ilogb(v);
    if (e < emin)
        e = emin;
    const double scale = ldexp(1.0, digits - 1 - e);
    const double m = v * scale;
    return (ties_away ? round(m) : nearbyint(m)) / scale;
}

static double round_tf32(double v) { return round_to(v, 11, -126, 1); }

static size_t dtype_size(tconv_dtype dtype)
{
    return dtype == TCONV_FLOAT64 ? 8 : dtype == TCONV_FLOAT32 ? 4 : 2;
}

/* Bits of a float16 holding v, which is on the float16 grid and below 65504 in magnitude. */
static uint16_t f16_bits(double v)
{
    const uint16_t sign = signbit(v) ? 0x8000 : 0;
    const double a = fabs(v);
    if (a < 0x1p-14)
        return sign | (uint16_t)(a * 0x1p24);
    const int e = ilogb(a);
    return sign | (uint16_t)((e + 15) << 10) | (uint16_t)((a / ldexp(1.0, e) - 1.0) * 1024.0);
}

static double f16_value(uint16_t h)
{
    const int e = (h >> 10) & 31, m = h & 1023;
    const double a = e == 31 ? (m ? NAN : INFINITY)
                     : e == 0 ? ldexp(m, -24)
                              : ldexp(1024 + m, e - 25);
    return (h & 0x8000) ? -a : a;
}

/* Writes v[i] (already on the dtype's grid) into dst in the dtype's bytes. */
static void encode(tconv_dtype dtype, const double *v, int64_t count, void *dst)
{
    for (int64_t i = 0; i < count; i++) {
        const float f = (float)v[i];
        uint32_t u;
        memcpy(&u, &f, 4);
        switch (dtype) {
        case TCONV_FLOAT32: ((float *)dst)[i] = f; break;
        case TCONV_FLOAT64: ((double *)dst)[i] = v[i]; break;
        case TCONV_FLOAT16: ((uint16_t *)dst)[i] = f16_bits(v[i]); break;
        case TCONV_BFLOAT16: ((uint16_t *)dst)[i] = (uint16_t)(u >> 16); break;
        }
    }
}

static void decode(tconv_dtype dtype, const void *src, int64_t count, double *v)
{
    for (int64_t i = 0; i < count; i++) {
        switch (dtype) {
        case TCONV_FLOAT32: v[i] = ((const float *)src)[i]; break;
        case TCONV_FLOAT64: v[i] = ((const double *)src)[i]; break;
        case TCONV_FLOAT16: v[i] = f16_value(((const uint16_t *)src)[i]); break;
        case TCONV_BFLOAT16: {
            const uint32_t u = (uint32_t)((const uint16_t *)src)[i] << 16;
            float f;
            memcpy(&f, &u, 4);
            v[i] = f;
            break;
        }
        }
    }
}

/* ---- memory ---- */

static void *host_alloc(int64_t bytes)
{
    void *ptr = malloc(bytes > 0 ? (size_t)bytes : 1);
    if (ptr == NULL) {
        fprintf(stderr, "out of host memory\n");
        exit(2);
    }
    return ptr;
}

static void cuda_must(cudaError_t err, const char *what)
{
    if (err != cudaSuccess) {
        fprintf(stderr, "%s: %s\n", what, cudaGetErrorString(err));
        exit(2);
    }
}

/* Device buffers are never empty, so that a NULL pointer always means a test of NULL. */
static void *device_alloc(size_t bytes)
{
    void *ptr;
    cuda_must(cudaMalloc(&ptr, bytes > 0 ? bytes : 256), "cudaMalloc");
    return ptr;
}

/* ---- one problem ---- */

static const char *const pass_names[] = {"forward", "grad_input", "grad_weight", "grad_bias"};

/* The tensors of one problem on the device, in one dtype: inputs first, in the order of
 * the reference's arguments, then the outputs in the order of the passes. */
enum { X, WEIGHT, BIAS, GRAD_Y, Y, GRAD_X, GRAD_WEIGHT, GRAD_BIAS, TENSORS };
typedef struct tensors {
    void *at[TENSORS];
} tensors;

/* Which tensors each pass needs (bias is optional). */
static const int required[4][TENSORS] = {
    {1, 1, 0, 0, 1, 0, 0, 0},
    {0, 1, 0, 1, 0, 1, 0, 0},
    {1, 0, 0, 1, 0, 0, 1, 0},
    {0, 0, 0, 1, 0, 0, 0, 1},
};

static tconv_status run(tconv_pass pass, const tconv_problem *p, const tconv_config *config,
                        const tensors *t, void *workspace, size_t workspace_bytes)
{
    switch (pass) {
    case TCONV_PASS_FORWARD:
        return tconv_forward_cuda(p, config, t->at[X], t->at[WEIGHT], t->at[BIAS], t->at[Y],
                                  workspace, workspace_bytes, NULL);
    case TCONV_PASS_GRAD_INPUT:
        return tconv_grad_input_cuda(p, config, t->at[GRAD_Y], t->at[WEIGHT], t->at[GRAD_X],
                                     workspace, workspace_bytes, NULL);
    case TCONV_PASS_GRAD_WEIGHT:
        return tconv_grad_weight_cuda(p, config, t->at[X], t->at[GRAD_Y], t->at[GRAD_WEIGHT],
                                      workspace, workspace_bytes, NULL);
    case TCONV_PASS_GRAD_BIAS:
        return tconv_grad_bias_cuda(p, config, t->at[GRAD_Y], t->at[GRAD_BIAS], workspace,
                                    workspace_bytes, NULL);
    }
    return TCONV_INVALID_PASS;
}

static int64_t output_elems(tconv_pass pass, const tconv_problem *p)
{
    const int64_t counts[] = {tconv_y_elems(p), tconv_x_elems(p), tconv_weight_elems(p), p->c_out};
    return counts[pass];
}

/* Terms in one output element's sum: the length of the dot product behind the bound. */
static int64_t terms(tconv_pass pass, const tconv_problem *p)
{
    const int64_t taps = p->kernel_h * p->kernel_w;
    const int64_t counts[] = {p->c_in / p->groups * taps + 1, p->c_out / p->groups * taps,
                              p->n * p->h_in * p->w_in, p->n * p->h_out * p->w_out};
    return counts[pass];
}

/* The float64 reference of a pass, and the same pass over |inputs| (the sum of |terms|,
 * which scales the error bound of each element). */
typedef struct reference {
    double *value, *magnitude;
} reference;

static void cpu_pass(tconv_pass pass, const tconv_problem *p, const double *x, const double *w,
                     const double *b, const double *gy, double *out)
{
    tconv_status s = TCONV_INVALID_PASS;
    switch (pass) {
    case TCONV_PASS_FORWARD: s = tconv_forward_cpu_f64(p, x, w, b, out); break;
    case TCONV_PASS_GRAD_INPUT: s = tconv_grad_input_cpu_f64(p, gy, w, out); break;
    case TCONV_PASS_GRAD_WEIGHT: s = tconv_grad_weight_cpu_f64(p, x, gy, out); break;
    case TCONV_PASS_GRAD_BIAS: s = tconv_grad_bias_cpu_f64(p, gy, out); break;
    }
    if (s != TCONV_SUCCESS) {
        fprintf(stderr, "CPU reference failed: %s\n", tconv_status_string(s));
        exit(2);
    }
}

static double *absolute(const double *a, int64_t count)
{
    double *r = host_alloc(count * (int64_t)sizeof(double));
    for (int64_t i = 0; i < count; i++)
        r[i] = fabs(a[i]);
    return r;
}

static void make_reference(tconv_pass pass, const tconv_problem *p, const double *const in[4],
                           reference *ref)
{
    const int64_t count = output_elems(pass, p);
    const int64_t sizes[4] = {tconv_x_elems(p), tconv_weight_elems(p), p->c_out, tconv_y_elems(p)};
    double *abs_in[4];
    for (int i = 0; i < 4; i++)
        abs_in[i] = absolute(in[i], sizes[i]);
    ref->value = host_alloc(count * (int64_t)sizeof(double));
    ref->magnitude = host_alloc(count * (int64_t)sizeof(double));
    cpu_pass(pass, p, in[0], in[1], in[2], in[3], ref->value);
    cpu_pass(pass, p, abs_in[0], abs_in[1], abs_in[2], abs_in[3], ref->magnitude);
    for (int i = 0; i < 4; i++)
        free(abs_in[i]);
}

/* Index of the worst element against the bound, or -1 when every element is within it.
 * The bound: rounding the result to the dtype, plus an accumulation error that grows with
 * the sum of |terms| and (slowly) with their count, plus a floor at max |reference|. */
static int64_t worst_element(const double *got, const reference *ref, int64_t count, int64_t k,
                             const dtype_case *dc, double *ratio)
{
    const double max_ref = max_abs_f64(ref->value, count);
    const double growth = 16.0 + 4.0 * sqrt((double)k);
    const double tiny = ldexp(1.0, dc->emin - dc->digits);
    int64_t worst = -1;
    *ratio = 0.0;
    for (int64_t i = 0; i < count; i++) {
        const double bound = dc->u_out * fabs(ref->value[i]) + tiny +
                             dc->u_acc * (growth * ref->magnitude[i] + max_ref);
        const double err = fabs(got[i] - ref->value[i]);
        const double r = isnan(err) ? INFINITY : err / bound;
        if (r > 1.0 && r > *ratio) {
            *ratio = r;
            worst = i;
        }
    }
    return worst;
}

/* Runs `pass` under `config` into the poisoned output, copies the result to host (in the
 * dtype's bytes); returns the status of the call. */
static tconv_status run_poisoned(tconv_pass pass, const tconv_problem *p,
                                 const tconv_config *config, const tensors *t, void *host_out)
{
    const size_t bytes = (size_t)output_elems(pass, p) * dtype_size(config->dtype);
    size_t ws_bytes = 0;
    tconv_status s = tconv_cuda_workspace_size(p, pass, config, &ws_bytes);
    if (s != TCONV_SUCCESS)
        return s;
    void *ws = ws_bytes > 0 ? device_alloc(ws_bytes) : NULL;
    if (ws != NULL)
        cuda_must(cudaMemset(ws, 0xA5, ws_bytes), "cudaMemset workspace");
    /* 0xFF bytes are a NaN in every dtype */
    cuda_must(cudaMemset(t->at[Y + pass], 0xFF, bytes > 0 ? bytes : 1), "cudaMemset output");
    s = run(pass, p, config, t, ws, ws_bytes);
    cuda_must(cudaDeviceSynchronize(), "kernel");
    cuda_must(cudaMemcpy(host_out, t->at[Y + pass], bytes, cudaMemcpyDeviceToHost), "cudaMemcpy");
    if (ws != NULL)
        cuda_must(cudaFree(ws), "cudaFree");
    return s;
}

/* Every variant of `pass` that accepts p under dc, against ref. */
static void check_variants(tconv_pass pass, const tconv_problem *p, const dtype_case *dc,
                           const tensors *t, const reference *ref)
{
    char desc[256];
    const int64_t count = output_elems(pass, p);
    const size_t bytes = (size_t)count * dtype_size(dc->dtype);
    void *first = host_alloc((int64_t)bytes), *second = host_alloc((int64_t)bytes);
    double *got = host_alloc(count * (int64_t)sizeof(double));
    tconv_config config = {dc->dtype, dc->precision, NULL};
    const char *chosen = NULL;
    CHECK(tconv_cuda_algorithm(p, pass, &config, &chosen) == TCONV_SUCCESS,
          "no variant for %s %s of %s", pass_names[pass], dc->name, problem_string(p, desc));

    tconv_pass vpass;
    for (int v = 0; (config.algorithm = tconv_cuda_variant(v, &vpass)) != NULL; v++) {
        const char *name;
        if (vpass != pass || tconv_cuda_algorithm(p, pass, &config, &name) != TCONV_SUCCESS)
            continue;
        tconv_status s1 = run_poisoned(pass, p, &config, t, first);
        tconv_status s2 = run_poisoned(pass, p, &config, t, second);
        CHECK(s1 == TCONV_SUCCESS && s2 == TCONV_SUCCESS, "%s %s: %s; %s", config.algorithm,
              dc->name, tconv_status_string(s1), problem_string(p, desc));
        if (s1 != TCONV_SUCCESS || s2 != TCONV_SUCCESS)
            continue;
        CHECK(memcmp(first, second, bytes) == 0, "%s %s: two runs differ; %s", config.algorithm,
              dc->name, problem_string(p, desc));
        decode(dc->dtype, first, count, got);
        double ratio;
        const int64_t worst = worst_element(got, ref, count, terms(pass, p), dc, &ratio);
        CHECK(worst < 0, "%s %s: element %" PRId64 " is %.9g, reference %.9g (%.3g x the bound); %s",
              config.algorithm, dc->name, worst, worst < 0 ? 0.0 : got[worst],
              worst < 0 ? 0.0 : ref->value[worst], ratio, problem_string(p, desc));
    }
    free(first);
    free(second);
    free(got);
}

static double *random_array(int64_t count)
{
    double *a = host_alloc(count * (int64_t)sizeof(double));
    fill_f64(a, count);
    return a;
}

static void *upload(const dtype_case *dc, const double *v, int64_t count)
{
    const size_t bytes = (size_t)count * dtype_size(dc->dtype);
    void *host = host_alloc((int64_t)bytes), *dev = device_alloc(bytes);
    encode(dc->dtype, v, count, host);
    cuda_must(cudaMemcpy(dev, host, bytes, cudaMemcpyHostToDevice), "cudaMemcpy");
    free(host);
    return dev;
}

static void check_problem(tconv_problem *p)
{
    if (tconv_problem_check(p) != TCONV_SUCCESS) {
        char desc[256];
        fprintf(stderr, "invalid test problem: %s\n", problem_string(p, desc));
        exit(2);
    }
    /* the inputs x, weight, bias, grad_y */
    const int64_t sizes[4] = {tconv_x_elems(p), tconv_weight_elems(p), p->c_out, tconv_y_elems(p)};
    double *raw[4];
    for (int i = 0; i < 4; i++)
        raw[i] = random_array(sizes[i]);

    for (int d = 0; d < DTYPE_CASES; d++) {
        const dtype_case *dc = &dtype_cases[d];
        const int tf32 = dc->precision == TCONV_PRECISION_TF32;
        /* stored: the inputs on the dtype's grid; operand: as multiplied (TF32 rounds all
         * but the bias, which is only added) */
        double *stored[4], *operand[4];
        for (int i = 0; i < 4; i++) {
            stored[i] = host_alloc(sizes[i] * (int64_t)sizeof(double));
            operand[i] = host_alloc(sizes[i] * (int64_t)sizeof(double));
            for (int64_t j = 0; j < sizes[i]; j++) {
                stored[i][j] = dc->dtype == TCONV_FLOAT32 ? (double)(float)raw[i][j]
                                                          : round_to(raw[i][j], dc->digits, dc->emin, 0);
                operand[i][j] = tf32 && i != 2 ? round_tf32(stored[i][j]) : stored[i][j];
            }
        }
        tensors t;
        for (int i = 0; i < 4; i++) {
            t.at[i] = upload(dc, stored[i], sizes[i]);
            t.at[Y + i] = device_alloc((size_t)output_elems((tconv_pass)i, p) * dtype_size(dc->dtype));
        }

        for (int pass = 0; pass < 4; pass++) {
            reference ref;
            /* grad_bias only adds: its operand is grad_y as stored */
            double *const *in = pass == TCONV_PASS_GRAD_BIAS ? stored : operand;
            make_reference((tconv_pass)pass, p, (const double *const *)in, &ref);
            check_variants((tconv_pass)pass, p, dc, &t, &ref);
            free(ref.value);
            free(ref.magnitude);
        }
        for (int i = 0; i < TENSORS; i++)
            cuda_must(cudaFree(t.at[i]), "cudaFree");
        for (int i = 0; i < 4; i++) {
            free(stored[i]);
            free(operand[i]);
        }
    }
    for (int i = 0; i < 4; i++)
        free(raw[i]);
}

/* ---- the problems: those of tests/problems.txt tagged test (--small: small), then random ---- */

enum { MAX_PROBLEMS = 256, RANDOM = 16 };

/* ---- invalid arguments ---- */

static void check_invalid_arguments(void)
{
    CHECK(tconv_cuda_available() == 1, "tconv_cuda_available() is not 1");
    CHECK(tconv_cuda_last_error() == 0, "tconv_cuda_last_error() before any failure");
    CHECK(tconv_cuda_variant(-1, NULL) == NULL, "variant -1 exists");

    /* the table: names unique, passes valid, every pass served */
    int per_pass[4] = {0, 0, 0, 0}, count = 0;
    tconv_pass pass;
    for (const char *name; (name = tconv_cuda_variant(count, &pass)) != NULL; count++) {
        CHECK(pass >= 0 && pass < 4 && name[0] != '\0', "variant %d (%s) pass %d", count, name, (int)pass);
        for (int j = 0; j < count; j++)
            CHECK(strcmp(name, tconv_cuda_variant(j, NULL)) != 0, "variant name %s twice", name);
        if (pass >= 0 && pass < 4)
            per_pass[pass]++;
    }
    for (int i = 0; i < 4; i++)
        CHECK(per_pass[i] > 0, "no variant for %s", pass_names[i]);

    tconv_problem p = {2, 4, 3, 3, 6, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 2, 0, 0};
    tconv_problem_check(&p);
    const dtype_case *dc = &dtype_cases[0];
    tensors t;
    for (int i = 0; i < TENSORS; i++)
        t.at[i] = device_alloc((size_t)(tconv_y_elems(&p) + tconv_x_elems(&p) + tconv_weight_elems(&p)) * 4);
    tconv_config config = {dc->dtype, dc->precision, NULL};
    void *ws = device_alloc(1 << 20);
    const size_t ws_bytes = 1 << 20;
    const char *name;
    size_t bytes;

    for (int ps = 0; ps < 4; ps++) {
        tconv_pass ts = (tconv_pass)ps;
        CHECK(run(ts, &p, &config, &t, ws, ws_bytes) == TCONV_SUCCESS, "%s: valid call", pass_names[ps]);
        CHECK(run(ts, NULL, &config, &t, ws, ws_bytes) == TCONV_INVALID_POINTER, "%s: NULL problem", pass_names[ps]);
        CHECK(run(ts, &p, NULL, &t, ws, ws_bytes) == TCONV_INVALID_POINTER, "%s: NULL config", pass_names[ps]);
        /* each tensor NULL in turn: an error for those the pass needs */
        for (int i = 0; i < TENSORS; i++) {
            tensors u = t;
            u.at[i] = NULL;
            CHECK(run(ts, &p, &config, &u, ws, ws_bytes) ==
                      (required[ps][i] ? TCONV_INVALID_POINTER : TCONV_SUCCESS),
                  "%s: tensor %d NULL", pass_names[ps], i);
        }
        tconv_config bad = config;
        bad.dtype = (tconv_dtype)9;
        CHECK(run(ts, &p, &bad, &t, ws, ws_bytes) == TCONV_INVALID_DTYPE, "%s: dtype 9", pass_names[ps]);
        bad = config;
        bad.precision = (tconv_precision)7;
        CHECK(run(ts, &p, &bad, &t, ws, ws_bytes) == TCONV_INVALID_PRECISION, "%s: precision 7", pass_names[ps]);
        bad = config;
        bad.algorithm = "no_such_variant";
        CHECK(run(ts, &p, &bad, &t, ws, ws_bytes) == TCONV_INVALID_ALGORITHM, "%s: unknown algorithm", pass_names[ps]);
        CHECK(tconv_cuda_algorithm(&p, ts, &bad, &name) == TCONV_INVALID_ALGORITHM, "%s: unknown algorithm", pass_names[ps]);
        /* a variant of another pass */
        for (int v = 0; (bad.algorithm = tconv_cuda_variant(v, &pass)) != NULL; v++)
            if (pass != ts)
                break;
        CHECK(run(ts, &p, &bad, &t, ws, ws_bytes) == TCONV_UNSUPPORTED_ALGORITHM,
              "%s: algorithm %s of another pass", pass_names[ps], bad.algorithm);
        tconv_problem q = p;
        q.stride_h = 0;
        CHECK(run(ts, &q, &config, &t, ws, ws_bytes) == TCONV_INVALID_STRIDE, "%s: stride 0", pass_names[ps]);
        q = p;
        q.output_padding_w = 2; /* = max(stride, dilation) */
        CHECK(run(ts, &q, &config, &t, ws, ws_bytes) == TCONV_INVALID_OUTPUT_PADDING, "%s: output_padding", pass_names[ps]);

        /* the workspace: NULL, or one byte short, when the variant needs some */
        CHECK(tconv_cuda_workspace_size(&p, ts, &config, &bytes) == TCONV_SUCCESS, "%s: workspace size", pass_names[ps]);
        if (bytes > 0) {
            CHECK(run(ts, &p, &config, &t, NULL, bytes) == TCONV_INVALID_WORKSPACE, "%s: NULL workspace", pass_names[ps]);
            CHECK(run(ts, &p, &config, &t, ws, bytes - 1) == TCONV_INVALID_WORKSPACE, "%s: short workspace", pass_names[ps]);
        }
        CHECK(tconv_cuda_workspace_size(&p, ts, &config, NULL) == TCONV_INVALID_POINTER, "%s: NULL bytes", pass_names[ps]);
        CHECK(tconv_cuda_algorithm(&p, ts, &config, NULL) == TCONV_INVALID_POINTER, "%s: NULL name", pass_names[ps]);
    }
    CHECK(tconv_cuda_algorithm(&p, (tconv_pass)4, &config, &name) == TCONV_INVALID_PASS, "pass 4");
    CHECK(tconv_cuda_workspace_size(&p, (tconv_pass)-1, &config, &bytes) == TCONV_INVALID_PASS, "pass -1");

    /* N = 0: empty tensors may be NULL, as PyTorch's are */
    p.n = 0;
    CHECK(tconv_forward_cuda(&p, &config, NULL, t.at[WEIGHT], NULL, NULL, NULL, 0, NULL) == TCONV_SUCCESS,
          "forward with N = 0 and NULL empty tensors");
    CHECK(tconv_grad_weight_cuda(&p, &config, NULL, NULL, t.at[GRAD_WEIGHT], NULL, 0, NULL) == TCONV_SUCCESS,
          "grad_weight with N = 0 and NULL empty tensors");
    CHECK(tconv_grad_weight_cuda(&p, &config, NULL, NULL, NULL, NULL, 0, NULL) == TCONV_INVALID_POINTER,
          "grad_weight with N = 0 and NULL grad_weight");
    cuda_must(cudaDeviceSynchronize(), "invalid-argument calls");
    CHECK(tconv_cuda_last_error() == 0, "tconv_cuda_last_error() after successful calls");

    for (int i = 0; i < TENSORS; i++)
        cuda_must(cudaFree(t.at[i]), "cudaFree");
    cuda_must(cudaFree(ws), "cudaFree");
}

int main(int argc, char **argv)
{
    const int small = argc > 1 && strcmp(argv[1], "--small") == 0;
    if (argc > 2 || (argc == 2 && !small)) {
        fprintf(stderr, "usage: %s [--small]\n", argv[0]);
        return 2;
    }
    int devices = 0;
    if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
        fprintf(stderr, "test_cuda: no usable CUDA device\n");
        return 2;
    }
    struct cudaDeviceProp prop;
    cuda_must(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
    printf("device: %s\n", prop.name);
    test_seed();

    check_invalid_arguments();
    static tconv_problem listed[MAX_PROBLEMS];
    static char names[MAX_PROBLEMS][64];
    const int count = read_problems(small ? "small" : "test", listed, names, MAX_PROBLEMS);
    CHECK(count > 0, "no problem tagged %s in %s", small ? "small" : "test", problems_path());
    char desc[256];
    for (int i = 0; i < count; i++) {
        tconv_problem p = listed[i];
        printf("%s: %s\n", names[i], problem_string(&p, desc));
        check_problem(&p);
    }
    for (int i = 0; i < (small ? 1 : RANDOM); i++) {
        tconv_problem p;
        random_problem(&p, small ? 4 : 10);
        printf("random: %s\n", problem_string(&p, desc));
        check_problem(&p);
    }
    return check_report();
}
