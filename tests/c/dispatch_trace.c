/*
 * dispatch_trace.c - what the CUDA library's host side does for many problems, without a
 * GPU: linked with the fake CUDA runtime (fake_cuda.c), it prints, for each problem, pass,
 * dtype, precision and fake device (an 8.0 and a 9.0 device), the variant the dispatcher
 * picks, the workspace it asks for, and the kernels, grids, blocks and shared memory it
 * would launch (memsets too).  Two builds of the library that print the same trace dispatch
 * and launch alike; `diff` of two traces shows where they do not.
 *
 *   build/dispatch_trace [SEED [COUNT [SHAPES]]]
 *
 *   SEED, COUNT   COUNT random problems from SEED (default 1 and 2000)
 *   SHAPES        also the problems of a list (tests/problems.txt's format)
 *
 * Odd-numbered problems get tensors at element-aligned but not 16-byte-aligned addresses.
 */
#include <string.h>

#include "check.h"
#include "fake_cuda.h"

int cudaSetDevice(int device);

static int64_t pick_of(const int64_t *values, int count) { return values[rng_int(0, count - 1)]; }

/* A random valid problem: channels around the tiles' sizes, strides and kernels up to the
 * large ones, images from 1x1 to a few column strips. */
static void random_layer(tconv_problem *p)
{
    static const int64_t per_group[] = {1, 2, 3, 4, 5, 8, 16, 23, 24, 32, 40, 64, 67, 128};
    static const int64_t kernels[] = {1, 2, 3, 3, 3, 4, 4, 5, 7, 9, 16, 64};
    static const int64_t strides[] = {1, 1, 1, 2, 2, 3, 4, 8, 32};
    do {
        memset(p, 0, sizeof(*p));
        p->groups = rng_int(0, 3) == 0 ? rng_int(2, 4) : 1;
        const int depthwise = rng_int(0, 9) == 0;
        const int64_t cig = depthwise ? 1 : pick_of(per_group, 14);
        const int64_t cog = depthwise ? 1 : pick_of(per_group, 14);
        if (depthwise)
            p->groups = rng_int(1, 64);
        p->n = rng_int(0, 9) == 0 ? 0 : rng_int(1, 4);
        p->c_in = cig * p->groups;
        p->c_out = cog * p->groups;
        p->h_in = rng_int(0, 3) == 0 ? rng_int(1, 4) : rng_int(1, 140);
        p->w_in = rng_int(0, 3) == 0 ? rng_int(1, 4) : rng_int(1, 600);
        p->kernel_h = pick_of(kernels, 12);
        p->kernel_w = rng_int(0, 3) == 0 ? pick_of(kernels, 12) : p->kernel_h;
        p->stride_h = pick_of(strides, 9);
        p->stride_w = rng_int(0, 3) == 0 ? pick_of(strides, 9) : p->stride_h;
        p->dilation_h = rng_int(0, 3) == 0 ? rng_int(2, 3) : 1;
        p->dilation_w = rng_int(0, 3) == 0 ? rng_int(1, 3) : p->dilation_h;
        p->padding_h = rng_int(0, p->kernel_h / 2 + 1);
        p->padding_w = rng_int(0, p->kernel_w / 2 + 1);
        const int64_t mh = p->stride_h > p->dilation_h ? p->stride_h : p->dilation_h;
        const int64_t mw = p->stride_w > p->dilation_w ? p->stride_w : p->dilation_w;
        p->output_padding_h = rng_int(0, 2) == 0 ? rng_int(0, mh - 1) : 0;
        p->output_padding_w = rng_int(0, 2) == 0 ? rng_int(0, mw - 1) : 0;
        if (rng_int(0, 3) == 0) { /* what the tensor-core tiles take: k3 s1 or k4 s2, wide rows */
            p->kernel_h = p->kernel_w = rng_int(3, 4);
            p->stride_h = p->stride_w = p->kernel_h - 2;
            p->dilation_h = p->dilation_w = 1;
            p->padding_h = p->padding_w = rng_int(0, 1);
            p->output_padding_h = p->output_padding_w = 0;
            p->w_in = rng_int(30, 300);
        }
    } while (tconv_problem_check(p) != TCONV_SUCCESS ||
             (p->n * p->c_in * p->h_in * p->w_in > ((int64_t)1 << 31)));
}

/* ---- the trace ---- */

enum { X, WEIGHT, BIAS, GRAD_Y, Y, GRAD_X, GRAD_WEIGHT, GRAD_BIAS, WORKSPACE, BUFFERS };
static const char *const buffer_names[BUFFERS] = {"x", "weight", "bias", "grad_y", "y", "grad_x", "grad_weight",
                                                  "grad_bias", "workspace"};
#define BUFFER_BASE(i) ((uintptr_t)(i + 1) << 40)

static void print_pointer(void *ptr)
{
    const uintptr_t at = (uintptr_t)ptr;
    const int i = (int)(at >> 40) - 1;
    if (i >= 0 && i < BUFFERS)
        printf("%s+%" PRIuPTR, buffer_names[i], at - BUFFER_BASE(i));
    else
        printf("%#" PRIxPTR, at);
}

