/*
 * test_plans.c - the CUDA library's host side without a GPU: plans, the variant table and the
 * dispatcher, on the fake CUDA runtime (fake_cuda.c: an 8.0 and a 9.0 device, launches
 * recorded instead of run).
 *
 * Checks that a plan chooses what the one-shot calls choose, launches what they launch, and
 * sets kernel attributes only while it is made; that every misuse of a plan (NULL, destroyed,
 * another pass, problem or device) is refused with TCONV_INVALID_PLAN and queues nothing; and
 * that a variant named in config->algorithm runs wherever it can, whatever the dispatcher
 * prefers.  Prints "N passed, M failed"; exits non-zero on a failure.
 */
#include <string.h>

#include "check.h"
#include "fake_cuda.h"

int cudaSetDevice(int device);

enum { X, WEIGHT, BIAS, GRAD_Y, Y, GRAD_X, GRAD_WEIGHT, GRAD_BIAS, WORKSPACE, BUFFERS };

/* Device addresses that are never dereferenced: launches are only recorded. */
static void *fake_address(int buffer) { return (void *)((uintptr_t)(buffer + 1) << 40); }

/* One pass on a plan (plan != NULL) or one-shot (plan == NULL). */
static tconv_status run(const tconv_plan *plan, tconv_pass pass, const tconv_problem *p, const tconv_config *config,
                        size_t workspace_bytes)
{
    void *ws = workspace_bytes ? fake_address(WORKSPACE) : NULL;
    void *a[BUFFERS];
    for (int i = 0; i < BUFFERS; i++)
        a[i] = fake_address(i);
    switch (pass) {
    case TCONV_PASS_FORWARD:
        return plan ? tconv_plan_forward(plan, p, a[X], a[WEIGHT], a[BIAS], a[Y], ws, workspace_bytes, NULL)
                    : tconv_forward_cuda(p, config, a[X], a[WEIGHT], a[BIAS], a[Y], ws, workspace_bytes, NULL);
    case TCONV_PASS_GRAD_INPUT:
        return plan ? tconv_plan_grad_input(plan, p, a[GRAD_Y], a[WEIGHT], a[GRAD_X], ws, workspace_bytes, NULL)
                    : tconv_grad_input_cuda(p, config, a[GRAD_Y], a[WEIGHT], a[GRAD_X], ws, workspace_bytes, NULL);
    case TCONV_PASS_GRAD_WEIGHT:
        return plan ? tconv_plan_grad_weight(plan, p, a[X], a[GRAD_Y], a[GRAD_WEIGHT], ws, workspace_bytes, NULL)
                    : tconv_grad_weight_cuda(p, config, a[X], a[GRAD_Y], a[GRAD_WEIGHT], ws, workspace_bytes, NULL);
    default:
        return plan ? tconv_plan_grad_bias(plan, p, a[GRAD_Y], a[GRAD_BIAS], ws, workspace_bytes, NULL)
                    : tconv_grad_bias_cuda(p, config, a[GRAD_Y], a[GRAD_BIAS], ws, workspace_bytes, NULL);
    }
}

/* The recorded events as one comparable string. */
static void log_string(char *out, size_t size)
{
    int count;
    const fake_cuda_event *e = fake_cuda_log(&count);
    size_t used = 0;
    out[0] = '\0';
    for (int i = 0; i < count && used < size; i++) {
        const int n = e[i].kind == FAKE_LAUNCH
                          ? snprintf(out + used, size - used, "%s<<<%u,%u,%u|%u|%zu>>>;", e[i].kernel, e[i].grid[0],
                                     e[i].grid[1], e[i].grid[2], e[i].block[0], e[i].smem)
                          : snprintf(out + used, size - used, "memset %p %zu;", e[i].ptr, e[i].bytes);
        used += n > 0 ? (size_t)n : 0;
    }
}

static const char *const pass_names[] = {"forward", "grad_input", "grad_weight", "grad_bias"};

/* A plan of every pass of p: the same choice, workspace and launches as the one-shot calls;
 * attributes set only while made; then refused for every misuse. */
