"""tconv on more than one GPU: tensors on a device that is not the current one (the binding's
device guard and that device's stream), and DistributedDataParallel training over NCCL with
torchrun (tests/python/ddp_generator.py) matching nn.ConvTranspose2d.  Skipped with fewer than
two GPUs."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import tconv

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two GPUs")]


def test_tensors_on_another_device_than_the_current(gen):
    torch.cuda.set_device(0)
    x = torch.randn(2, 8, 9, 7, generator=gen).to("cuda:1").requires_grad_()
    weight = torch.randn(8, 4, 3, 3, generator=gen).to("cuda:1").requires_grad_()
    side = torch.cuda.Stream(device=1)  # the work must go to device 1's current stream
    with torch.cuda.stream(side):
        y = tconv.conv_transpose2d(x, weight, stride=2, padding=1, precision="fp32")
        grads = torch.autograd.grad(y.square().sum(), (x, weight))
    side.synchronize()
    assert torch.cuda.current_device() == 0 and y.device == x.device
    with torch.backends.cudnn.flags(allow_tf32=False):
        ref = F.conv_transpose2d(x.double(), weight.double(), stride=2, padding=1)
        ref_grads = torch.autograd.grad(ref.square().sum(), (x, weight))
    for ours, theirs in zip([y, *grads], [ref, *ref_grads]):
        assert ours.device == x.device
        assert torch.allclose(ours.double(), theirs.double(), rtol=1e-4, atol=1e-4)


def test_ddp_generator_matches_conv_transpose2d(tmp_path):
    out = tmp_path / "ddp.json"
    script = Path(__file__).with_name("ddp_generator.py")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(Path(tconv.__file__).parents[1]), os.environ.get("PYTHONPATH", "")]))
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                             "--nproc_per_node=2", str(script), str(out)],
                            capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["world_size"] == 2 and len(report["losses"]) == 20
    assert report["losses"][-1] < report["losses"][0]  # it trained
    for ours, theirs in zip(report["losses"], report["reference_losses"]):
        assert abs(ours - theirs) <= 1e-4 * abs(theirs)
    assert report["relative_difference"] < 1e-4
