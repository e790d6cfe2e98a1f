"""Lesson 07's data-parallel script: the shards, the single-process equivalent, and a real two-process run."""

import os
import subprocess
import sys

import pytest
import torch

from helpers import ddp


def test_shards_split_each_epoch_into_disjoint_equal_parts():
    dataset = ddp.training_data(101)
    first = ddp.shards(dataset, 2, epoch=0)
    assert len(first[0]) == len(first[1]) == 50  # drop_last: 101 -> 2 x 50
    assert not set(first[0]) & set(first[1])
    assert ddp.shards(dataset, 2, epoch=1) != first  # a new shuffle every epoch
    assert ddp.shards(dataset, 2, epoch=0) == first  # and the same one on every rank and every run


def test_single_process_equivalent_trains():
    _, losses = ddp.single_process_equivalent(images=400, global_batch=40, epochs=2, lr=0.05, world_size=2)
    assert len(losses) == 20 and losses[-1] < 0.7 * losses[0]


def test_two_processes_under_torchrun_equal_one(tmp_path):
    out = tmp_path / "ddp.pt"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "helpers.ddp",
               "--out", str(out), "--images", "400", "--global-batch", "40", "--epochs", "1"]
    completed = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = torch.load(out, weights_only=True)
    state, losses = ddp.single_process_equivalent(images=400, global_batch=40, epochs=1, lr=0.05, world_size=2)
    assert result["world_size"] == 2 and len(result["losses"]) == len(losses) == 10
    assert max((result["state"][k] - state[k]).abs().max().item() for k in state) < 1e-5
    assert max(abs(a - b) for a, b in zip(result["losses"], losses)) < 1e-5


def test_an_indivisible_global_batch_is_refused(tmp_path):
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "helpers.ddp",
               "--out", str(tmp_path / "x.pt"), "--images", "100", "--global-batch", "25"]
    completed = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert completed.returncode != 0
    assert "--global-batch 25 is not divisible by the 2 processes" in completed.stderr + completed.stdout


def _gpus(monkeypatch, count):
    """Pretend the machine has `count` CUDA GPUs (no GPU is touched: choose_backend only counts them)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: count > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)


def test_no_gpu_means_gloo_on_the_cpu(monkeypatch):
    _gpus(monkeypatch, 0)
    backend, device, reason = ddp.choose_backend(local_rank=1, local_world_size=2)
    assert (backend, device) == ("gloo", torch.device("cpu")) and "no GPU" in reason


def test_one_gpu_for_two_processes_falls_back_to_gloo_and_says_why(monkeypatch):
    # The bug this guards: nccl with cuda:1 on a machine (Colab, a laptop) that has only cuda:0.
    _gpus(monkeypatch, 1)
    for rank in (0, 1):
        backend, device, reason = ddp.choose_backend(local_rank=rank, local_world_size=2)
        assert (backend, device) == ("gloo", torch.device("cpu"))
        assert "only 1 GPU(s) for 2 processes" in reason


def test_one_gpu_per_process_means_nccl_on_the_local_rank(monkeypatch):
    _gpus(monkeypatch, 2)  # no process group is initialised: only the choice is checked
    for rank in (0, 1):
        backend, device, _ = ddp.choose_backend(local_rank=rank, local_world_size=2)
        assert (backend, device) == ("nccl", torch.device("cuda", rank))
    _gpus(monkeypatch, 1)
    assert ddp.choose_backend(local_rank=0, local_world_size=1)[:2] == ("nccl", torch.device("cuda", 0))


def test_a_local_rank_outside_the_world_is_refused(monkeypatch):
    _gpus(monkeypatch, 0)
    with pytest.raises(ValueError, match="LOCAL_RANK=2 is outside 0..1"):
        ddp.choose_backend(local_rank=2, local_world_size=2)


@pytest.mark.parametrize("ranks", [2, 3, 4])
def test_ring_all_reduce_leaves_the_sum_on_every_rank(ranks):
    generator = torch.Generator().manual_seed(ranks)
    tensors = [torch.randint(-50, 50, (10,), generator=generator).double() for _ in range(ranks)]  # integers: exact sums
    steps = ddp.ring_all_reduce(tensors)
    assert len(steps) == 1 + 2 * (ranks - 1)
    total = torch.stack(tensors).sum(dim=0)
    for rank in steps[-1]:
        assert torch.equal(torch.cat(rank), total)
    # after the reduce-scatter, rank r holds the finished sum of chunk r + 1 (a ring that skips a step fails here)
    middle = steps[ranks - 1]
    for r in range(ranks):
        assert torch.equal(middle[r][(r + 1) % ranks], total.tensor_split(ranks)[(r + 1) % ranks])
    with pytest.raises(ValueError, match="at least 2 tensors"):
        ddp.ring_all_reduce(tensors[:1])
