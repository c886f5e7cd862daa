"""A small DCGAN-style generator trained with DistributedDataParallel over NCCL, once with
tconv's layers and once with nn.ConvTranspose2d, from the same initial weights, on the same
data; run by torchrun (test_multi_gpu.py):

    torchrun --nproc_per_node=2 tests/python/ddp_generator.py OUT.json [--steps 20]

Each rank trains on its own batches; rank 0 writes the losses of both models at every step and
the largest difference between their parameters after the last step, relative to the largest
parameter, to OUT.json.  Both run in fp32 mode (TF32 off), so they compute the same numbers up
to float32 rounding.
"""
import argparse
import json
import os

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

import tconv


def generator(layer):
    """z (N, 16, 1, 1) -> image (N, 3, 16, 16), as DCGAN's generator, smaller."""
    return nn.Sequential(layer(16, 32, 4, 1, 0, bias=False), nn.ReLU(),
                         layer(32, 16, 4, 2, 1, bias=False), nn.ReLU(),
                         layer(16, 3, 4, 2, 1, bias=True), nn.Tanh())


def train(model, batches, device):
    model = DistributedDataParallel(model.to(device), device_ids=[device.index])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for z, target in batches:
        optimizer.zero_grad()
        loss = (model(z) - target).square().mean()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return model.module, losses


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    dist.init_process_group("nccl")
    rank = dist.get_rank()
    device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    torch.cuda.set_device(device)
    torch.backends.cudnn.allow_tf32 = False

    torch.manual_seed(0)  # the same initial weights on every rank and for both models
    reference = generator(nn.ConvTranspose2d)
    ours = generator(tconv.ConvTranspose2d)
    ours.load_state_dict(reference.state_dict())
    data = torch.Generator().manual_seed(100 + rank)  # each rank its own batches
    batches = [(torch.randn(8, 16, 1, 1, generator=data).to(device),
                torch.rand(8, 3, 16, 16, generator=data).to(device) * 2 - 1)
               for _ in range(args.steps)]
    reference, reference_losses = train(reference, batches, device)
    ours, our_losses = train(ours, batches, device)

    scale = max(p.abs().max().item() for p in reference.parameters())
    difference = max((a - b).abs().max().item()
                     for a, b in zip(ours.parameters(), reference.parameters()))
    if rank == 0:
        with open(args.out, "w") as out:
            json.dump({"world_size": dist.get_world_size(), "losses": our_losses,
                       "reference_losses": reference_losses,
                       "relative_difference": difference / scale}, out)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
