"""tconv.fuzz: short runs on the CPU (tconv's C reference through the autograd path), with and
without injected inf/NaN, and a short run on the GPU; then the check itself: it passes a
correct implementation with other roundings (torch's own float32 convolution), and fails
outputs perturbed beyond the bound, typical kernel bugs (a dropped tap, an index off by one,
a sum short of its last batch, a float16 accumulator) and inf/NaN handled wrongly."""
import io
import math
import random
import shlex

import pytest
import torch
import torch.nn.functional as F

import tconv
from conftest import SEED
from tconv import fuzz

DTYPES = tuple(fuzz.DTYPES)


def run(argv):
    """fuzz.fuzz on argv; its printout goes into the assertion message."""
    out = io.StringIO()
    failed, ran, summary = fuzz.fuzz(fuzz.parse_args(argv), out)
    return failed, ran, summary, out.getvalue()


def test_cpu_run():
    failed, ran, summary, text = run(["--count", "200", "--seed", str(SEED), "--device", "cpu"])
    assert failed == 0, text
    assert ran == 200 and set(summary["per_dtype"]) == set(DTYPES), text


def test_cpu_run_with_nonfinite_values():
    failed, ran, summary, text = run(["--count", "80", "--seed", str(SEED), "--device", "cpu",
                                      "--nonfinite", "1"])
    assert failed == 0, text
    # the premise: every kind of non-finite result was expected somewhere, and checked
    assert all(summary["nonfinite"][kind] > 0 for kind in ("nan", "inf", "minus_inf")), text


@pytest.mark.cuda
def test_cuda_run():
    failed, _, summary, text = run(["--count", "200", "--seed", str(SEED), "--device", "cuda",
                                    "--every-variant", "--nonfinite", "0.2"])
    assert failed == 0, text
    assert summary["variants"], text


def test_cuda_needs_a_gpu_and_the_cuda_build():
    if torch.cuda.is_available() and fuzz.ops.cuda_available():
        pytest.skip("a GPU is here")
    with pytest.raises(SystemExit):
        fuzz.parse_args(["--device", "cuda"])


def test_bad_options_are_refused():
    for argv in (["--dtypes", "fp32,int8"], ["--nonfinite", "1.5"], ["--sizes", "huge"]):
        with pytest.raises(SystemExit):
            fuzz.parse_args(argv)
    with pytest.raises(ValueError, match="fields"):
        fuzz.Problem.parse("n=1 c_in=2")


# ---- the problems ----

def drawn(count, profile="full", nonfinite=0.0):
    return list(fuzz.problems(SEED, count, fuzz.PROFILES[profile], DTYPES, nonfinite))


def test_problems_are_valid_within_limits_and_cover_the_ranges():
    limits = fuzz.PROFILES["full"]
    problems = drawn(3000, nonfinite=0.5)
    for p in problems:
        shapes = p.shapes()
        assert min(p.output) >= 1, p
        assert all(op < max(s, d) for op, s, d in zip(p.output_padding, p.stride, p.dilation)), p
        assert p.c_in % p.groups == 0 and p.c_out % p.groups == 0, p
        assert p.macs() <= limits["macs"], p
        assert max(math.prod(shapes[name]) for name in ("x", "weight", "grad_y")) <= limits["elems"], p
        assert 1 <= p.n <= limits["batch"] and max(p.input) <= limits["side"], p
        assert not p.unbatched or p.n == 1, p
    seen = lambda test: sum(map(test, problems))
    coverage = {
        "depthwise": seen(lambda p: p.groups == p.c_in > 1),
        "grouped": seen(lambda p: 1 < p.groups < p.c_in),
        "64 channels per group": seen(lambda p: p.c_in // p.groups >= 32),
        "kernel over 9": seen(lambda p: max(p.kernel) > 9),
        "stride over 8": seen(lambda p: max(p.stride) > 8),
        "dilation 4": seen(lambda p: max(p.dilation) == 4),
        "output_padding >= stride": seen(lambda p: any(op >= s for op, s in zip(p.output_padding, p.stride))),
        "padding beyond the kernel's reach": seen(lambda p: any(
            pad > d * (k - 1) for pad, d, k in zip(p.padding, p.dilation, p.kernel))),
        "image of 128 or more": seen(lambda p: max(p.input) >= 128),
        "1x1 image": seen(lambda p: p.input == (1, 1)),
        "batch 8": seen(lambda p: p.n == 8),
        "unbatched": seen(lambda p: p.unbatched),
        "no bias": seen(lambda p: not p.bias),
        "precision by the flag": seen(lambda p: p.via_flag),
        "scaled": seen(lambda p: any(p.scales)),
        "uniform x": seen(lambda p: p.x_uniform),
        "inf/NaN with zero planes": seen(lambda p: p.inject.endswith("z")),
    }
    for layout in ("c", "cl", "t", "s", "o1", "o7"):
        coverage[f"layout {layout}"] = seen(lambda p: layout in p.layouts)
    for dtype in DTYPES:
        coverage[dtype] = seen(lambda p: p.dtype == dtype)
    assert all(coverage.values()), {name: count for name, count in coverage.items() if not count}


def test_replay_line_gives_the_same_problem_and_tensors():
    for p in drawn(40, "small", nonfinite=0.5):
        again = fuzz.Problem.parse(str(p))
        assert again == p and str(again) == str(p)
        first, _ = fuzz.make_tensors(p, "cpu")
        second, _ = fuzz.make_tensors(again, "cpu")
        for name in fuzz.TENSORS:
            assert (first[name] is None) == (second[name] is None)
            if first[name] is not None:
                assert torch.equal(first[name].view(torch.uint8), second[name].view(torch.uint8)), name


def test_layouts_hold_the_values_with_nan_in_the_gaps():
    t = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).view(2, 3, 4, 5)
    for layout in ("c", "cl", "t", "s", "o1", "o5"):
        u = fuzz.lay_out(t, layout)
        assert torch.equal(u, t), layout
        assert (layout == "c") == (u.data_ptr() == t.data_ptr()), layout
    assert not fuzz.lay_out(t, "s").is_contiguous()
    assert torch.isnan(fuzz.lay_out(t, "s")._base).sum() == t.numel()
    shifted = fuzz.lay_out(t, "o3")
    assert shifted.storage_offset() == 3 and shifted.is_contiguous()
    assert torch.isnan(shifted._base[:3]).all()


