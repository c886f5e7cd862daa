"""Every pass on tensors of more than 2^31 elements, in float32 and float16, by every variant
that takes the problem and by the dispatcher: x (1, 32, 8200, 8200) and a 3x3 kernel, stride
1, padding 1, so that x, y, grad_x and grad_y each hold 2,151,680,000 elements (2^31 is
2,147,483,648).  Elements are sampled (at random, the last ones, and those around flat index
2^31) and each is checked against float64 under tconv.fuzz's elementwise bound.

Needs about 2.5 times the largest pair of tensors of free GPU memory (21 GB in float32, 11 GB
in float16); skipped with less.  Marked `large` (-m "not large" deselects)."""
import pytest
import torch

from tconv import fuzz, ops

pytestmark = [pytest.mark.cuda, pytest.mark.large]

C, SIDE = 32, 8200
ELEMENTS = C * SIDE * SIDE
SAMPLES = 4096


def sample_pixels(gen, count):
    """Flat indices into a (C, SIDE, SIDE) tensor: random, around 2^31, and the last ones."""
    random = torch.randint(0, ELEMENTS, (count,), generator=gen)
    edges = torch.cat([torch.arange(2**31 - 512, 2**31 + 512), torch.arange(ELEMENTS - 512, ELEMENTS)])
    return torch.cat([random, edges])


def split(flat):
    c, rest = flat // (SIDE * SIDE), flat % (SIDE * SIDE)
    return c, rest // SIDE, rest % SIDE


def gather_window(t, rows, cols, sign):
    """t (C, SIDE, SIDE) at rows + sign*(kh - 1), cols + sign*(kw - 1) for the 3x3 taps: (S, C,
    3, 3) in float64, zero outside the plane."""
    k = torch.arange(3, device=t.device)
    r = rows[:, None] + sign * (k[None, :] - 1)                 # (S, 3)
    q = cols[:, None] + sign * (k[None, :] - 1)
    inside = ((r >= 0) & (r < SIDE))[:, :, None] & ((q >= 0) & (q < SIDE))[:, None, :]
    r, q = r.clamp(0, SIDE - 1), q.clamp(0, SIDE - 1)
    window = t[:, r[:, :, None], q[:, None, :]].double()        # (C, S, 3, 3)
    return (window * inside).transpose(0, 1)


def sampled_reference(pass_, x, weight, grad_y, gen):
    """(flat indices into the pass's output, float64 values, sums of |terms|, k)."""
    w = weight.double()
    if pass_ in ("forward", "grad_input"):
        flat = sample_pixels(gen, SAMPLES).cuda()
        c, rows, cols = split(flat)
        if pass_ == "forward":
            # y[co, oh, ow] = sum over ci, kh, kw of x[ci, oh + 1 - kh, ow + 1 - kw] w[ci, co, kh, kw]
            window = gather_window(x[0], rows, cols, -1)       # (S, C_in, 3, 3)
            taps = w[:, c].permute(1, 0, 2, 3)                  # (S, C_in, 3, 3)
        else:
            # grad_x[ci, ih, iw] = sum over co, kh, kw of grad_y[co, ih - 1 + kh, iw - 1 + kw] w[ci, co, kh, kw]
            window = gather_window(grad_y[0], rows, cols, 1)
            taps = w[c]
        value = (window * taps).sum((1, 2, 3))
        magnitude = (window.abs() * taps.abs()).sum((1, 2, 3))
        return flat, value, magnitude, C * 9
    if pass_ == "grad_bias":
        g = grad_y[0].double()
        return torch.arange(C, device="cuda"), g.sum((1, 2)), g.abs().sum((1, 2)), SIDE * SIDE
    # grad_weight[ci, co, kh, kw] = sum over ih, iw of x[ci, ih, iw] grad_y[co, ih - 1 + kh, iw - 1 + kw]
    entries = [(C - 1, C - 1, 2, 2), (0, 0, 0, 0), (C - 1, 0, 1, 1)]
    entries += [tuple(int(torch.randint(0, n, (1,), generator=gen)) for n in (C, C, 3, 3)) for _ in range(5)]
    value, magnitude, flat = [], [], []
    for ci, co, kh, kw in entries:
        # the rows and columns of x whose shifted grad_y pixel is inside the plane
        rows = slice(max(0, 1 - kh), min(SIDE, SIDE + 1 - kh))
        cols = slice(max(0, 1 - kw), min(SIDE, SIDE + 1 - kw))
        g_rows = slice(rows.start - 1 + kh, rows.stop - 1 + kh)
        g_cols = slice(cols.start - 1 + kw, cols.stop - 1 + kw)
        xs, gs = x[0, ci, rows, cols].double(), grad_y[0, co, g_rows, g_cols].double()
        value.append((xs * gs).sum())
        magnitude.append((xs.abs() * gs.abs()).sum())
        flat.append(((ci * C + co) * 3 + kh) * 3 + kw)
        del xs, gs
    return (torch.tensor(flat, device="cuda"), torch.stack(value), torch.stack(magnitude),
            SIDE * SIDE)


