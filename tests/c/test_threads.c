/*
 * test_threads.c - tconv called from several host threads at once.  Jobs (a problem, a dtype,
 * the passes to run) are first run one at a time; then threads run them all at once, each
 * thread its own jobs several times over, and every output must be bitwise equal to the
 * serial run's.  Outputs are filled with 0xff bytes (NaN) before each call.
 *
 *   CPU entry points: every pass in float32 and float64, problems small and large enough for
 *   the passes' own OpenMP teams (which then run inside each thread).
 *   Built with TCONV_TEST_CUDA (build/test_threads_cuda): also the CUDA entry points, each
 *   thread on a non-blocking stream of its own: every pass in every dtype chosen by the
 *   dispatcher, and every variant forced by name on a problem it accepts (the problems of
 *   tests/problems.txt tagged variants).
 *
 *   build/test_threads                    (make c-test)
 *   build/test_threads_cuda               (scripts/gpu_test.sh)
 *   TCONV_TEST_SEED=<seed> replays a run
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "tconv.h"

#ifdef TCONV_TEST_CUDA
#include "device.h"
#endif

enum { THREADS = 6, REPEATS = 3, PASSES = 4 };

static const char *const pass_names[PASSES] = {"forward", "grad_input", "grad_weight", "grad_bias"};

/* The tensors of a job: inputs x, weight, bias, grad_y, and outputs y, grad_x, grad_weight,
 * grad_bias (the output of pass i is out[i]). */
typedef struct job {
    tconv_problem p;
    int f64;               /* CPU jobs: float64, else float32 */
    const char *label;     /* CUDA jobs: dtype and variant */
    int passes[PASSES];    /* which passes the job runs */
    void *in[4], *out[PASSES];
    size_t out_bytes[PASSES];
    void *serial[PASSES];  /* host copies of the serial run's outputs */
    void *got[PASSES];     /* host copies of a threaded run's outputs (CUDA jobs) */
#ifdef TCONV_TEST_CUDA
    tconv_config config;
    void *workspace;
    size_t workspace_bytes;
#endif
    int calls_failed, mismatches[PASSES];
} job;

/* A job's run: into `out` (CPU jobs: the job's own buffers; CUDA jobs: host copies). */
typedef void (*run_fn)(job *j, void *stream, void *const out[PASSES]);

typedef struct worker {
    job *jobs;
    int count, first, step;
    run_fn run;
    int cuda;
} worker;

/* ---- the CPU entry points ---- */

static void run_cpu(job *j, void *stream, void *const out[PASSES])
{
    (void)stream;
    const tconv_problem *p = &j->p;
    for (int k = 0; k < PASSES; k++)
        memset(out[k], 0xff, j->out_bytes[k]);
    tconv_status st[PASSES];
    if (j->f64) {
        double *const *in = (double *const *)j->in;
        st[0] = tconv_forward_cpu_f64(p, in[0], in[1], in[2], out[0]);
        st[1] = tconv_grad_input_cpu_f64(p, in[3], in[1], out[1]);
        st[2] = tconv_grad_weight_cpu_f64(p, in[0], in[3], out[2]);
        st[3] = tconv_grad_bias_cpu_f64(p, in[3], out[3]);
    } else {
        float *const *in = (float *const *)j->in;
        st[0] = tconv_forward_cpu_f32(p, in[0], in[1], in[2], out[0]);
        st[1] = tconv_grad_input_cpu_f32(p, in[3], in[1], out[1]);
        st[2] = tconv_grad_weight_cpu_f32(p, in[0], in[3], out[2]);
        st[3] = tconv_grad_bias_cpu_f32(p, in[3], out[3]);
    }
    for (int k = 0; k < PASSES; k++)
        j->calls_failed += st[k] != TCONV_SUCCESS;
}

