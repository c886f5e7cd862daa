/*
 * check.h - what the C tests share: a seedable RNG, fills, NaN poisoning, error
 * measures, a CHECK macro that counts failures, and random valid problems.
 *
 * Every run draws a fresh seed (from the clock) and prints it; TCONV_TEST_SEED=<seed>
 * replays a run.  Header-only: everything is static inline so a test uses what it needs.
 */
#ifndef TCONV_TESTS_CHECK_H
#define TCONV_TESTS_CHECK_H

#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "problem.h" /* tconv_x_elems, tconv_y_elems, tconv_weight_elems */
#include "tconv.h"

/* ---- random numbers: splitmix64, good enough for test data and trivially replayable ---- */

static uint64_t check_rng_state;

static inline void rng_seed(uint64_t seed) { check_rng_state = seed; }

static inline uint64_t rng_next(void)
{
    uint64_t z = (check_rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [-1, 1), on the grid of 2^-52: the top 53 bits make a double in [0, 1). */
static inline double rng_uniform(void)
{
    return (double)(rng_next() >> 11) * 0x1.0p-52 - 1.0;
}

/* Uniform integer in [lo, hi] (hi - lo is small in tests, so the modulo bias is harmless). */
static inline int64_t rng_int(int64_t lo, int64_t hi)
{
    return lo + (int64_t)(rng_next() % (uint64_t)(hi - lo + 1));
}

/* The seed of this run: TCONV_TEST_SEED if set, else from the clock.  Seeds the RNG and
 * prints the seed so that a failure can be replayed. */
static inline uint64_t test_seed(void)
{
    const char *env = getenv("TCONV_TEST_SEED");
    uint64_t seed;
    if (env != NULL && *env != '\0') {
        seed = strtoull(env, NULL, 0);
    } else {
        struct timespec ts;
        timespec_get(&ts, TIME_UTC);
        seed = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    }
    printf("seed %" PRIu64 " (TCONV_TEST_SEED=%" PRIu64 " replays this run)\n", seed, seed);
    rng_seed(seed);
    return seed;
}

/* ---- arrays ---- */

static inline void fill_f32(float *a, int64_t count)
{
    for (int64_t i = 0; i < count; i++)
        a[i] = (float)rng_uniform();
}

static inline void fill_f64(double *a, int64_t count)
{
    for (int64_t i = 0; i < count; i++)
        a[i] = rng_uniform();
}

/* Outputs are poisoned before the code under test runs, so an element it never writes
 * shows up as NaN instead of passing by luck. */
static inline void poison_f32(float *a, int64_t count)
{
    for (int64_t i = 0; i < count; i++)
        a[i] = NAN;
}

static inline void poison_f64(double *a, int64_t count)
{
    for (int64_t i = 0; i < count; i++)
        a[i] = NAN;
}

/* max |a - ref|; INFINITY as soon as an element of a (or of ref) is NaN or infinite. */
static inline double max_abs_diff_f64(const double *a, const double *ref, int64_t count)
{
    double m = 0.0;
    for (int64_t i = 0; i < count; i++) {
        double d = fabs(a[i] - ref[i]);
        if (!isfinite(d))
            return INFINITY;
        if (d > m)
            m = d;
    }
    return m;
}

static inline double max_abs_diff_f32(const float *a, const double *ref, int64_t count)
{
    double m = 0.0;
    for (int64_t i = 0; i < count; i++) {
        double d = fabs((double)a[i] - ref[i]);
        if (!isfinite(d))
            return INFINITY;
        if (d > m)
            m = d;
    }
    return m;
}

/* max |a|, the scale for relative errors (INFINITY if a holds a NaN). */
static inline double max_abs_f64(const double *a, int64_t count)
{
    double m = 0.0;
    for (int64_t i = 0; i < count; i++) {
        if (!isfinite(a[i]))
            return INFINITY;
        if (fabs(a[i]) > m)
            m = fabs(a[i]);
    }
    return m;
}

/* ---- counting checks ---- */

static int check_passed, check_failed;

/* CHECK(condition, printf-style message, ...): counts the result; a failure prints
 * file:line and the message. */
#define CHECK(cond, ...)                                                           \
    do {                                                                           \
        if (cond) {                                                                \
            check_passed++;                                                        \
        } else {                                                                   \
            check_failed++;                                                        \
            fflush(stdout); /* keeps the order when both streams go to one file */ \
            fprintf(stderr, "%s:%d: FAILED: ", __FILE__, __LINE__);                \
            fprintf(stderr, __VA_ARGS__);                                          \
            fputc('\n', stderr);                                                   \
        }                                                                          \
    } while (0)

/* Prints "N passed, M failed" and returns the exit status of the test program. */
static inline int check_report(void)
{
    printf("%d passed, %d failed\n", check_passed, check_failed);
    return check_failed == 0 ? 0 : 1;
}

/* ---- problems ---- */

/* One line describing p, for failure messages: buf must hold 256 chars. */
static inline const char *problem_string(const tconv_problem *p, char *buf)
{
    snprintf(buf, 256,
             "N=%" PRId64 " C_in=%" PRId64 " C_out=%" PRId64 " in=%" PRId64 "x%" PRId64
             " k=%" PRId64 "x%" PRId64 " stride=%" PRId64 "x%" PRId64 " padding=%" PRId64
             "x%" PRId64 " output_padding=%" PRId64 "x%" PRId64 " dilation=%" PRId64 "x%" PRId64
             " groups=%" PRId64,
             p->n, p->c_in, p->c_out, p->h_in, p->w_in, p->kernel_h, p->kernel_w, p->stride_h,
             p->stride_w, p->padding_h, p->padding_w, p->output_padding_h, p->output_padding_w,
             p->dilation_h, p->dilation_w, p->groups);
    return buf;
}

/* Draws a random valid (checked: h_out, w_out set) problem over every argument, each axis on
 * its own: stride and dilation 1-3, kernel 1-4, padding up to the kernel's reach,
 * output_padding < max(stride, dilation), groups 1-3 dividing both channel counts, N 1-2,
 * input sides 1..max_size, channels per group 1..max(1, max_size / 2). */
static inline void random_problem(tconv_problem *p, int max_size)
{
    int64_t per_group = max_size / 2 > 1 ? max_size / 2 : 1;
    do {
        p->n = rng_int(1, 2);
        p->groups = rng_int(1, 3);
        p->c_in = p->groups * rng_int(1, per_group);
        p->c_out = p->groups * rng_int(1, per_group);
        p->h_in = rng_int(1, max_size);
        p->w_in = rng_int(1, max_size);
        p->kernel_h = rng_int(1, 4);
        p->kernel_w = rng_int(1, 4);
        p->stride_h = rng_int(1, 3);
        p->stride_w = rng_int(1, 3);
        p->dilation_h = rng_int(1, 3);
        p->dilation_w = rng_int(1, 3);
        p->padding_h = rng_int(0, p->dilation_h * (p->kernel_h - 1));
        p->padding_w = rng_int(0, p->dilation_w * (p->kernel_w - 1));
        p->output_padding_h =
            rng_int(0, (p->stride_h > p->dilation_h ? p->stride_h : p->dilation_h) - 1);
        p->output_padding_w =
            rng_int(0, (p->stride_w > p->dilation_w ? p->stride_w : p->dilation_w) - 1);
    } while (tconv_problem_check(p) != TCONV_SUCCESS); /* a rare too-large padding: redraw */
}

/* ---- the one problem list (tests/problems.txt) ---- */

/* A problem of a list line ("NAME [TAG...] N=.. C_in=.. ...", tests/problems.txt): 1 with *p
 * checked, the name in name (name_size bytes) and whether it carries `tag` (NULL: any) in
 * *tagged; 0 for a line without a problem (blank, a comment); -1 for a line that cannot be
 * read or whose problem tconv_problem_check refuses. */
static inline int problem_line(const char *line, const char *tag, tconv_problem *p, char *name, size_t name_size,
                               int *tagged)
{
    char copy[512];
    snprintf(copy, sizeof(copy), "%s", line);
    char *hash = strchr(copy, '#');
    if (hash)
        *hash = '\0';
    char *tok = strtok(copy, " \t\r\n");
    if (tok == NULL)
        return 0;
    snprintf(name, name_size, "%s", tok);
    memset(p, 0, sizeof(*p));
    p->stride_h = p->stride_w = p->dilation_h = p->dilation_w = p->groups = 1;
    *tagged = tag == NULL;
    while ((tok = strtok(NULL, " \t\r\n")) != NULL) {
        char *eq = strchr(tok, '=');
        if (eq == NULL) { /* a tag */
            *tagged |= tag != NULL && strcmp(tok, tag) == 0;
            continue;
        }
        *eq = '\0';
        int64_t a = 0, b = 0;
        const int read = sscanf(eq + 1, "%" SCNd64 "x%" SCNd64, &a, &b);
        if (read < 1)
            return -1;
        if (read == 1)
            b = a;
        if (strcmp(tok, "N") == 0) p->n = a;
        else if (strcmp(tok, "C_in") == 0) p->c_in = a;
        else if (strcmp(tok, "C_out") == 0) p->c_out = a;
        else if (strcmp(tok, "H") == 0) p->h_in = a;
        else if (strcmp(tok, "W") == 0) p->w_in = a;
        else if (strcmp(tok, "k") == 0) p->kernel_h = a, p->kernel_w = b;
        else if (strcmp(tok, "s") == 0) p->stride_h = a, p->stride_w = b;
        else if (strcmp(tok, "p") == 0) p->padding_h = a, p->padding_w = b;
        else if (strcmp(tok, "op") == 0) p->output_padding_h = a, p->output_padding_w = b;
        else if (strcmp(tok, "d") == 0) p->dilation_h = a, p->dilation_w = b;
        else if (strcmp(tok, "g") == 0) p->groups = a;
        else if (strcmp(tok, "bias") != 0) return -1;
    }
    return tconv_problem_check(p) == TCONV_SUCCESS ? 1 : -1;
}

/* The path of the problem list: $TCONV_PROBLEMS, else tests/problems.txt (from the
 * repository's root, where the tests run). */
static inline const char *problems_path(void)
{
    const char *env = getenv("TCONV_PROBLEMS");
    return env != NULL && *env != '\0' ? env : "tests/problems.txt";
}

/* The problems of the list that carry `tag`, in its order: at most max into out (and their
 * names into names, when not NULL); returns how many.  Exits with a message when the list
 * cannot be read or holds a line it cannot take. */
static inline int read_problems(const char *tag, tconv_problem *out, char (*names)[64], int max)
{
    FILE *f = fopen(problems_path(), "r");
    if (f == NULL) {
        fprintf(stderr, "cannot open the problem list %s (run from the repository's root, or set TCONV_PROBLEMS)\n",
                problems_path());
        exit(2);
    }
    char line[512], name[64];
    int count = 0, number = 0, tagged;
    tconv_problem p;
    while (fgets(line, sizeof(line), f) != NULL) {
        number++;
        const int got = problem_line(line, tag, &p, name, sizeof(name), &tagged);
        if (got < 0) {
            fprintf(stderr, "%s:%d: not a valid problem: %s", problems_path(), number, line);
            exit(2);
        }
        if (got == 1 && tagged && count < max) {
            out[count] = p;
            if (names != NULL)
                snprintf(names[count], sizeof(names[count]), "%s", name);
            count++;
        }
    }
    fclose(f);
    return count;
}

#endif /* TCONV_TESTS_CHECK_H */