def run_pass(pass_, x, weight, grad_y, algorithm):
    geometry = ((1, 1), (1, 1), (0, 0), (1, 1), 1, "fp32")
    if pass_ == "forward":
        return ops.forward(x, weight, None, *geometry, algorithm=algorithm)
    if pass_ == "grad_input":
        return ops.grad_input(grad_y, weight, (SIDE, SIDE), *geometry, algorithm=algorithm)
    if pass_ == "grad_weight":
        return ops.grad_weight(x, grad_y, (3, 3), *geometry, algorithm=algorithm)
    return ops.grad_bias(grad_y, algorithm=algorithm)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=["f32", "f16"])
@pytest.mark.parametrize("pass_", ["forward", "grad_input", "grad_weight", "grad_bias"])
def test_pass_over_2_31_elements(pass_, dtype, gen):
    assert ELEMENTS > 2**31
    size = torch.tensor([], dtype=dtype).element_size()
    free, _ = torch.cuda.mem_get_info()
    if free < 2.5 * 2 * ELEMENTS * size:
        pytest.skip(f"needs {2.5 * 2 * ELEMENTS * size / 2**30:.0f} GiB of free GPU memory, "
                    f"{free / 2**30:.0f} GiB free")
    cuda_gen = torch.Generator(device="cuda").manual_seed(gen.initial_seed())
    shape = (1, C, SIDE, SIDE)
    needs = {"forward": ("x",), "grad_input": ("grad_y",), "grad_weight": ("x", "grad_y"),
             "grad_bias": ("grad_y",)}[pass_]
    # float16 grad_weight sums 67M products: grad_y scaled down keeps them far from 65504
    scale = 0.125 if dtype == torch.float16 else 1.0
    x = torch.randn(shape, generator=cuda_gen, device="cuda", dtype=dtype) if "x" in needs else None
    grad_y = (torch.randn(shape, generator=cuda_gen, device="cuda", dtype=dtype) * scale
              if "grad_y" in needs else None)
    weight = (torch.randn(C, C, 3, 3, generator=cuda_gen, device="cuda", dtype=dtype) / 12)
    flat, ref, magnitude, k = sampled_reference(pass_, x, weight, grad_y, gen)
    failures = []
    for name in [None] + [name for name, p in ops.variants() if p == pass_]:
        try:
            out = run_pass(pass_, x, weight, grad_y, name)
        except RuntimeError as error:
            if name is not None and "cannot implement this problem" in str(error):
                continue
            raise
        got = out.reshape(-1)[flat]
        del out
        message = fuzz.describe_wrong(f"{pass_} {name or 'default'}", got, ref, magnitude, k)
        if message is not None:
            failures.append(message)
    assert not failures, "\n".join(failures)