# ---- the check fails where it should, and only there ----

class Exact(torch.autograd.Function):
    """conv_transpose2d computed by torch in float64 and rounded once to the dtype, forward and
    backward, with an optional bug applied.  (Finite data only: torch's float64 backward
    multiplies zero padding with the weight, so an inf weight gives NaN where IEEE arithmetic
    on the terms gives none.)"""

    @staticmethod
    def forward(ctx, x, weight, bias, geometry, bug):
        ctx.save_for_backward(x, weight)
        ctx.geometry, ctx.bug, ctx.has_bias = geometry, bug, bias is not None
        w = weight.double()
        if bug == "dropped_tap":
            w = w.clone()
            w[..., -1, -1] = 0
        y = F.conv_transpose2d(x.double(), w, None if bias is None else bias.double(), **geometry)
        return y.to(x.dtype)

    @staticmethod
    def backward(ctx, grad_y):
        x, weight = ctx.saved_tensors
        with torch.enable_grad():
            x64, w64 = x.double().requires_grad_(), weight.double().requires_grad_()
            y = F.conv_transpose2d(x64, w64, None, **ctx.geometry)
            grad_x, grad_w = torch.autograd.grad(y, (x64, w64), grad_y.double())
        g = grad_y.double()
        if ctx.bug == "short_grad_bias" and g.dim() == 4:
            g = g[:-1]
        grad_b = g.sum((0, 2, 3)) if g.dim() == 4 else g.sum((1, 2))
        if ctx.bug == "shifted_grad_x":
            grad_x = torch.roll(grad_x, 1, -1)
        if ctx.bug == "float16_grad_weight":
            grad_w = grad_w.half().double()
        return (grad_x.to(x.dtype), grad_w.to(x.dtype), grad_b.to(x.dtype) if ctx.has_bias else None,
                None, None)


def exact(bug=None):
    def conv(x, weight, bias, stride, padding, output_padding, groups, dilation, precision=None):
        geometry = dict(stride=stride, padding=padding, output_padding=output_padding, groups=groups,
                        dilation=dilation)
        return Exact.apply(x, weight, bias, geometry, bug)
    return conv


def corrupt(t, bug):
    """t with inf and NaN mishandled as `bug` says."""
    if bug == "inf_to_nan":
        return torch.where(torch.isinf(t), torch.full_like(t, math.nan), t)
    if bug == "inf_sign":
        return torch.where(torch.isinf(t), -t, t)
    return torch.nan_to_num(t, nan=0.0, posinf=math.inf, neginf=-math.inf)


class Corrupt(torch.autograd.Function):
    """corrupt() forward, the gradient passed through untouched."""

    @staticmethod
    def forward(ctx, t, bug):
        return corrupt(t, bug)

    @staticmethod
    def backward(ctx, grad):
        return grad, None


def corrupted_tconv(bug):
    """tconv.conv_transpose2d (its C reference here), with every output mishandling inf/NaN."""
    def conv(x, weight, bias, *args, precision=None):
        for leaf in (x, weight, bias):
            if leaf is not None:
                leaf.register_hook(lambda grad: corrupt(grad, bug))
        return Corrupt.apply(tconv.conv_transpose2d(x, weight, bias, *args, precision=precision), bug)
    return conv


def torch_conv(x, weight, bias, stride, padding, output_padding, groups, dilation, precision=None):
    return F.conv_transpose2d(x, weight, bias, stride, padding, output_padding, groups, dilation)


def failures(conv, problems):
    return [bool(fuzz.run_problem(p, "cpu", conv=conv).failures) for p in problems]


def test_correct_implementations_pass():
    """Rounded once from float64, or torch's own float32 and float64 convolutions (other
    summation orders, other roundings): no false alarm."""
    problems = drawn(150, "small")
    assert not any(failures(exact(), problems))
    native = [p for p in problems if p.dtype in ("fp32", "tf32", "float64")]
    assert not any(failures(torch_conv, native))


