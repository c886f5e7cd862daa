"""The user's seed check, run the way their harness runs it.

    python -m tconv.demo                      (8, 64, 1024, 1024) on the GPU, 3 trials
    python -m tconv.demo --size 2 16 64 64 --trials 2
    python -m tconv.demo --device cpu         reduced size on the CPU

`Model` (nn.ConvTranspose2d) against tconv.ModelNew, both built from init args
[C, C, 3] after torch.manual_seed(42) on the CPU and then moved to the device; each
trial draws torch.rand(N, C, H, W) on the CPU from a seeded generator.  For
torch.backends.cudnn.allow_tf32 = True (PyTorch's default) and then False, a table
gives per trial: the user's check allclose(atol=1e-4), the stricter
allclose(atol=1e-4, rtol=1e-4), the largest difference, each model's max |error|
against a float64 reference, and both forward times (median, L2 flushed before each
call) with the speedup; a verdict line closes each table.  The exit status is 1 when
the user's check failed in any trial.
"""
import argparse
import statistics
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

import tconv
from tconv.bench import Timer, batch_chunk, max_errors_chunked, pick_device, set_tf32

SEED_SIZE = (8, 64, 1024, 1024)
CPU_SIZE = (2, 16, 64, 64)
KERNEL_SIZE = 3


class Model(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, output_padding: int = 0, groups: int = 1, bias: bool = False):
        super().__init__()
        self.conv_transpose2d = nn.ConvTranspose2d(
            in_channels, out_channels, kernel_size, stride=stride, padding=padding,
            output_padding=output_padding, groups=groups, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_transpose2d(x)


def build(model_class, channels, device):
    """As the harness does: seed, build on the CPU, move to the device."""
    torch.manual_seed(42)
    return model_class(channels, channels, KERNEL_SIZE).to(device)


def float64_errors(conv, x, outputs):
    """max |error| of each output against conv's operator in float64, in batch chunks."""
    w64 = conv.weight.double()
    b64 = conv.bias.double() if conv.bias is not None else None
    return max_errors_chunked(
        outputs,
        lambda i, j: F.conv_transpose2d(x[i:j].double(), w64, b64, conv.stride, conv.padding,
                                        conv.output_padding, conv.groups, conv.dilation),
        x.shape[0], batch_chunk(x, outputs[0]))


@torch.no_grad()
def trial(model, new_model, x, timer):
    y_ref, y_new = model(x), new_model(x)
    row = {
        "check": torch.allclose(y_ref, y_new, atol=1e-4),
        "strict": torch.allclose(y_ref, y_new, atol=1e-4, rtol=1e-4),
        "diff": (y_ref - y_new).abs().max().item(),
    }
    row["err_ref"], row["err_new"] = float64_errors(model.conv_transpose2d, x, [y_ref, y_new])
    del y_ref, y_new
    row["ms_ref"] = timer.median_ms(lambda: model(x))
    row["ms_new"] = timer.median_ms(lambda: new_model(x))
    return row


def yes_no(flag):
    return "PASS" if flag else "FAIL"


def table(rows):
    lines = [f"  {'seed':>5}  {'allclose':>8}  {'+rtol1e-4':>9}  {'max|diff|':>9}  "
             f"{'err torch':>9}  {'err tconv':>9}  {'torch ms':>9}  {'tconv ms':>9}  "
             f"{'speedup':>7}"]
    lines += [f"  {seed:>5}  {yes_no(r['check']):>8}  {yes_no(r['strict']):>9}  "
              f"{r['diff']:>9.2e}  {r['err_ref']:>9.2e}  {r['err_new']:>9.2e}  "
              f"{r['ms_ref']:>9.3f}  {r['ms_new']:>9.3f}  {r['ms_ref'] / r['ms_new']:>6.2f}x"
              for seed, r in rows]
    return "\n".join(lines)


def verdict(rows):
    passed = sum(r["check"] for _, r in rows)
    speedup = statistics.median(r["ms_ref"] / r["ms_new"] for _, r in rows)
    return (f"  verdict: {yes_no(passed == len(rows))} - allclose(atol=1e-4) held in "
            f"{passed}/{len(rows)} trials; tconv {'FASTER' if speedup > 1 else 'SLOWER'}, "
            f"speedup {speedup:.2f}x over PyTorch (median over trials)")


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m tconv.demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, nargs=4, metavar=("N", "C", "H", "W"), default=None,
                        help=f"input size; C is in and out channels (default {SEED_SIZE} "
                             f"on a GPU, {CPU_SIZE} on the CPU)")
    parser.add_argument("--trials", type=int, default=3, help="input seeds 0, 1, ... (default 3)")
    parser.add_argument("--reps", type=int, default=None,
                        help="timed calls per model (default 15 on a GPU, 5 on the CPU)")
    parser.add_argument("--warmup", type=int, default=None,
                        help="untimed calls first (default 3 on a GPU, 1 on the CPU)")
    parser.add_argument("--device", default=None, help="cuda (default when present) or cpu")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    device = pick_device(args.device)
    cuda = device.type == "cuda"
    size = tuple(args.size or (SEED_SIZE if cuda else CPU_SIZE))
    reps = args.reps or (15 if cuda else 5)
    warmup = args.warmup if args.warmup is not None else (3 if cuda else 1)
    if not cuda:
        print(f"NO GPU: running on the CPU at the reduced size {size} (the seed is {SEED_SIZE} "
              f"on CUDA).  This checks the code path; its timings say nothing about the GPU.\n")
    card = torch.cuda.get_device_name(device) if cuda else "CPU"
    print(f"tconv {tconv.__version__}, torch {torch.__version__}, {card}")
    print(f"Model vs tconv.ModelNew, init args [{size[1]}, {size[1]}, {KERNEL_SIZE}], "
          f"input torch.rand{size}, {args.trials} trials, median of {reps} runs")

    model, new_model = build(Model, size[1], device), build(tconv.ModelNew, size[1], device)
    same = torch.equal(model.conv_transpose2d.weight, new_model.conv_transpose2d.weight)
    print(f"weights bit-identical after manual_seed(42): {'yes' if same else 'NO'}\n")
    timer = Timer(device, reps, warmup)
    saved = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    all_passed = True
    for allow_tf32 in (True, False):
        set_tf32(allow_tf32)
        if cuda:
            precision = tconv.ops.resolve_precision(None)
            conv = model.conv_transpose2d
            runs = f"{precision}, variant " + tconv.ops.algorithm(
                "forward", size, tuple(conv.weight.shape), conv.stride, conv.padding,
                conv.output_padding, conv.dilation, conv.groups, torch.float32, precision)
        else:
            runs = "the C reference (float64 sums; tf32 and fp32 modes are CUDA's)"
        print(f"allow_tf32={allow_tf32}{' (PyTorch default)' if allow_tf32 else ''}: "
              f"tconv runs {runs}")
        rows = []
        for seed in range(args.trials):
            x = torch.rand(size, generator=torch.Generator().manual_seed(seed)).to(device)
            rows.append((seed, trial(model, new_model, x, timer)))
            del x
        print(table(rows))
        print(verdict(rows) + "\n")
        all_passed &= all(r["check"] for _, r in rows)
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved
    return 0 if all_passed else 1


if __name__ == "__main__":
    sys.exit(main())
