"""Data-parallel training with DistributedDataParallel (lesson 07), launched by torchrun.

Two processes on one machine's CPU (the gloo backend), as lesson 07 runs it:

    torchrun --standalone --nproc-per-node=2 -m helpers.ddp --out ddp.pt

On one machine with several GPUs, the same command with --nproc-per-node set to the number of GPUs:
each process then drives the GPU of its LOCAL_RANK and the backend is nccl. With fewer GPUs than
processes (one GPU and two processes, as on Colab), GPUs cannot be shared out one per process, so
the script falls back to gloo on the CPU and says so (`choose_backend`). On several machines, run
the same command on each of them, with the same job id and the same rendezvous point (one machine's
address, reachable by all; the c10d rendezvous numbers the machines itself, so no --node-rank):

    torchrun --nnodes=2 --nproc-per-node=<GPUs per machine> --rdzv-id=<job id> \\
             --rdzv-backend=c10d --rdzv-endpoint=<first machine>:29400 -m helpers.ddp --out ddp.pt

Each process trains on its own shard of every global batch (DistributedSampler); DDP averages the
gradients across processes during backward(), so every replica takes the same step.
`single_process_equivalent` computes what one process with the whole global batch would get.
`ring_all_reduce` shows, step by step, how an all-reduce adds the ranks' tensors.
"""

from __future__ import annotations

import argparse
import os

import torch
import torch.distributed as dist
from torch import nn
from torch.nn import functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from helpers import data


def choose_backend(local_rank: int, local_world_size: int) -> tuple[str, torch.device, str]:
    """(backend, device, reason) for the process of `local_rank` among `local_world_size` on this machine.

    nccl needs one GPU per process: process k drives cuda:k. That holds only when the machine has at
    least as many GPUs as processes; otherwise (no GPU, or one GPU and two processes) every process
    uses gloo on the CPU. The reason says which case applied, so the fallback is never silent.
    """
    if not 0 <= local_rank < local_world_size:
        raise ValueError(f"LOCAL_RANK={local_rank} is outside 0..{local_world_size - 1} (LOCAL_WORLD_SIZE={local_world_size})")
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if gpus >= local_world_size:
        return "nccl", torch.device("cuda", local_rank), f"{gpus} GPU(s) for {local_world_size} process(es): one GPU each"
    if gpus == 0:
        return "gloo", torch.device("cpu"), "no GPU: every process on the CPU"
    return "gloo", torch.device("cpu"), (f"only {gpus} GPU(s) for {local_world_size} processes on this machine, and nccl needs "
                                         "one GPU per process: every process on the CPU instead")


def ring_all_reduce(tensors: list[torch.Tensor]) -> list[list[list[torch.Tensor]]]:
    """Sum `tensors` (one per rank, equal shapes) the way a ring all-reduce does; returns every step.

    Each rank's tensor is cut into as many chunks as there are ranks. In each of the n - 1 steps of
    the reduce-scatter, rank r sends one chunk to rank r + 1 (round the ring), which adds it to its
    own; afterwards rank r holds the complete sum of chunk r + 1. In the n - 1 steps of the
    all-gather, the completed chunks travel round the ring once more, each replacing the receiver's.
    Every rank sends 2 (n - 1) / n of a tensor in all, whatever n is. The result: steps[i][rank][chunk],
    steps[0] the starting chunks and steps[-1] the end, where every rank holds the sum.
    """
    n = len(tensors)
    if n < 2 or any(t.shape != tensors[0].shape for t in tensors):
        raise ValueError(f"ring_all_reduce needs at least 2 tensors of one shape, got shapes {[tuple(t.shape) for t in tensors]}")
    if tensors[0].numel() < n:
        raise ValueError(f"a tensor of {tensors[0].numel()} values cannot be cut into {n} chunks")
    chunks = [list(t.detach().flatten().clone().tensor_split(n)) for t in tensors]
    steps = [[[c.clone() for c in rank] for rank in chunks]]
    for step in range(n - 1):  # reduce-scatter: rank r sends chunk (r - step) mod n to rank r + 1
        sent = [(r, (r - step) % n, chunks[r][(r - step) % n].clone()) for r in range(n)]
        for r, c, values in sent:
            chunks[(r + 1) % n][c] += values
        steps.append([[c.clone() for c in rank] for rank in chunks])
    for step in range(n - 1):  # all-gather: rank r sends its complete chunk (r + 1 - step) mod n to rank r + 1
        sent = [(r, (r + 1 - step) % n, chunks[r][(r + 1 - step) % n].clone()) for r in range(n)]
        for r, c, values in sent:
            chunks[(r + 1) % n][c] = values
        steps.append([[c.clone() for c in rank] for rank in chunks])
    return steps


