"""torch.compile of models made of tconv layers: one graph (fullgraph=True) whose forward holds
torch.ops.tconv.forward and whose backward holds grad_input, grad_weight and grad_bias, with
the results of eager mode and no warnings.  On the CPU always (CI runs this file under the
pinned torch and under the newest), on a GPU with the `cuda` marker."""
import logging
import warnings

import pytest
import torch
from torch._dynamo.backends.common import aot_autograd
from torch._functorch.aot_autograd import make_boxed_func

import tconv

DEVICES = [pytest.param("cpu"), pytest.param("cuda", marks=pytest.mark.cuda)]


@pytest.fixture(autouse=True)
def fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


class Recorder:
    """A torch.compile backend (AOTAutograd, eager execution) that keeps the operators of
    each forward and backward graph it is given."""

    def __init__(self):
        self.graphs = {"forward": [], "backward": []}
        self.backend = aot_autograd(fw_compiler=self.compiler("forward"),
                                    bw_compiler=self.compiler("backward"))

    def compiler(self, kind):
        def compile_graph(gm, example_inputs):
            self.graphs[kind].append([str(n.target) for n in gm.graph.nodes
                                      if n.op == "call_function"])
            return make_boxed_func(gm.forward)
        return compile_graph

    def count(self, kind, op):
        return sum(graph.count(f"tconv.{op}.default") for graph in self.graphs[kind])


def generator_model(device, layer=tconv.ConvTranspose2d):
    """Two layers (one with bias, strided; one grouped, without) around a ReLU."""
    return torch.nn.Sequential(
        layer(4, 6, 3, stride=2, padding=1, output_padding=1),
        torch.nn.ReLU(),
        layer(6, 3, (2, 3), groups=3, bias=False, dilation=(2, 1)),
    ).to(device)


def forward_backward(model, x):
    """The output and the gradients of x and of every parameter, for a fixed upstream grad."""
    model.zero_grad()
    x = x.detach().requires_grad_()
    y = model(x)
    y.backward(torch.linspace(-1, 1, y.numel(), device=y.device).view(y.shape))
    return [y.detach(), x.grad] + [p.grad for p in model.parameters()]


class Messages(logging.Handler):
    """Python warnings and WARNING log records (torch.compile's own among them) while active."""

    def __enter__(self):
        self.messages = []
        self.setLevel(logging.WARNING)
        logging.getLogger().addHandler(self)
        self.catcher = warnings.catch_warnings(record=True)
        self.caught = self.catcher.__enter__()
        warnings.simplefilter("always")
        return self

    def emit(self, record):
        self.messages.append(record.getMessage())

    def __exit__(self, *exc):
        self.catcher.__exit__(*exc)
        logging.getLogger().removeHandler(self)
        self.messages += [str(w.message) for w in self.caught]


def assert_no_warnings_of_its_own(run, device):
    """run(model) with tconv's layers warns of nothing that run(model) with PyTorch's own does
    not (torch 2.1 warns of some of its deprecated attributes the first time it compiles)."""
    torch_model = generator_model(device, torch.nn.ConvTranspose2d)
    with Messages() as baseline:
        run(torch_model)
    torch._dynamo.reset()
    with Messages() as ours:
        run(generator_model(device))
    extra = set(ours.messages) - set(baseline.messages)
    assert not extra, "\n".join(extra)


@pytest.mark.parametrize("device", DEVICES)
def test_fullgraph_holds_tconv_operators_forward_and_backward(device, gen):
    model = generator_model(device)
    x = torch.randn(2, 4, 5, 7, generator=gen).to(device)
    recorder = Recorder()
    compiled = torch.compile(model, fullgraph=True, backend=recorder.backend)
    ours = forward_backward(compiled, x)
    assert recorder.count("forward", "forward") == 2
    assert recorder.count("backward", "grad_input") == 2
    assert recorder.count("backward", "grad_weight") == 2
    assert recorder.count("backward", "grad_bias") == 1
    for o, r in zip(ours, forward_backward(model, x)):
        assert torch.equal(o, r)


@pytest.mark.parametrize("device", DEVICES)
def test_dynamic_shapes_take_one_graph(device, gen):
    """Input sizes as symbols: other batch and image sizes reuse the graph."""
    model = generator_model(device)
    recorder = Recorder()
    compiled = torch.compile(model, fullgraph=True, dynamic=True, backend=recorder.backend)
    for shape in ((2, 4, 5, 7), (3, 4, 6, 4), (4, 4, 9, 3)):  # not 1: torch specialises it
        x = torch.randn(shape, generator=gen).to(device)
        for o, r in zip(forward_backward(compiled, x), forward_backward(model, x)):
            assert torch.equal(o, r)
    assert len(recorder.graphs["forward"]) == len(recorder.graphs["backward"]) == 1


@pytest.mark.parametrize("device", DEVICES)
def test_inductor_matches_eager(device, gen):
    """The default backend (inductor), with unbatched input and output_size as well."""
    conv = tconv.ConvTranspose2d(3, 4, 3, stride=2, padding=1).to(device)
    model = generator_model(device)

    def fn(x, z):
        return model(x).sum() + conv(z, output_size=(8, 8)).square().sum()

    compiled = torch.compile(fn, fullgraph=True)
    x = torch.randn(2, 4, 5, 7, generator=gen).to(device)
    z = torch.randn(3, 4, 4, generator=gen).to(device).requires_grad_()
    params = [z, *model.parameters(), *conv.parameters()]
    ours = torch.autograd.grad(compiled(x, z), params)
    theirs = torch.autograd.grad(fn(x, z), params)
    for o, r in zip(ours, theirs):
        assert torch.allclose(o, r, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("device", DEVICES)
def test_compiling_warns_of_nothing(device, gen):
    x = torch.randn(2, 4, 5, 7, generator=gen).to(device)
    assert_no_warnings_of_its_own(
        lambda model: forward_backward(torch.compile(model, fullgraph=True, backend="aot_eager"),
                                       x), device)
    assert_no_warnings_of_its_own(
        lambda model: forward_backward(torch.compile(model, dynamic=True), x), device)


def test_meta_tensors_give_shapes_only():
    """The fake kernels, which torch.compile traces with, are also the meta tensors' kernels."""
    x, weight = torch.empty(2, 4, 5, 7, device="meta"), torch.empty(4, 3, 3, 2, device="meta")
    args = ((2, 1), (1, 0), (1, 0), (1, 2), 1, None)
    y = tconv.ops.forward(x, weight, None, *args)
    assert y.device.type == "meta" and y.shape == (2, 3, 10, 9)
    assert tconv.ops.grad_input(y, weight, (5, 7), *args).shape == x.shape
    assert tconv.ops.grad_weight(x, y, (3, 2), *args).shape == weight.shape
    assert tconv.ops.grad_bias(y).shape == (3,)
