/*
 * fake_cuda.h - what the fake CUDA runtime (fake_cuda.c) recorded: device 0 is an 8.0
 * device with 108 SMs, device 1 a 9.0 device with 132 SMs.
 */
#ifndef TCONV_FAKE_CUDA_H
#define TCONV_FAKE_CUDA_H

#include <stddef.h>

#define FAKE_CUDA_EVENTS 64

typedef enum fake_cuda_kind { FAKE_LAUNCH, FAKE_MEMSET } fake_cuda_kind;

typedef struct fake_cuda_event {
    fake_cuda_kind kind;
    const char *kernel;        /* launch: the kernel's mangled name */
    unsigned grid[3], block[3];
    size_t smem;               /* launch: dynamic shared memory */
    void *stream;
    void *ptr;                 /* memset: destination, value, bytes */
    int value;
    size_t bytes;
} fake_cuda_event;

/* The events since the last clear (at most FAKE_CUDA_EVENTS; see the overflow flag). */
const fake_cuda_event *fake_cuda_log(int *count);
int fake_cuda_log_overflowed(void);
void fake_cuda_log_clear(void);

/* How many times cudaFuncSetAttribute was called so far. */
long fake_cuda_attribute_calls(void);

#endif /* TCONV_FAKE_CUDA_H */