static void check_plans(const tconv_problem *p, const tconv_config *config, int device)
{
    char desc[256], once[8192], planned[8192];
    problem_string(p, desc);
    for (int pass = 0; pass < 4; pass++) {
        const char *name = NULL, *plan_name = NULL;
        size_t bytes = 0, plan_bytes = 0;
        const tconv_status st = tconv_cuda_algorithm(p, (tconv_pass)pass, config, &name);
        tconv_plan *plan = NULL;
        const tconv_status pst = tconv_plan_create(&plan, p, (tconv_pass)pass, config);
        CHECK(st == pst, "%s %s: plan_create %d, one-shot %d", pass_names[pass], desc, (int)pst, (int)st);
        if (st != TCONV_SUCCESS) {
            CHECK(plan == NULL, "%s %s: a failed plan_create left a plan", pass_names[pass], desc);
            continue;
        }
        CHECK(tconv_cuda_workspace_size(p, (tconv_pass)pass, config, &bytes) == TCONV_SUCCESS, "workspace_size");
        CHECK(tconv_plan_workspace_size(plan, &plan_bytes) == TCONV_SUCCESS && plan_bytes == bytes,
              "%s %s: plan workspace %zu, one-shot %zu", pass_names[pass], desc, plan_bytes, bytes);
        CHECK(tconv_plan_algorithm(plan, &plan_name) == TCONV_SUCCESS && strcmp(plan_name, name) == 0,
              "%s %s: plan runs %s, one-shot %s", pass_names[pass], desc, plan_name ? plan_name : "?", name);

        fake_cuda_log_clear();
        CHECK(run(NULL, (tconv_pass)pass, p, config, bytes) == TCONV_SUCCESS, "%s %s: one-shot run", pass_names[pass],
              desc);
        log_string(once, sizeof(once));
        const long attributes = fake_cuda_attribute_calls();
        for (int rep = 0; rep < 3; rep++) {
            fake_cuda_log_clear();
            CHECK(run(plan, (tconv_pass)pass, p, config, bytes) == TCONV_SUCCESS, "%s %s: plan run",
                  pass_names[pass], desc);
            log_string(planned, sizeof(planned));
            CHECK(strcmp(once, planned) == 0, "%s %s: the plan launches\n  %s\nthe one-shot call\n  %s",
                  pass_names[pass], desc, planned, once);
        }
        CHECK(fake_cuda_attribute_calls() == attributes, "%s %s: runs set kernel attributes", pass_names[pass], desc);

        /* misuse: nothing may be queued */
        fake_cuda_log_clear();
        const tconv_pass other = (tconv_pass)((pass + 1) % 4);
        CHECK(run(plan, other, p, config, bytes) == TCONV_INVALID_PLAN, "%s plan run as %s", pass_names[pass],
              pass_names[other]);
        tconv_problem q = *p;
        q.c_out += q.groups;
        CHECK(run(plan, (tconv_pass)pass, &q, config, bytes) == TCONV_INVALID_PLAN,
              "%s %s: plan run with another C_out", pass_names[pass], desc);
        q = *p;
        q.padding_w += 1;
        CHECK(run(plan, (tconv_pass)pass, &q, config, bytes) == TCONV_INVALID_PLAN,
              "%s %s: plan run with another padding", pass_names[pass], desc);
        cudaSetDevice(1 - device);
        CHECK(run(plan, (tconv_pass)pass, p, config, bytes) == TCONV_INVALID_PLAN,
              "%s %s: plan run on another device", pass_names[pass], desc);
        cudaSetDevice(device);
        if (bytes > 0)
            CHECK(run(plan, (tconv_pass)pass, p, config, bytes - 1) == TCONV_INVALID_WORKSPACE,
                  "%s %s: plan run with a short workspace", pass_names[pass], desc);
        int count;
        fake_cuda_log(&count);
        CHECK(count == 0, "%s %s: a refused run queued %d operations", pass_names[pass], desc, count);

        CHECK(tconv_plan_destroy(plan) == TCONV_SUCCESS, "plan_destroy");
        CHECK(run(plan, (tconv_pass)pass, p, config, bytes) == TCONV_INVALID_PLAN, "%s %s: destroyed plan ran",
              pass_names[pass], desc);
        CHECK(tconv_plan_workspace_size(plan, &plan_bytes) == TCONV_INVALID_PLAN, "destroyed plan's workspace");
        CHECK(tconv_plan_algorithm(plan, &plan_name) == TCONV_INVALID_PLAN, "destroyed plan's algorithm");
        CHECK(tconv_plan_destroy(plan) == TCONV_INVALID_PLAN, "a plan destroyed twice");
    }
}

