"""The package as a new user meets it: importing without a working extension says how to
build it."""
import importlib.machinery
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
