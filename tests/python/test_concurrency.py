"""tconv from several Python threads at once: each thread runs its own problems (forward and
backward through autograd; on CUDA on a stream of its own) several times over, and every
output must be bitwise equal to the same problem run alone.  Tensors on a GPU that is not the
current device run on their own device and its current stream (two GPUs)."""
import threading

import pytest
import torch

import tconv
from problems import AWKWARD, conv_args, random_problems, tensors
from conftest import SEED

THREADS, REPEATS = 6, 3
BITS = {torch.float32: torch.int32, torch.float64: torch.int64, torch.float16: torch.int16,
        torch.bfloat16: torch.int16}
MODES = [(torch.float32, "fp32"), (torch.float32, "tf32"), (torch.float64, "fp32"),
         (torch.float16, "fp32"), (torch.bfloat16, "fp32")]


def jobs(device, gen):
    """(problem, dtype, precision, x, weight, bias, grad_y) of varied problems and dtypes."""
    problems = list(AWKWARD.values()) + random_problems(SEED ^ 0x5BD1E995, 12)
    if device == "cuda":
        from test_gpu import MEDIUM  # shapes that the tiled variants take
        problems += list(MEDIUM.values())
    out = []
    for i, p in enumerate(problems):
        dtype, precision = MODES[i % len(MODES)] if device == "cuda" else MODES[2 * (i % 2)]
        out.append((p, dtype, precision) + tuple(None if t is None else t.to(device)
                                                 for t in tensors(p, dtype, gen)))
    return out


def run(job):
    """y, grad_x, grad_weight, grad_bias of one job through autograd."""
    p, dtype, precision, x, weight, bias, grad_y = job
    leaves = [None if t is None else t.clone().requires_grad_() for t in (x, weight, bias)]
    y = tconv.conv_transpose2d(*leaves, **conv_args(p), precision=precision)
    y.backward(grad_y)
    return [y.detach()] + [None if t is None else t.grad for t in leaves]


def same_bits(a, b):
    if a is None or b is None:
        return a is None and b is None
    return a.shape == b.shape and torch.equal(a.view(BITS[a.dtype]), b.view(BITS[b.dtype]))


def run_in_threads(work, count):
    """Runs work(t) on `count` threads at once; re-raises the first exception of any."""
    errors = []

    def body(t):
        try:
            work(t)
        except BaseException as error:  # handed to the main thread
            errors.append(error)

    threads = [threading.Thread(target=body, args=(t,)) for t in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def check_threads_match_serial(device, gen, stream_per_thread):
    todo = jobs(device, gen)
    serial = [run(job) for job in todo]
    if device == "cuda":
        torch.cuda.synchronize()
    results = {}

    def work(t):
        stream = torch.cuda.Stream() if stream_per_thread else None
        for r in range(REPEATS):
            for i in range(t, len(todo), THREADS):
                if stream is None:
                    results[(i, r)] = run(todo[i])
                    continue
                stream.wait_stream(torch.cuda.default_stream())
                with torch.cuda.stream(stream):
                    results[(i, r)] = run(todo[i])
                stream.synchronize()

    run_in_threads(work, THREADS)
    differ = [(i, r, name) for (i, r), outputs in sorted(results.items())
              for name, a, b in zip(("y", "grad_x", "grad_weight", "grad_bias"), outputs, serial[i])
              if not same_bits(a, b)]
    assert len(results) == len(todo) * REPEATS
    assert not differ, f"outputs that differ from the serial run (job, repeat, output): {differ}"


def test_cpu_threads_match_a_serial_run(gen):
    check_threads_match_serial("cpu", gen, stream_per_thread=False)


@pytest.mark.cuda
def test_cuda_threads_on_their_own_streams_match_a_serial_run(gen):
    check_threads_match_serial("cuda", gen, stream_per_thread=True)


@pytest.mark.cuda
def test_a_non_current_device_runs_on_its_own_device_and_stream(gen):
    """Tensors on cuda:1 while cuda:0 is current, with a side stream of cuda:1 current there:
    results on cuda:1, bitwise equal to the run with cuda:1 current, and queued on that stream
    (nothing is ready before the stream's earlier work is)."""
    if torch.cuda.device_count() < 2:
        pytest.skip("needs two GPUs")
    job = jobs("cpu", gen)[0]
    on_1 = job[:3] + tuple(None if t is None else t.to("cuda:1") for t in job[3:])
    with torch.cuda.device(1):
        expected = run(on_1)
        torch.cuda.synchronize()
    side = torch.cuda.Stream(device="cuda:1")
    side.wait_stream(torch.cuda.default_stream("cuda:1"))
    # (torch.cuda.stream makes the stream's device current too: the inner context makes cuda:0
    # current again, and side stays cuda:1's current stream)
    with torch.cuda.stream(side):
        torch.cuda._sleep(200_000_000)  # on the side stream: tconv's work queues behind it
        with torch.cuda.device(0):
            assert torch.cuda.current_device() == 0
            got = run(on_1)
        assert not side.query()
    side.synchronize()
    for a, b in zip(got, expected):
        assert a is None or a.device == torch.device("cuda:1")
        assert same_bits(a, b)
