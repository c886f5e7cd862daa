# tconv - one Makefile for the C library, its tests, the PyTorch extension and the benchmark.
#
#   make demo       virtual environment + pinned dependencies + build, then the seed check
#   make test       C tests + pytest (CPU always; GPU tests too where a GPU is present)
#   make test-newest pytest again under the newest torch from PyPI (its own environment)
#   make gpu-test   on a GPU machine: build with CUDA, GPU tests, compute-sanitizer, short table
#   make bench      the benchmark (python -m tconv.bench); BENCH_ARGS=--quick for a short run
#   make cuda-check compile the CUDA sources for sm_80 and sm_90(a), no warnings allowed
#   make export-check  the seed's single-file solution, its sources compiled with both toolkits
#   make cuda118    the C library and its GPU test built with CUDA 11.8, to run on a GPU machine

CC      ?= cc
NVCC    ?= nvcc
CFLAGS  ?= -O2
CFLAGS  += -std=c11 -Wall -Wextra -Wpedantic -Werror -fopenmp -Iinclude -Isrc
NVFLAGS ?= -O3
# sm_90a (Hopper's wgmma) with TCONV_WGMMA, which tells the host code that the build holds it
NVFLAGS += -std=c++17 -Iinclude -Isrc -Xcompiler -Wall,-Wextra -Werror all-warnings \
           -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90a,code=sm_90a -DTCONV_WGMMA

# The virtual environment of `make demo` / `make test`; GPU machines bring their own torch,
# so gpu-test and bench use the system interpreter unless PYTHON is given.
VENV    ?= .venv
VPY     := $(VENV)/bin/python
PYTHON  ?= python3

C_SRC    := src/problem.c $(wildcard src/cpu/*.c)
CUDA_SRC := $(wildcard src/cuda/*.cu)
CUDA_HDR := $(wildcard src/cuda/*.h src/cuda/*.cuh)

.PHONY: all demo test c-test py-test gpu-test bench cuda-check clean venv ext test-newest \
        export-check cuda118

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

c-test: build/test_cpu
	TCONV_TEST_SEED=$(TCONV_SEED) ./build/test_cpu

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

# times every variant of every pass through the C API (dev/cuda/time_variants.c)
build/time_variants: dev/cuda/time_variants.c build/libtconv_cuda.a
	$(CC) $(CFLAGS) -I$(CUDA_DIR)/include $< $(CUDA_LINK) -o $@

cuda-check:
	./scripts/cuda_check.sh

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

build/cuda-11.8/time_variants: dev/cuda/time_variants.c build/cuda-11.8/libtconv_cuda.a \
                               build/cuda-11.8/libcudart.so.11.0
	$(CC) $(CFLAGS) -I$(CUDA118)/include $< $(CUDA118_LINK) -o $@

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

clean:
	rm -rf build python/tconv/*.so python/tconv/__pycache__
