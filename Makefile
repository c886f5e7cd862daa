# tconv - one Makefile for the C library, its tests, the PyTorch extension and the benchmark.
#
#   make demo       virtual environment + pinned dependencies + build, then the seed check
#   make test       C tests + pytest (CPU always; GPU tests too where a GPU is present)
#   make test-newest pytest again under the newest torch from PyPI (its own environment)
#   make gpu-test   on a GPU machine: build with CUDA, GPU tests, compute-sanitizer, short table
#   make bench      the benchmark (python -m tconv.bench); BENCH_ARGS=--quick for a short run
#   make cuda-check compile the CUDA sources for sm_80 and sm_90(a), no warnings allowed, with this
#                   nvcc and CUDA 11.8's, then test the CUDA library's host side on a fake CUDA
#                   runtime (no GPU needed)
#   make export-check  the seed's single-file solution, its sources compiled with both toolkits
#   make cuda118    the C library and its GPU test built with CUDA 11.8, to run on a GPU machine
#   make fuzz       on a GPU machine: python -m tconv.fuzz, 10,000 problems, then 1,000 with inf/NaN

CC      ?= cc
NVCC    ?= nvcc
CFLAGS  ?= -O2
CFLAGS  += -std=c11 -Wall -Wextra -Wpedantic -Werror -fopenmp -Iinclude -Isrc
# the GPU targets and code generation: scripts/nvcc_flags.sh, the one source of them
NVFLAGS ?=
NVFLAGS += $(shell scripts/nvcc_flags.sh $(NVCC)) -Iinclude -Isrc -Xcompiler -Wall,-Wextra -Werror all-warnings

# The virtual environment of `make demo` / `make test`; GPU machines bring their own torch,
# so gpu-test and bench use the system interpreter unless PYTHON is given.
VENV    ?= .venv
VPY     := $(VENV)/bin/python
PYTHON  ?= python3

C_SRC    := src/problem.c $(wildcard src/cpu/*.c)
CUDA_SRC := $(wildcard src/cuda/*.cu src/cuda/*/*.cu)
CUDA_HDR := $(wildcard src/cuda/*.h src/cuda/*.cuh src/cuda/*/*.cuh)

.PHONY: all demo test c-test py-test gpu-test bench cuda-check host-test clean venv ext fuzz \
        test-newest export-check cuda118

# One seed for the C tests and pytest, printed by both; TCONV_SEED=N make test replays a run.
ifeq ($(TCONV_SEED),)
TCONV_SEED := $(shell od -An -N4 -tu4 /dev/urandom | tr -d ' ')
endif
export TCONV_SEED

all: build/test_cpu

