"""Lesson 07's data-parallel script: the shards, the single-process equivalent, and a real two-process run."""

import os
import subprocess
import sys

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