def make_model() -> nn.Module:
    """A small network without batch norm or dropout, so that the comparison can be exact.

    (DDP does not synchronise batch-norm statistics across processes unless the model is
    converted with nn.SyncBatchNorm.convert_sync_batchnorm; dropout draws different masks.)
    """
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))


def training_data(images: int) -> TensorDataset:
    mnist = data.load_mnist(train=True)
    x = (mnist.data[:images].float() / 255 - 0.1307) / 0.3081
    return TensorDataset(x, mnist.targets[:images])


def shards(dataset, world_size: int, epoch: int, seed: int = 0) -> list[list[int]]:
    """The indices each rank's DistributedSampler yields in `epoch`."""
    shard_lists = []
    for rank in range(world_size):
        sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=seed, drop_last=True)
        sampler.set_epoch(epoch)
        shard_lists.append(list(sampler))
    return shard_lists


def single_process_equivalent(images: int, global_batch: int, epochs: int, lr: float, world_size: int) -> tuple[dict, list[float]]:
    """One process, the same model and optimiser, each step on the union of the ranks' shards."""
    dataset = training_data(images)
    model = make_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    per_rank = global_batch // world_size
    losses = []
    for epoch in range(epochs):
        shard_lists = shards(dataset, world_size, epoch)
        for start in range(0, len(shard_lists[0]) - per_rank + 1, per_rank):
            index = torch.tensor([i for shard in shard_lists for i in shard[start : start + per_rank]])
            x, y = dataset[index]
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    return model.state_dict(), losses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="where rank 0 saves the trained weights and losses")
    parser.add_argument("--images", type=int, default=2_000)
    parser.add_argument("--global-batch", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--lr", type=float, default=0.05)
    args = parser.parse_args()

    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    local_world_size = int(os.environ.get("LOCAL_WORLD_SIZE", 1))  # processes on this machine (torchrun sets it)
    backend, device, reason = choose_backend(local_rank, local_world_size)
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.set_device(device)
    dist.init_process_group(backend=backend)
    rank, world_size = dist.get_rank(), dist.get_world_size()
    if rank == 0:
        print(f"backend {backend}, rank 0 on {device}: {reason}", flush=True)
    if args.global_batch % world_size:
        raise SystemExit(f"--global-batch {args.global_batch} is not divisible by the {world_size} processes")

    dataset = training_data(args.images)
    model = make_model().to(device)  # the same seed in every process: identical starting weights
    ddp_model = DistributedDataParallel(model, device_ids=[local_rank] if cuda else None)
    sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=0, drop_last=True)
    loader = DataLoader(dataset, batch_size=args.global_batch // world_size, sampler=sampler, drop_last=True, pin_memory=cuda)
    optimizer = torch.optim.SGD(ddp_model.parameters(), lr=args.lr, momentum=0.9)

    losses = []
    for epoch in range(args.epochs):
        sampler.set_epoch(epoch)  # a new shuffle each epoch, the same on every rank
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            optimizer.zero_grad()
            loss = F.cross_entropy(ddp_model(x), y)
            loss.backward()  # DDP all-reduces (averages) the gradients here
            optimizer.step()
            global_loss = loss.detach().clone()
            dist.all_reduce(global_loss)  # for the record only: the mean loss over the global batch
            losses.append(global_loss.item() / world_size)
    if rank == 0:
        torch.save({"state": {k: v.cpu() for k, v in model.state_dict().items()}, "losses": losses, "world_size": world_size}, args.out)
        print(f"rank 0 of {world_size} ({dist.get_backend()}): {len(losses)} steps, loss {losses[0]:.4f} -> {losses[-1]:.4f}, saved {args.out}")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
