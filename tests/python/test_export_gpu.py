"""The single-file solution on a GPU: written by python -m tconv.export, compiled by its own
load_inline, and checked by the seed's check (tests/python/seed_check.py) in a fresh process
where tconv is not importable.  The first run compiles for a few minutes (make gpu-test gives
it a step of its own).  Skipped without a CUDA device (the `cuda` marker)."""
import subprocess
import sys
from pathlib import Path

import pytest

from tconv import export

pytestmark = pytest.mark.cuda


def test_solution_passes_the_seed_check_in_a_fresh_process(tmp_path):
    solution = tmp_path / "solution.py"
    root = Path(__file__).resolve().parents[2]
    assert export.main(["kernelbench", "-o", str(solution), "--root", str(root)]) == 0
    check = Path(__file__).with_name("seed_check.py")
    # -I: no PYTHONPATH, no user site; seed_check.py also blocks `import tconv` itself
    result = subprocess.run([sys.executable, "-I", str(check), str(solution)], cwd=tmp_path,
                            capture_output=True, text=True)
    print(result.stdout, result.stderr[-5000:])
    assert result.returncode == 0, result.stdout + result.stderr[-5000:]
    assert result.stdout.count("PASS") == 4