static void *alloc_or_exit(size_t bytes)
{
    void *ptr = malloc(bytes > 0 ? bytes : 1);
    if (ptr == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return ptr;
}

static void make_cpu_job(job *j, const tconv_problem *p, int f64)
{
    memset(j, 0, sizeof *j);
    j->p = *p;
    j->f64 = f64;
    const size_t size = f64 ? sizeof(double) : sizeof(float);
    const int64_t in_elems[4] = {tconv_x_elems(p), tconv_weight_elems(p), p->c_out, tconv_y_elems(p)};
    const int64_t out_elems[PASSES] = {tconv_y_elems(p), tconv_x_elems(p), tconv_weight_elems(p), p->c_out};
    for (int i = 0; i < 4; i++) {
        j->in[i] = alloc_or_exit((size_t)in_elems[i] * size);
        for (int64_t e = 0; e < in_elems[i]; e++) {
            if (f64)
                ((double *)j->in[i])[e] = rng_uniform();
            else
                ((float *)j->in[i])[e] = (float)rng_uniform();
        }
    }
    for (int k = 0; k < PASSES; k++) {
        j->passes[k] = 1;
        j->out_bytes[k] = (size_t)out_elems[k] * size;
        j->out[k] = alloc_or_exit(j->out_bytes[k]);
        j->serial[k] = alloc_or_exit(j->out_bytes[k]);
    }
}

static void free_job(job *j, int cuda)
{
    for (int k = 0; k < PASSES; k++) {
        free(j->serial[k]);
        free(j->got[k]);
        if (!cuda)
            free(j->out[k]);
    }
    if (!cuda)
        for (int i = 0; i < 4; i++)
            free(j->in[i]);
}

/* ---- the CUDA entry points ---- */

#ifdef TCONV_TEST_CUDA

static tconv_status run_cuda_pass(job *j, int k, cudaStream_t s)
{
    const tconv_problem *p = &j->p;
    const tconv_config *c = &j->config;
    void *const *in = j->in;
    switch (k) {
    case 0: return tconv_forward_cuda(p, c, in[0], in[1], in[2], j->out[0], j->workspace, j->workspace_bytes, s);
    case 1: return tconv_grad_input_cuda(p, c, in[3], in[1], j->out[1], j->workspace, j->workspace_bytes, s);
    case 2: return tconv_grad_weight_cuda(p, c, in[0], in[3], j->out[2], j->workspace, j->workspace_bytes, s);
    default: return tconv_grad_bias_cuda(p, c, in[3], j->out[3], j->workspace, j->workspace_bytes, s);
    }
}

static void run_cuda(job *j, void *stream, void *const out[PASSES])
{
    cudaStream_t s = (cudaStream_t)stream;
    for (int k = 0; k < PASSES; k++) {
        if (!j->passes[k])
            continue;
        cuda_or_exit(cudaMemsetAsync(j->out[k], 0xff, j->out_bytes[k], s), "cudaMemsetAsync");
        j->calls_failed += run_cuda_pass(j, k, s) != TCONV_SUCCESS;
        cuda_or_exit(cudaMemcpyAsync(out[k], j->out[k], j->out_bytes[k], cudaMemcpyDeviceToHost, s),
                     "cudaMemcpyAsync");
    }
    cuda_or_exit(cudaStreamSynchronize(s), "cudaStreamSynchronize");
}

/* A CUDA job of p in dtype mode m running the passes of `mask` with variant `algorithm` (NULL:
 * the dispatcher's choice); 0 (and nothing allocated) when a pass refuses the problem. */
static int make_cuda_job(job *j, const tconv_problem *p, const dtype_mode *m, const int mask[PASSES],
                         const char *algorithm, const char *label)
{
    memset(j, 0, sizeof *j);
    j->p = *p;
    j->label = label;
    j->config.dtype = m->dtype;
    j->config.precision = m->precision;
    j->config.algorithm = algorithm;
    for (int k = 0; k < PASSES; k++) {
        size_t bytes = 0;
        j->passes[k] = mask[k];
        if (mask[k] && tconv_cuda_workspace_size(p, (tconv_pass)k, &j->config, &bytes) != TCONV_SUCCESS)
            return 0;
        if (bytes > j->workspace_bytes)
            j->workspace_bytes = bytes;
    }
    const size_t size = dtype_bytes(m->dtype);
    const int64_t in_elems[4] = {tconv_x_elems(p), tconv_weight_elems(p), p->c_out, tconv_y_elems(p)};
    const int64_t out_elems[PASSES] = {tconv_y_elems(p), tconv_x_elems(p), tconv_weight_elems(p), p->c_out};
    for (int i = 0; i < 4; i++)
        j->in[i] = device_random(m->dtype, in_elems[i]);
    for (int k = 0; k < PASSES; k++) {
        j->out_bytes[k] = (size_t)out_elems[k] * size;
        cuda_or_exit(cudaMalloc(&j->out[k], j->out_bytes[k] > 0 ? j->out_bytes[k] : 1), "cudaMalloc");
        j->serial[k] = alloc_or_exit(j->out_bytes[k]);
        j->got[k] = alloc_or_exit(j->out_bytes[k]);
    }
    if (j->workspace_bytes > 0)
        cuda_or_exit(cudaMalloc(&j->workspace, j->workspace_bytes), "cudaMalloc");
    return 1;
}

static void free_cuda_job(job *j)
{
    for (int i = 0; i < 4; i++)
        cudaFree(j->in[i]);
    for (int k = 0; k < PASSES; k++)
        cudaFree(j->out[k]);
    cudaFree(j->workspace);
    free_job(j, 1);
}

#endif /* TCONV_TEST_CUDA */

/* ---- serial, then threaded ---- */

static void *work(void *arg)
{
    worker *w = arg;
    void *stream = NULL;
#ifdef TCONV_TEST_CUDA
    cudaStream_t s = NULL;
    if (w->cuda) {
        cuda_or_exit(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreate");
        stream = s;
    }
#endif
    for (int r = 0; r < REPEATS; r++) {
        for (int i = w->first; i < w->count; i += w->step) {
            job *j = &w->jobs[i];
            void *const *out = w->cuda ? j->got : j->out;
            w->run(j, stream, out);
            for (int k = 0; k < PASSES; k++)
                j->mismatches[k] += j->passes[k] && memcmp(out[k], j->serial[k], j->out_bytes[k]) != 0;
        }
    }
#ifdef TCONV_TEST_CUDA
    if (s != NULL)
        cuda_or_exit(cudaStreamDestroy(s), "cudaStreamDestroy");
#endif
    return NULL;
}

/* Runs the jobs one at a time (on `serial_stream`), then on THREADS threads at once, and checks
 * that every threaded output equals the serial one bit for bit. */
static void serial_then_threaded(job *jobs, int count, run_fn run, int cuda, void *serial_stream,
                                 const char *what)
{
    for (int i = 0; i < count; i++) {
        job *j = &jobs[i];
        run(j, serial_stream, cuda ? j->serial : j->out);
        if (!cuda)
            for (int k = 0; k < PASSES; k++)
                memcpy(j->serial[k], j->out[k], j->out_bytes[k]);
        CHECK(j->calls_failed == 0, "%s job %d: %d calls failed serially", what, i, j->calls_failed);
        j->calls_failed = 0;
    }
    pthread_t threads[THREADS];
    worker workers[THREADS];
    for (int t = 0; t < THREADS; t++) {
        workers[t] = (worker){jobs, count, t, THREADS, run, cuda};
        CHECK(pthread_create(&threads[t], NULL, work, &workers[t]) == 0, "pthread_create");
    }
    for (int t = 0; t < THREADS; t++)
        pthread_join(threads[t], NULL);
    char desc[256];
    for (int i = 0; i < count; i++) {
        const job *j = &jobs[i];
        const char *label = j->label != NULL ? j->label : j->f64 ? "float64" : "float32";
        CHECK(j->calls_failed == 0, "%s job %d (%s): %d calls failed in threads; %s", what, i, label,
              j->calls_failed, problem_string(&j->p, desc));
        for (int k = 0; k < PASSES; k++)
            CHECK(j->mismatches[k] == 0, "%s job %d (%s): %s differs from the serial run in %d of %d runs; %s",
                  what, i, label, pass_names[k], j->mismatches[k], REPEATS, problem_string(&j->p, desc));
    }
    printf("%s: %d jobs on %d threads, %d runs each, bitwise equal to the serial run\n", what, count,
           THREADS, REPEATS);
}

static void test_cpu_threads(void)
{
    enum { CPU_JOBS = 12 };
    job jobs[CPU_JOBS];
    /* two problems above the CPU passes' threshold for an OpenMP team (2^18 multiply-adds) */
    tconv_problem large = {2, 16, 24, 24, 8, 3, 3, 1, 1, 1, 1, 0, 0, 1, 1, 2, 0, 0};
    CHECK(tconv_problem_check(&large) == TCONV_SUCCESS, "large problem");
    for (int i = 0; i < CPU_JOBS; i++) {
        tconv_problem p = large;
        if (i >= 2)
            random_problem(&p, 8);
        make_cpu_job(&jobs[i], &p, i % 2);
    }
    serial_then_threaded(jobs, CPU_JOBS, run_cpu, 0, NULL, "CPU entry points");
    for (int i = 0; i < CPU_JOBS; i++)
        free_job(&jobs[i], 0);
}

#ifdef TCONV_TEST_CUDA

static void test_cuda_threads(void)
{
    small_problems_load();
    if (!tconv_cuda_available() || cuda_device_count() == 0) {
        fprintf(stderr, "test_threads: no usable CUDA device or no CUDA build\n");
        check_failed++;
        return;
    }
    int variants = 0;
    while (tconv_cuda_variant(variants, NULL) != NULL)
        variants++;
    const int capacity = small_count * DTYPE_MODES + variants;
    job *jobs = calloc((size_t)capacity, sizeof(job));
    char (*labels)[96] = calloc((size_t)capacity, sizeof *labels);
    if (jobs == NULL || labels == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    int count = 0;
    const int all[PASSES] = {1, 1, 1, 1};
    for (int i = 0; i < small_count; i++) {
        for (int m = 0; m < DTYPE_MODES; m++) {
            tconv_problem p = small_problems[i];
            CHECK(tconv_problem_check(&p) == TCONV_SUCCESS, "CUDA problem %d", i);
            snprintf(labels[count], sizeof labels[count], "%s, the dispatcher's choice", dtype_modes[m].name);
            count += make_cuda_job(&jobs[count], &p, &dtype_modes[m], all, NULL, labels[count]);
        }
    }
    /* every variant, forced, on the first problem and dtype it accepts */
    tconv_pass pass;
    for (int v = 0; v < variants; v++) {
        const char *name = tconv_cuda_variant(v, &pass);
        int mask[PASSES] = {0, 0, 0, 0}, made = 0;
        mask[pass] = 1;
        for (int i = 0; i < small_count && !made; i++) {
            for (int m = 0; m < DTYPE_MODES && !made; m++) {
                tconv_problem p = small_problems[i];
                tconv_problem_check(&p);
                const tconv_config c = {dtype_modes[m].dtype, dtype_modes[m].precision, name};
                const char *chosen;
                if (tconv_cuda_algorithm(&p, pass, &c, &chosen) != TCONV_SUCCESS)
                    continue;
                snprintf(labels[count], sizeof labels[count], "%s, %s", dtype_modes[m].name, name);
                made = make_cuda_job(&jobs[count], &p, &dtype_modes[m], mask, name, labels[count]);
                count += made;
            }
        }
        if (!made)
            printf("variant %s takes none of the problems (not run)\n", name);
    }
    CHECK(count > small_count * DTYPE_MODES / 2, "only %d CUDA jobs", count);
    cudaStream_t serial;
    cuda_or_exit(cudaStreamCreateWithFlags(&serial, cudaStreamNonBlocking), "cudaStreamCreate");
    serial_then_threaded(jobs, count, run_cuda, 1, serial, "CUDA entry points");
    cuda_or_exit(cudaStreamDestroy(serial), "cudaStreamDestroy");
    CHECK(tconv_cuda_last_error() == 0, "tconv_cuda_last_error() is %d", tconv_cuda_last_error());
    for (int i = 0; i < count; i++)
        free_cuda_job(&jobs[i]);
    free(jobs);
    free(labels);
}

#endif /* TCONV_TEST_CUDA */

int main(void)
{
    test_seed();
    test_cpu_threads();
#ifdef TCONV_TEST_CUDA
    test_cuda_threads();
#endif
    return check_report();
}
