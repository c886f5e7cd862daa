"""The seed's check of a single-file solution, as the user runs it, in a process where tconv
cannot be imported (test_export_gpu.py runs it on a GPU):

    python tests/python/seed_check.py SOLUTION [--size N C H W] [--reps R]

Model (nn.ConvTranspose2d) and the solution's ModelNew are built from get_init_inputs() after
torch.manual_seed(42) on the CPU and moved to the GPU; the input is torch.rand on the CPU from
a seeded generator.  Under torch.backends.cudnn.allow_tf32 = True (PyTorch's default) and then
False: allclose(atol=1e-4) of the outputs, and both forward times (median of R calls after
warm-up, CUDA events).  Then, at a small size, the gradients of input and weight against
PyTorch's.  Prints a line per check and exits 1 unless every check passed and ModelNew was
faster in both modes.
"""
import sys

sys.modules["tconv"] = None  # `import tconv` fails from here on: the file must stand alone

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import statistics  # noqa: E402

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402


class Model(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, output_padding: int = 0, groups: int = 1, bias: bool = False):
        super().__init__()
        self.conv_transpose2d = nn.ConvTranspose2d(
            in_channels, out_channels, kernel_size, stride=stride, padding=padding,
            output_padding=output_padding, groups=groups, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_transpose2d(x)


def load(path):
    spec = importlib.util.spec_from_file_location("solution", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build(model_class, init):
    torch.manual_seed(42)
    return model_class(*init).cuda()


def median_ms(fn, reps, warmup=3):
    for _ in range(warmup):
        fn()
    events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
              for _ in range(reps)]
    for start, end in events:
        start.record()
        fn()
        end.record()
    torch.cuda.synchronize()
    return statistics.median(start.elapsed_time(end) for start, end in events)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("solution")
    parser.add_argument("--size", type=int, nargs=4, default=(8, 64, 1024, 1024))
    parser.add_argument("--reps", type=int, default=10)
    args = parser.parse_args(argv)
    init = [args.size[1], args.size[1], 3]
    solution = load(args.solution)
    ok = True
    for allow_tf32 in (True, False):
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = allow_tf32
        original, new = build(Model, init), build(solution.ModelNew, init)
        x = torch.rand(*args.size, generator=torch.Generator().manual_seed(0)).cuda()
        with torch.no_grad():
            expected, got = original(x), new(x)  # the first call of new compiles
            close = torch.allclose(expected, got, atol=1e-4)
            diff = (expected - got).abs().max().item()
            del expected, got
            ms_torch = median_ms(lambda: original(x), args.reps)
            ms_new = median_ms(lambda: new(x), args.reps)
        faster = ms_new < ms_torch
        ok &= close and faster
        print(f"allow_tf32={allow_tf32}: allclose(atol=1e-4) {'PASS' if close else 'FAIL'} "
              f"(max |diff| {diff:.2e}); torch {ms_torch:.3f} ms, ModelNew {ms_new:.3f} ms, "
              f"{ms_torch / ms_new:.2f}x {'FASTER' if faster else 'SLOWER'}", flush=True)
        del x

    torch.backends.cudnn.allow_tf32 = False
    small = [2, 8, 3, {"stride": 2, "padding": 1, "output_padding": 1, "groups": 2,
                       "bias": True}]
    torch.manual_seed(42)
    original = Model(*small[:3], **small[3]).cuda().double()
    torch.manual_seed(42)
    new = solution.ModelNew(*small[:3], **small[3]).cuda().double()
    x = torch.rand(2, 8, 9, 11, generator=torch.Generator().manual_seed(1)).cuda().double()
    grads = []
    for model in (original, new):
        xg = x.clone().requires_grad_()
        y = model(xg)
        grads.append([y, *torch.autograd.grad(y.square().sum(), [xg, *model.parameters()])])
    close = all(torch.allclose(a, b, rtol=1e-10, atol=1e-12) for a, b in zip(*grads))
    ok &= close
    print(f"float64 output and gradients of input, weight, bias: {'PASS' if close else 'FAIL'}")
    print("seed check:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