# ---- C library without CUDA (CPU reference + stubs), and its tests ----
build/cpu/%.o: src/%.c include/tconv.h $(wildcard src/*.h src/cpu/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fPIC -c $< -o $@

build/libtconv_cpu.a: $(patsubst src/%.c,build/cpu/%.o,$(C_SRC) src/no_cuda.c)
	ar rcs $@ $^

build/test_cpu: tests/c/test_cpu.c tests/c/check.h build/libtconv_cpu.a
	$(CC) $(CFLAGS) $< build/libtconv_cpu.a -lm -o $@

# the C API against hostile arguments, on a build with AddressSanitizer and
# UndefinedBehaviorSanitizer (an overflow in a check stops the run), and from several threads
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer

build/san/%.o: src/%.c include/tconv.h $(wildcard src/*.h src/cpu/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SANFLAGS) -fPIC -c $< -o $@

build/libtconv_san.a: $(patsubst src/%.c,build/san/%.o,$(C_SRC) src/no_cuda.c)
	ar rcs $@ $^

build/test_hostile: tests/c/test_hostile.c tests/c/check.h build/libtconv_san.a
	$(CC) $(CFLAGS) $(SANFLAGS) $< build/libtconv_san.a -lm -o $@

build/test_threads: tests/c/test_threads.c tests/c/check.h build/libtconv_cpu.a
	$(CC) $(CFLAGS) -pthread $< build/libtconv_cpu.a -lm -o $@

c-test: build/test_cpu build/test_hostile build/test_threads
	TCONV_TEST_SEED=$(TCONV_SEED) ./build/test_cpu
	TCONV_TEST_SEED=$(TCONV_SEED) ./build/test_hostile
	TCONV_TEST_SEED=$(TCONV_SEED) ./build/test_threads

# ---- C library with CUDA, and its GPU test (run under compute-sanitizer by gpu-test) ----
build/cuda/%.o: src/cuda/%.cu include/tconv.h $(CUDA_HDR)
	@mkdir -p $(dir $@)
	$(NVCC) $(NVFLAGS) -Xptxas -v -c $< -o $@ 2> $@.ptxas || (cat $@.ptxas; exit 1)

build/libtconv_cuda.a: $(patsubst src/%.c,build/cpu/%.o,$(C_SRC)) \
                       $(patsubst src/cuda/%.cu,build/cuda/%.o,$(CUDA_SRC))
	ar rcs $@ $^

CUDA_DIR = $(dir $(shell which $(NVCC)))..
CUDA_LINK = build/libtconv_cuda.a -L$(CUDA_DIR)/lib64 -Wl,-rpath,$(CUDA_DIR)/lib64 -lcudart -lstdc++ -lm
build/test_cuda: tests/c/test_cuda.c tests/c/check.h build/libtconv_cuda.a
	$(CC) $(CFLAGS) -I$(CUDA_DIR)/include $< $(CUDA_LINK) -o $@

# the CUDA entry points from several threads, each on its own stream (tests/c/test_threads.c)
build/test_threads_cuda: tests/c/test_threads.c tests/c/check.h tests/c/device.h build/libtconv_cuda.a
	$(CC) $(CFLAGS) -pthread -DTCONV_TEST_CUDA -I$(CUDA_DIR)/include $< $(CUDA_LINK) -o $@

# every variant once on a small problem, for compute-sanitizer (tests/c/run_variants.c)
build/run_variants: tests/c/run_variants.c tests/c/check.h tests/c/device.h build/libtconv_cuda.a
	$(CC) $(CFLAGS) -I$(CUDA_DIR)/include $< $(CUDA_LINK) -o $@

# the C API's host time per call on a tiny problem, plan and one-shot (dev/cuda/host_overhead.c)
build/host_overhead: dev/cuda/host_overhead.c build/libtconv_cuda.a
	$(CC) $(CFLAGS) -I$(CUDA_DIR)/include $< $(CUDA_LINK) -o $@

# times every variant of every pass through the C API (dev/cuda/time_variants.c)
build/time_variants: dev/cuda/time_variants.c tests/c/check.h build/libtconv_cuda.a
	$(CC) $(CFLAGS) -Itests/c -I$(CUDA_DIR)/include $< $(CUDA_LINK) -o $@

# the grad-weight kernel lab (dev/cuda/grad_weight.cu): its own version and the library's
# variants, checked and timed; -fopenmp for the library's CPU reference
build/lab_grad_weight: dev/cuda/grad_weight.cu include/tconv.h src/problem.h $(CUDA_HDR) build/libtconv_cuda.a
	$(NVCC) $(NVFLAGS) $< build/libtconv_cuda.a -Xcompiler -fopenmp -o $@

# the CUDA library's host side on a fake CUDA runtime (tests/c/fake_cuda.c), no GPU needed:
# which variant, workspace and launches each problem gets (see tests/c/dispatch_trace.c)
build/dispatch_trace: tests/c/dispatch_trace.c tests/c/fake_cuda.c tests/c/fake_cuda.h tests/c/check.h \
                      build/libtconv_cuda.a
	$(CC) $(CFLAGS) -I$(CUDA_DIR)/include tests/c/dispatch_trace.c tests/c/fake_cuda.c build/libtconv_cuda.a \
	    -lstdc++ -lm -o $@

# plans, the variant table and the dispatcher on the fake CUDA runtime (no GPU needed)
build/test_plans: tests/c/test_plans.c tests/c/fake_cuda.c tests/c/fake_cuda.h tests/c/check.h build/libtconv_cuda.a
	$(CC) $(CFLAGS) -I$(CUDA_DIR)/include tests/c/test_plans.c tests/c/fake_cuda.c build/libtconv_cuda.a \
	    -lstdc++ -lm -o $@

host-test: build/test_plans
	./build/test_plans

cuda-check:
	./scripts/cuda_check.sh
	$(MAKE) host-test

# ---- the same with CUDA 11.8 (the seed's toolkit; assembled by cuda_check.sh), no GPU needed:
# build/cuda-11.8/ holds test_cuda and time_variants with the CUDA runtime they load; copy the
# folder to a GPU machine and run build/cuda-11.8/test_cuda there (time_variants seed to time)
CUDA118   := build/cuda-check/cuda-11.8
NVFLAGS118 := -O3 -std=c++17 -Iinclude -Isrc -ccbin g++-11 -Xcompiler -Wall,-Wextra \
              -Werror all-warnings -gencode arch=compute_80,code=sm_80 \
              -gencode arch=compute_90,code=sm_90
CUDA118_LINK = build/cuda-11.8/libtconv_cuda.a build/cuda-11.8/libcudart.so.11.0 \
               -Wl,-rpath,'$$ORIGIN' -lstdc++ -lm

$(CUDA118)/bin/nvcc $(CUDA118)/lib64/libcudart.so.11.0:
	./scripts/cuda_check.sh --assemble

build/cuda-11.8/obj/%.o: src/cuda/%.cu include/tconv.h $(CUDA_HDR) | $(CUDA118)/bin/nvcc
	@mkdir -p $(dir $@)
	$(CUDA118)/bin/nvcc $(NVFLAGS118) -c $< -o $@

build/cuda-11.8/libtconv_cuda.a: $(patsubst src/%.c,build/cpu/%.o,$(C_SRC)) \
                                 $(patsubst src/cuda/%.cu,build/cuda-11.8/obj/%.o,$(CUDA_SRC))
	ar rcs $@ $^

build/cuda-11.8/libcudart.so.11.0: $(CUDA118)/lib64/libcudart.so.11.0
	@mkdir -p $(dir $@)
	cp $< $@

build/cuda-11.8/test_cuda: tests/c/test_cuda.c tests/c/check.h build/cuda-11.8/libtconv_cuda.a \
                           build/cuda-11.8/libcudart.so.11.0
	$(CC) $(CFLAGS) -I$(CUDA118)/include $< $(CUDA118_LINK) -o $@

build/cuda-11.8/time_variants: dev/cuda/time_variants.c tests/c/check.h build/cuda-11.8/libtconv_cuda.a \
                               build/cuda-11.8/libcudart.so.11.0
	$(CC) $(CFLAGS) -Itests/c -I$(CUDA118)/include $< $(CUDA118_LINK) -o $@

cuda118: build/cuda-11.8/test_cuda build/cuda-11.8/time_variants

# ---- Python ----
# The stamp, not the interpreter (a link to the system's), records the installed requirements.
VSTAMP  := $(VENV)/.requirements-installed

# Where python3 already has a torch that sees a GPU (GPU machines, often without internet),
# demo/test/ext use it; elsewhere they use $(VENV) with the pinned requirements.
SYSTEM_GPU_TORCH := $(shell python3 -c "import torch, sys; sys.exit(not torch.cuda.is_available())" 2>/dev/null && echo 1)
ifeq ($(SYSTEM_GPU_TORCH),1)
VPY     := python3
VSTAMP  :=
endif

$(VENV)/.requirements-installed: requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q -r requirements.txt
	touch $@

# a .pth file puts python/ on the environment's path: `.venv/bin/python -c "import tconv"`
# works after `make ext` without PYTHONPATH
$(VENV)/.tconv-path: $(VENV)/.requirements-installed
	$(VENV)/bin/python -c "import pathlib, site; pathlib.Path(site.getsitepackages()[0], \
	    'tconv-checkout.pth').write_text('$(CURDIR)/python\n')"
	touch $@

venv: $(VENV)/.requirements-installed $(VENV)/.tconv-path

# tconv._C next to python/tconv/__init__.py (CUDA kernels when torch's CUDA matches nvcc's)
ext: $(VSTAMP) $(if $(VSTAMP),$(VENV)/.tconv-path)
	$(VPY) setup.py -q build_ext --inplace

py-test: ext
	$(VPY) -m pytest -q tests/python

# The newest torch from PyPI in an environment of its own (the CUDA wheel with its NVIDIA
# libraries: CPU-only wheels are not on PyPI), tconv built against it without CUDA kernels
# (the tests run on the CPU) into build/torch-newest, and the whole pytest suite.
NEWEST_VENV ?= .venv-newest
NEWEST_LIB  := build/torch-newest/lib
$(NEWEST_VENV)/.requirements-installed: requirements-newest.txt
	python3 -m venv $(NEWEST_VENV)
	$(NEWEST_VENV)/bin/python -m pip install -q --upgrade pip
	$(NEWEST_VENV)/bin/python -m pip install -q -r requirements-newest.txt
	touch $@

test-newest: $(NEWEST_VENV)/.requirements-installed
	TCONV_CUDA=0 $(NEWEST_VENV)/bin/python setup.py -q build --build-base build/torch-newest \
	    --build-lib $(NEWEST_LIB)
	$(NEWEST_VENV)/bin/python -c "import torch; print('newest torch:', torch.__version__)"
	PYTHONPATH=$(NEWEST_LIB) $(NEWEST_VENV)/bin/python -m pytest -q -o pythonpath= tests/python

# needs `make ext` and `make test-newest`'s environments (the pinned and the newest torch)
export-check: ext $(NEWEST_VENV)/.requirements-installed
	PYTHON=$(VPY) NEWEST_PYTHON=$(NEWEST_VENV)/bin/python ./scripts/export_check.sh

test: c-test py-test

demo: ext
	PYTHONPATH=python $(VPY) -m tconv.demo

gpu-test:
	PYTHON=$(PYTHON) ./scripts/gpu_test.sh

bench:
	PYTHONPATH=python $(PYTHON) -m tconv.bench $(BENCH_ARGS)

# python -m tconv.fuzz on the GPU: 10,000 random problems through autograd and every variant
# that takes them, then 1,000 with inf/NaN injected; FUZZ_ARGS adds options (--seed S repeats
# a run).  Both runs go ahead; the target fails if either found a failure.
fuzz: ext
	status=0; \
	PYTHONPATH=python $(VPY) -m tconv.fuzz --device cuda --count 10000 --every-variant $(FUZZ_ARGS) || status=1; \
	PYTHONPATH=python $(VPY) -m tconv.fuzz --device cuda --count 1000 --nonfinite 1 --every-variant $(FUZZ_ARGS) || status=1; \
	exit $$status

clean:
	rm -rf build python/tconv/*.so python/tconv/__pycache__
