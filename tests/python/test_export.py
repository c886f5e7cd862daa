"""python -m tconv.export kernelbench: the seed's single-file solution.  On the CPU: the file
parses, imports only what the seed allows, holds no word a harness rejects, embeds the sources
it found at run time, and its Python half (parameters, autograd.Function, arguments) is right
when load_inline is replaced by tconv's own extension, whose binding the file embeds.
Compiling the embedded sources is scripts/export_check.sh's job (CI); running the file on a
GPU is test_export_gpu.py's."""
import ast
import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.utils.cpp_extension
from torch import nn

import tconv
from tconv import export
from test_module import Model

ALLOWED_IMPORTS = {"torch", "torch.nn", "torch.nn.functional", "torch.utils.cpp_extension"}
ROOT = Path(__file__).resolve().parents[2]  # the source tree (tconv may be built elsewhere)


@pytest.fixture(scope="module")
def solution(tmp_path_factory):
    path = tmp_path_factory.mktemp("export") / "solution.py"
    assert export.main(["kernelbench", "-o", str(path), "--root", str(ROOT)]) == 0
    return path


def embedded(text):
    """The string constants the file assigns at module level, by name."""
    return {node.targets[0].id: ast.literal_eval(node.value) for node in ast.parse(text).body
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)}


def test_imports_only_what_the_seed_allows(solution):
    imported = set()
    for node in ast.walk(ast.parse(solution.read_text())):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module)
    assert imported and imported <= ALLOWED_IMPORTS, imported - ALLOWED_IMPORTS
    assert "__import__" not in solution.read_text() and "importlib" not in solution.read_text()


def test_no_exception_handler_and_no_pass(solution):
    """Neither in the Python (no try statement, no pass statement) nor anywhere in the text,
    the embedded sources included, as harnesses search it."""
    text = solution.read_text()
    for node in ast.walk(ast.parse(text)):
        assert not isinstance(node, (ast.Try, ast.Pass)), ast.dump(node)[:80]
    found = re.findall(r".*\b(?:try|except|pass)\b.*", text)
    assert not found, found[:5]


def test_no_call_into_pytorch_convolution(solution):
    """No attribute of torch or torch.nn with 'conv' in its name is used (the module's own
    conv_transpose2d attribute aside), and the C++ calls no ATen, cuDNN or torch convolution."""
    text = solution.read_text()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Attribute) and "conv" in node.attr.lower():
            assert isinstance(node.value, ast.Name) and node.value.id == "self", ast.unparse(node)
    sources = embedded(text)
    for name in ("CPP_SOURCE", "CUDA_SOURCE"):
        assert not re.search(r"\b(at|torch)::\w*conv|cudnn", sources[name], re.I), name


def test_embeds_every_library_source_found_at_run_time(solution):
    """Every C and CUDA file under src/ (but the no-CUDA stand-in) and the binding, each as
    kernels or calls the harnesses look for."""
    sources = embedded(solution.read_text())
    cuda, cpp = sources["CUDA_SOURCE"], sources["CPP_SOURCE"]
    lines = set(re.findall(r'#line 1 "([^"]+)"', cuda))
    expected = {p.relative_to(ROOT).as_posix() for p in (ROOT / "src").rglob("*")
                if p.suffix in (".c", ".cu") and p.name != export.NO_CUDA}
    assert expected <= lines and "src/no_cuda.c" not in lines
    assert "include/tconv.h" in lines
    assert "__global__" in cuda and "threadIdx." in cuda
    assert "PYBIND11_MODULE" in cpp and "#define TCONV_WITH_CUDA 1" in cpp
    assert not re.search(r'#\s*include\s*"', cuda + cpp), "a local #include was left"


def test_sources_in_subfolders_are_found(tmp_path):
    """A source moved into a subfolder (as the library's layout may change) is still found and
    its includes followed from its new place."""
    for part in ("include", "src", "python/tconv/csrc"):
        shutil.copytree(ROOT / part, tmp_path / part)
    cuda_dir = tmp_path / "src" / "cuda"
    moved = next(p for p in sorted(cuda_dir.rglob("*.cu")) if "naive" in p.name)
    (cuda_dir / "deep").mkdir()
    target = cuda_dir / "deep" / moved.name
    target.write_text(re.sub(r'#include "(?!cuda/)([^"]+)"', r'#include "cuda/\1"',
                             moved.read_text()))
    moved.unlink()
    text = export.kernelbench(tmp_path)
    assert f'#line 1 "src/cuda/deep/{moved.name}"' in embedded(text)["CUDA_SOURCE"]


def test_names_two_sources_define_are_kept_apart(tmp_path):
    """File-scope names that two sources both define are renamed in each, and each source's
    macros end with it; names defined once and declarations are left alone."""
    (tmp_path / "include").mkdir()
    (tmp_path / "include" / "lib.h").write_text(
        "#ifndef LIB_H\n#define LIB_H\nint shared_entry(int);\n#endif\n")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / export.NO_CUDA).write_text("int left_out;\n")
    common = '#include "lib.h"\n#define SCALE 2\ntypedef int tile_t;\n'
    (tmp_path / "src" / "a.cu").write_text(
        common + "static int adjust(int v) { return v * SCALE; }\n"
        "int shared_entry(int v) { return adjust(v); }\n")
    (tmp_path / "src" / "b.cu").write_text(
        common + "/* the other adjust */ static int adjust(int v) { return v + 1; }\n"
        "extern int shared_entry(int);\nenum { ONLY_B = 1 };\n")
    cuda = export.Sources(tmp_path).cuda_source()
    assert cuda.split("\n").count("int shared_entry(int);") == 1  # the guarded header, once
    for unit in ("a", "b"):
        assert f"#define adjust adjust_{unit}" in cuda and f"#define tile_t tile_t_{unit}" in cuda
    assert cuda.count("#undef SCALE") == 2 and cuda.count("#undef adjust") == 2
    assert "shared_entry_" not in cuda and "ONLY_B_" not in cuda and "left_out" not in cuda
    assert "the other adjust" not in cuda