static const char *const pass_names[] = {"forward", "grad_input", "grad_weight", "grad_bias"};
static const struct {
    const char *name;
    tconv_dtype dtype;
    tconv_precision precision;
    int elem;
} dtypes[] = {
    {"float32/fp32", TCONV_FLOAT32, TCONV_PRECISION_FP32, 4}, {"float32/tf32", TCONV_FLOAT32, TCONV_PRECISION_TF32, 4},
    {"float64", TCONV_FLOAT64, TCONV_PRECISION_FP32, 8},      {"float16", TCONV_FLOAT16, TCONV_PRECISION_FP32, 2},
    {"bfloat16", TCONV_BFLOAT16, TCONV_PRECISION_FP32, 2},
};

static void trace(const tconv_problem *p, const char *name, int misaligned)
{
    for (int dev = 0; dev < 2; dev++) {
        cudaSetDevice(dev);
        for (int d = 0; d < (int)(sizeof(dtypes) / sizeof(dtypes[0])); d++) {
            const tconv_config config = {dtypes[d].dtype, dtypes[d].precision, NULL};
            void *at[BUFFERS];
            for (int i = 0; i < BUFFERS; i++)
                at[i] = (void *)(BUFFER_BASE(i) + (misaligned && i != WORKSPACE ? (uintptr_t)dtypes[d].elem : 0));
            for (int pass = 0; pass < 4; pass++) {
                printf("sm%d0 %s %s %s:", dev ? 9 : 8, name, dtypes[d].name, pass_names[pass]);
                const char *algorithm = NULL;
                size_t bytes = 0;
                tconv_status st = tconv_cuda_algorithm(p, (tconv_pass)pass, &config, &algorithm);
                if (st != TCONV_SUCCESS) {
                    printf(" status %d\n", (int)st);
                    continue;
                }
                st = tconv_cuda_workspace_size(p, (tconv_pass)pass, &config, &bytes);
                printf(" %s workspace %zu", algorithm, st == TCONV_SUCCESS ? bytes : (size_t)-1);
                fake_cuda_log_clear();
                void *ws = bytes ? at[WORKSPACE] : NULL;
                switch (pass) {
                case TCONV_PASS_FORWARD:
                    st = tconv_forward_cuda(p, &config, at[X], at[WEIGHT], at[BIAS], at[Y], ws, bytes, NULL);
                    break;
                case TCONV_PASS_GRAD_INPUT:
                    st = tconv_grad_input_cuda(p, &config, at[GRAD_Y], at[WEIGHT], at[GRAD_X], ws, bytes, NULL);
                    break;
                case TCONV_PASS_GRAD_WEIGHT:
                    st = tconv_grad_weight_cuda(p, &config, at[X], at[GRAD_Y], at[GRAD_WEIGHT], ws, bytes, NULL);
                    break;
                default:
                    st = tconv_grad_bias_cuda(p, &config, at[GRAD_Y], at[GRAD_BIAS], ws, bytes, NULL);
                    break;
                }
                printf(" -> status %d", (int)st);
                int count;
                const fake_cuda_event *e = fake_cuda_log(&count);
                for (int i = 0; i < count; i++) {
                    if (e[i].kind == FAKE_LAUNCH) {
                        printf(" | %s <<<(%u,%u,%u), (%u,%u,%u), %zu>>>", e[i].kernel, e[i].grid[0], e[i].grid[1],
                               e[i].grid[2], e[i].block[0], e[i].block[1], e[i].block[2], e[i].smem);
                    } else {
                        printf(" | memset ");
                        print_pointer(e[i].ptr);
                        printf(" %d %zu", e[i].value, e[i].bytes);
                    }
                }
                printf("%s\n", fake_cuda_log_overflowed() ? " | ..." : "");
            }
        }
    }
}

int main(int argc, char **argv)
{
    if (argc > 4) {
        fprintf(stderr, "usage: %s [SEED [COUNT [SHAPES]]]\n", argv[0]);
        return 2;
    }
    rng_seed(argc > 1 ? strtoull(argv[1], NULL, 10) : 1);
    const long count = argc > 2 ? strtol(argv[2], NULL, 10) : 2000;
    char desc[256];
    for (long i = 0; i < count; i++) {
        tconv_problem p;
        random_layer(&p);
        trace(&p, problem_string(&p, desc), (int)(i % 2));
    }
    if (argc > 3) {
        FILE *f = fopen(argv[3], "r");
        if (f == NULL) {
            fprintf(stderr, "dispatch_trace: cannot open %s\n", argv[3]);
            return 2;
        }
        char line[512], name[64];
        int tagged;
        while (fgets(line, sizeof(line), f)) {
            tconv_problem p;
            if (problem_line(line, NULL, &p, name, sizeof(name), &tagged) == 1)
                trace(&p, name, 0);
        }
        fclose(f);
    }
    return 0;
}
