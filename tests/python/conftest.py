"""Shared test setup: one seed per run (printed in the header and again at the end, which
`pytest -q` shows too; TCONV_SEED=N repeats a run), a per-test generator derived from it, the
`cuda` marker's skip, and a count of the tests skipped for each reason."""
import collections
import os
import zlib

# torch brings its own OpenMP runtime and tconv's C reference links the system one; on a
# small machine their idle threads spin against each other on the tests' tiny problems
# (about 10x slower), so both are told to sleep when idle.  Must precede `import torch`.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

import pytest  # noqa: E402
import torch  # noqa: E402

SEED = int(os.environ.get("TCONV_SEED", int.from_bytes(os.urandom(4), "little")))


def pytest_report_header(config):
    return f"tconv seed: {SEED} (repeat with TCONV_SEED={SEED})"


def pytest_terminal_summary(terminalreporter):
    """The seed, and how many tests were skipped for each reason."""
    reasons = collections.Counter()
    for report in terminalreporter.stats.get("skipped", []):
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        reasons[reason.replace("Skipped: ", "", 1)] += 1
    terminalreporter.write_line(f"tconv seed: {SEED} (repeat with TCONV_SEED={SEED})")
    for reason, count in reasons.most_common():
        terminalreporter.write_line(f"skipped {count}: {reason}")


def cuda_ready():
    """True when a CUDA device is visible and tconv was built with CUDA kernels."""
    import tconv

    return torch.cuda.is_available() and tconv.ops.cuda_available()


def pytest_collection_modifyitems(config, items):
    if cuda_ready():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device and tconv built with CUDA")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def gen(request):
    """A CPU generator seeded from the run's seed and the test's id: fresh data every run,
    the same data for the same test under the same TCONV_SEED."""
    return torch.Generator().manual_seed(SEED ^ zlib.crc32(request.node.nodeid.encode()))