def shows(p, conv):
    """Whether conv moves some element of p's outputs by more than twice the fuzzer's bound
    (for most of the small problems' elements, under 256 unit roundoffs of the sum of their
    |terms| plus two roundings of the result)."""
    stored, given = fuzz.make_tensors(p, "cpu")
    ref = fuzz.reference(p, stored, "cpu")
    out = fuzz.autograd_outputs(p, given, conv)
    for pass_, got in out.items():
        if got is None:
            continue
        r = ref.value[pass_]
        margin = 2 * fuzz.bound(got.dtype, r, ref.magnitude[pass_], ref.terms[pass_])
        if ((got.double() - r).abs() > margin).any():
            return True
    return False


@pytest.mark.parametrize("bug", ["dropped_tap", "shifted_grad_x", "short_grad_bias", "float16_grad_weight"])
def test_kernel_bugs_are_caught(bug):
    """Caught in every problem where the bug moves an element beyond rounding (most of them)."""
    shown = caught = 0
    for p in drawn(60, "small"):
        if shows(p, exact(bug)):
            shown += 1
            caught += bool(fuzz.run_problem(p, "cpu", conv=exact(bug)).failures)
    assert shown >= 20 and caught == shown, f"{bug}: caught in {caught} of {shown} problems"


@pytest.mark.parametrize("bug", ["inf_to_nan", "inf_sign", "nan_to_zero"])
def test_mishandled_inf_and_nan_are_caught(bug):
    """tconv's own results (right, the premise) with inf or NaN mishandled: caught in every
    problem where the reference expects an element of the kind the bug changes."""
    kind = "nan" if bug == "nan_to_zero" else "inf"
    caught = shown = 0
    for p in drawn(40, "small", nonfinite=1.0):
        right = fuzz.run_problem(p, "cpu")
        assert not right.failures, (p, right.failures)
        if right.nonfinite[kind] + (right.nonfinite["minus_inf"] if kind == "inf" else 0):
            shown += 1
            caught += bool(fuzz.run_problem(p, "cpu", conv=corrupted_tconv(bug)).failures)
    assert shown >= 10 and caught == shown, f"{bug}: caught in {caught} of {shown} problems"


def test_a_perturbed_element_is_caught_and_one_within_the_bound_is_not():
    r = random.Random(SEED)
    for p in drawn(30, "small"):
        stored, given = fuzz.make_tensors(p, "cpu")
        ref = fuzz.reference(p, stored, "cpu")
        out = fuzz.autograd_outputs(p, given, exact())
        for pass_ in fuzz.PASSES:
            got = out[pass_]
            if got is None:
                continue
            args = (ref.value[pass_], ref.magnitude[pass_], ref.terms[pass_])
            assert fuzz.describe_wrong(pass_, got, *args) is None
            bound = fuzz.bound(got.dtype, *args)
            i = r.randrange(got.numel())
            flat = got.detach().double().reshape(-1)
            for factor, caught in ((3.0, True), (0.25, False)):
                moved = flat.clone()
                # from the reference, so that the float64 element is off by factor * bound
                moved[i] = ref.value[pass_].reshape(-1)[i] + factor * bound.reshape(-1)[i]
                perturbed = moved.to(got.dtype)
                if (perturbed.double()[i] - moved[i]).abs() > 0.5 * factor * bound.reshape(-1)[i]:
                    continue  # the dtype cannot hold that value closely enough to test it
                wrong, _ = fuzz.wrong_elements(perturbed.view(got.shape), *args)
                expected = torch.zeros(got.numel(), dtype=torch.bool)
                expected[i] = caught
                assert torch.equal(wrong.reshape(-1), expected | (wrong.reshape(-1) & ~expected)) and \
                    bool(wrong.reshape(-1)[i]) == caught and int(wrong.sum()) == int(caught), \
                    f"{p}: {pass_} element {i} moved by {factor} x the bound"


def test_a_failure_prints_a_replay_line_that_fails_again(monkeypatch):
    """With tconv's operator broken (a dropped tap), the run reports failures, each followed
    by a --replay command; that command, run on its own, fails the same way, and passes once
    the operator is right again."""
    argv = ["--count", "20", "--seed", str(SEED), "--device", "cpu", "--dtypes", "fp32,float64"]
    with monkeypatch.context() as patch:
        patch.setattr(tconv, "conv_transpose2d", exact("dropped_tap"))
        failed, _, _, text = run(argv)
        assert failed > 0, text
        lines = text.splitlines()
        replays = [line.split("replay: ", 1)[1] for line in lines if "replay: " in line]
        assert len(replays) == failed, text
        words = shlex.split(replays[0])
        assert words[:3] == ["python", "-m", "tconv.fuzz"], replays[0]
        first_failure = next(line for line in lines if line.startswith("FAIL #"))
        again_failed, ran, _, again = run(words[3:])
        assert (again_failed, ran) == (1, 1), again
        assert first_failure.split(" ", 2)[2] in again, (first_failure, again)
    fixed, _, _, text = run(words[3:])
    assert fixed == 0, text