static void check_table(void)
{
    int per_pass[4] = {0, 0, 0, 0}, count = 0;
    tconv_pass pass;
    CHECK(tconv_cuda_available() == 1, "tconv_cuda_available() is not 1");
    CHECK(tconv_cuda_variant(-1, NULL) == NULL, "variant -1 exists");
    for (const char *name; (name = tconv_cuda_variant(count, &pass)) != NULL; count++) {
        CHECK(pass >= TCONV_PASS_FORWARD && pass <= TCONV_PASS_GRAD_BIAS, "%s: pass %d", name, (int)pass);
        per_pass[pass]++;
        for (int j = 0; j < count; j++)
            CHECK(strcmp(name, tconv_cuda_variant(j, NULL)) != 0, "%s is listed twice", name);
    }
    for (int i = 0; i < 4; i++)
        CHECK(per_pass[i] > 0, "no variant of %s", pass_names[i]);
}

static void check_plan_arguments(void)
{
    const tconv_config config = {TCONV_FLOAT32, TCONV_PRECISION_TF32, NULL};
    tconv_problem p = {2, 4, 5, 5, 6, 3, 3, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0};
    tconv_plan *plan = (tconv_plan *)&p; /* must be overwritten with NULL on failure */
    size_t bytes;
    const char *name;
    CHECK(tconv_plan_create(NULL, &p, TCONV_PASS_FORWARD, &config) == TCONV_INVALID_POINTER, "plan_create(NULL)");
    CHECK(tconv_plan_create(&plan, NULL, TCONV_PASS_FORWARD, &config) == TCONV_INVALID_POINTER && plan == NULL,
          "plan_create without a problem");
    CHECK(tconv_plan_create(&plan, &p, TCONV_PASS_FORWARD, NULL) == TCONV_INVALID_POINTER, "plan_create without a config");
    CHECK(tconv_plan_create(&plan, &p, (tconv_pass)7, &config) == TCONV_INVALID_PASS, "plan_create with pass 7");
    p.groups = 4;
    CHECK(tconv_plan_create(&plan, &p, TCONV_PASS_FORWARD, &config) == TCONV_INVALID_GROUPS && plan == NULL,
          "plan_create with groups not dividing C_out");
    p.groups = 1;
    const tconv_config unknown = {TCONV_FLOAT32, TCONV_PRECISION_TF32, "no_such_variant"};
    CHECK(tconv_plan_create(&plan, &p, TCONV_PASS_FORWARD, &unknown) == TCONV_INVALID_ALGORITHM, "unknown algorithm");
    const tconv_config wrong_pass = {TCONV_FLOAT32, TCONV_PRECISION_TF32, "grad_bias_reduce"};
    CHECK(tconv_plan_create(&plan, &p, TCONV_PASS_FORWARD, &wrong_pass) == TCONV_UNSUPPORTED_ALGORITHM,
          "a grad-bias variant named for forward");
    CHECK(tconv_plan_destroy(NULL) == TCONV_SUCCESS, "plan_destroy(NULL)");
    CHECK(tconv_plan_workspace_size(NULL, &bytes) == TCONV_INVALID_PLAN, "workspace_size of NULL");
    CHECK(tconv_plan_algorithm(NULL, &name) == TCONV_INVALID_PLAN, "algorithm of NULL");
    CHECK(tconv_plan_forward(NULL, &p, fake_address(X), fake_address(WEIGHT), NULL, fake_address(Y), NULL, 0, NULL) ==
              TCONV_INVALID_PLAN,
          "forward on a NULL plan");
    CHECK(tconv_plan_destroy((tconv_plan *)&p) == TCONV_INVALID_PLAN, "plan_destroy of something else");
    CHECK(tconv_plan_create(&plan, &p, TCONV_PASS_FORWARD, &config) == TCONV_SUCCESS, "plan_create");
    CHECK(tconv_plan_workspace_size(plan, NULL) == TCONV_INVALID_POINTER, "workspace_size into NULL");
    CHECK(tconv_plan_algorithm(plan, NULL) == TCONV_INVALID_POINTER, "algorithm into NULL");
    CHECK(tconv_plan_forward(plan, NULL, fake_address(X), fake_address(WEIGHT), NULL, fake_address(Y), NULL, 0, NULL) ==
              TCONV_INVALID_POINTER,
          "forward on a plan without a problem");
    CHECK(tconv_plan_forward(plan, &p, NULL, fake_address(WEIGHT), NULL, fake_address(Y), NULL, 0, NULL) ==
              TCONV_INVALID_POINTER,
          "forward on a plan without x");
    CHECK(tconv_plan_destroy(plan) == TCONV_SUCCESS, "plan_destroy");
}

