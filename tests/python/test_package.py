"""The package as a new user meets it: importing without a working extension says how to
build it."""
import importlib.machinery
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import tconv


def import_copy(tmp_path, extension_bytes=None):
    """stderr of `import tconv` from a copy of the package's Python files, without tconv._C
    (a checkout before `make ext`) or with a file of extension_bytes in its place."""
    shutil.copytree(Path(tconv.__file__).parent, tmp_path / "tconv",
                    ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__"))
    if extension_bytes is not None:
        suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
        (tmp_path / "tconv" / f"_C{suffix}").write_bytes(extension_bytes)
    result = subprocess.run([sys.executable, "-c", "import tconv"], cwd=tmp_path,
                            capture_output=True, text=True, env={"PYTHONPATH": str(tmp_path)})
    assert result.returncode != 0
    assert "make ext" in result.stderr
    return result.stderr


def test_missing_extension_says_how_to_build_it(tmp_path):
    stderr = import_copy(tmp_path)
    assert "tconv._C is not built" in stderr
    assert "circular import" not in stderr


def test_broken_extension_says_why_and_how_to_build_it(tmp_path):
    stderr = import_copy(tmp_path, b"not a shared object")
    assert "tconv._C does not load" in stderr


def test_package_data_ships_the_shape_list(tmp_path):
    """setup.py's build_py puts tests/problems.txt into the package as a file of its own."""
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "setup.py", "-q", "build_py", "--build-lib",
                             str(tmp_path)], cwd=root, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    shipped = tmp_path / "tconv" / "problems.txt"
    assert shipped.is_file() and not shipped.is_symlink()
    assert shipped.read_text() == (root / "tests" / "problems.txt").read_text()


def test_bench_runs_from_an_installed_package(tmp_path):
    """python -m tconv.bench from a copy of the package outside the checkout: the shape list
    comes with it, results go to ./bench-results, progress to stderr."""
    installed = tmp_path / "site"
    shutil.copytree(Path(tconv.__file__).parent, installed / "tconv",
                    ignore=shutil.ignore_patterns("__pycache__"))
    work = tmp_path / "work"
    work.mkdir()
    result = subprocess.run([sys.executable, "-m", "tconv.bench", "--device", "cpu", "--quick",
                             "--only", "seed", "--reps", "1", "--warmup", "0"], cwd=work,
                            capture_output=True, text=True, env={"PYTHONPATH": str(installed)})
    assert result.returncode == 0, result.stderr[-3000:]
    assert list((work / "bench-results").glob("*-cpu-quick.json"))
    assert "[1/" in result.stderr and "min left" in result.stderr


def test_readme_usage_runs(tmp_path):
    """The README's Python snippet, as given (on the CPU here)."""
    root = Path(__file__).resolve().parents[2]
    (snippet,) = re.findall(r"```python\n(.*?)```", (root / "README.md").read_text(), re.S)
    result = subprocess.run([sys.executable, "-c", snippet], cwd=tmp_path, capture_output=True,
                            text=True, env={"PYTHONPATH": str(Path(tconv.__file__).parents[1]),
                                            "PATH": os.environ["PATH"]})
    assert result.returncode == 0, result.stderr[-3000:]