class RecordingExtension:
    """What load_inline gives the solution, here tconv's own extension (the same binding),
    recording the calls made through it."""

    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        def call(*args):
            self.calls.append((name, args))
            return getattr(tconv._C, name)(*args)
        return call


@pytest.fixture
def loaded(solution, monkeypatch):
    """The solution imported with load_inline replaced: (module, load_inline's arguments,
    the extension)."""
    extension, builds = RecordingExtension(), []

    def load_inline(**kwargs):
        builds.append(kwargs)
        return extension

    monkeypatch.setattr(torch.utils.cpp_extension, "load_inline", load_inline)
    spec = importlib.util.spec_from_file_location("solution_under_test", solution)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, builds, extension


# (args, kwargs) of the seed's Model
MODEL_ARGS = [((8, 8, 3), {}),
              ((4, 6, 3), {"stride": 2, "padding": 1, "output_padding": 1, "bias": True}),
              ((6, 9, (3, 2)), {"groups": 3, "bias": True, "stride": (2, 1)})]


@pytest.mark.parametrize("args,kwargs", MODEL_ARGS)
def test_model_new_matches_the_seed_model_on_the_cpu(loaded, args, kwargs, gen):
    """Same parameters for the same seed (bit for bit), same state_dict keys, and output and
    gradients of nn.ConvTranspose2d, through the embedded binding's CPU path."""
    module, builds, extension = loaded
    torch.manual_seed(42)
    original = Model(*args, **kwargs)
    after = torch.random.get_rng_state()
    torch.manual_seed(42)
    new = module.ModelNew(*args, **kwargs)
    assert torch.equal(torch.random.get_rng_state(), after)
    assert list(new.state_dict()) == list(original.state_dict())
    for (name, ours), theirs in zip(new.state_dict().items(), original.state_dict().values()):
        assert torch.equal(ours, theirs), name
    for dtype in (torch.float32, torch.float64):
        x = torch.rand(2, args[0], 7, 5, generator=gen, dtype=dtype)
        outputs = []
        for model in (original.to(dtype), new.to(dtype)):
            xg = x.clone().requires_grad_()
            y = model(xg)
            grads = torch.autograd.grad(y, [xg, *model.parameters()], torch.ones_like(y))
            outputs.append([y, *grads])
        for ours, theirs in zip(outputs[1], outputs[0]):
            assert torch.allclose(ours, theirs, atol=1e-5 if dtype == torch.float32 else 1e-12)
    names = {name for name, _ in extension.calls}
    assert {"forward", "grad_input", "grad_weight"} <= names
    assert ("grad_bias" in names) == bool(kwargs.get("bias"))
    assert len(builds) == 1  # compiled once per process


def test_precision_follows_the_cudnn_flag_and_unbatched_input(loaded, gen):
    module, _, extension = loaded
    model = module.ModelNew(3, 4, 3, stride=2)
    x = torch.rand(3, 5, 6, generator=gen)
    saved = torch.backends.cudnn.allow_tf32
    try:
        for flag, precision in ((True, "tf32"), (False, "fp32")):
            torch.backends.cudnn.allow_tf32 = flag
            y = model(x)
            assert extension.calls[-1][1][8] == precision
    finally:
        torch.backends.cudnn.allow_tf32 = saved
    assert y.shape == (4, 11, 13)
    assert torch.allclose(y, nn.functional.conv_transpose2d(
        x, model.conv_transpose2d.weight, stride=2), atol=1e-5)


def test_load_inline_gets_the_sources_and_flags(loaded):
    module, builds, _ = loaded
    module.ModelNew(2, 2, 1)(torch.rand(1, 2, 2, 2))
    (build,) = builds
    assert build["cpp_sources"] == [module.CPP_SOURCE] and build["cuda_sources"] == [module.CUDA_SOURCE]
    flags = build["extra_cuda_cflags"]
    assert any(f.startswith("-gencode=arch=compute_") for f in flags)
    if not torch.cuda.is_available():
        assert flags[-1] == "-gencode=arch=compute_80,code=sm_80"


def test_export_fails_clearly_outside_a_source_tree(tmp_path, capsys):
    assert export.main(["kernelbench", "-o", str(tmp_path / "s.py"), "--root", str(tmp_path)]) == 1
    assert "not a tconv source tree" in capsys.readouterr().err


def test_runs_as_a_module(tmp_path):
    """`python -m tconv.export` itself (what the README gives)."""
    out = tmp_path / "solution.py"
    result = subprocess.run([sys.executable, "-m", "tconv.export", "kernelbench", "-o", str(out),
                             "--root", str(ROOT)],
                            capture_output=True, text=True,
                            env={"PYTHONPATH": str(export.PACKAGE.parent)})
    assert result.returncode == 0, result.stderr
    assert "class ModelNew(nn.Module)" in out.read_text()