/* A variant named in config->algorithm runs where it can, whatever the dispatcher prefers:
 * the widest FMA tile on 4 output channels, which the dispatcher leaves to the narrow one. */
static void check_forced_variant(void)
{
    const tconv_problem p = {1, 8, 40, 70, 4, 3, 3, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0};
    const tconv_config config = {TCONV_FLOAT32, TCONV_PRECISION_FP32, NULL};
    const tconv_config forced = {TCONV_FLOAT32, TCONV_PRECISION_FP32, "forward_direct_64x256"};
    const char *name = NULL;
    CHECK(tconv_cuda_algorithm(&p, TCONV_PASS_FORWARD, &config, &name) == TCONV_SUCCESS &&
              strcmp(name, "forward_direct_64x256") != 0,
          "the dispatcher picks the 64-channel tile for 4 output channels");
    CHECK(tconv_cuda_algorithm(&p, TCONV_PASS_FORWARD, &forced, &name) == TCONV_SUCCESS &&
              strcmp(name, "forward_direct_64x256") == 0,
          "forward_direct_64x256 named for 4 output channels");
    size_t bytes = 0;
    CHECK(tconv_cuda_workspace_size(&p, TCONV_PASS_FORWARD, &forced, &bytes) == TCONV_SUCCESS, "its workspace");
    CHECK(run(NULL, TCONV_PASS_FORWARD, &p, &forced, bytes) == TCONV_SUCCESS, "forward_direct_64x256 runs");
}

int main(void)
{
    test_seed();
    check_table();
    check_plan_arguments();
    check_forced_variant();
    static const tconv_dtype dtypes[] = {TCONV_FLOAT32, TCONV_FLOAT64, TCONV_FLOAT16, TCONV_BFLOAT16};
    for (int device = 0; device < 2; device++) {
        cudaSetDevice(device);
        for (int i = 0; i < 40; i++) {
            tconv_problem p;
            random_problem(&p, 40);
            if (i % 5 == 0) { /* sizes the tiled variants take */
                p.c_in = 24 * p.groups;
                p.c_out = 32 * p.groups;
                p.w_in = 70;
                p.stride_h = p.stride_w = p.dilation_h = p.dilation_w = 1;
                p.kernel_h = p.kernel_w = 3;
                p.padding_h = p.padding_w = 1;
                p.output_padding_h = p.output_padding_w = 0;
                CHECK(tconv_problem_check(&p) == TCONV_SUCCESS, "a tile-sized problem");
            }
            const tconv_config config = {dtypes[i % 4], i % 8 < 4 ? TCONV_PRECISION_FP32 : TCONV_PRECISION_TF32,
                                         NULL};
            check_plans(&p, &config, device);
        }
    }
    return check_report();
}
