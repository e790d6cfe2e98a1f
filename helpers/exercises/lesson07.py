"""The checks of lesson 07's exercises."""

from __future__ import annotations

import torch

from helpers.exercises.common import fail, require, titled, verdict


@titled("Exercise 07.1 (linear scaling rule)")
def check_linear_scaling(exercise, global_batch, scaled_lr) -> None:
    if global_batch == 128:
        fail(exercise, "128 is the batch of one GPU; the global batch counts the images of all 4 GPUs in one step")
    require(global_batch == 512, exercise, "count the images that all the GPUs process together in one optimiser step")
    if isinstance(scaled_lr, (int, float)) and abs(scaled_lr - 0.1 * 4) < 1e-12:
        fail(exercise, "that scales by the number of GPUs; the rule scales by how much the global batch grew")
    verdict(isinstance(scaled_lr, (int, float)) and abs(scaled_lr - 0.2) < 1e-12, exercise, "the learning rate should grow by the same factor as the global batch did, starting from the tuned run")


@titled("Exercise 07.2 (an accumulated step)")
def check_accumulated_step(exercise, accumulated_step) -> None:
    from torch import nn

    def make():
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(20, 16), nn.ReLU(), nn.Linear(16, 5)).double()
        return model, torch.optim.SGD(model.parameters(), lr=0.5)

    generator = torch.Generator().manual_seed(0)
    x = torch.randn(24, 20, generator=generator, dtype=torch.float64)
    y = torch.randint(0, 5, (24,), generator=generator)
    reference, reference_optimizer = make()
    reference_optimizer.zero_grad()
    torch.nn.functional.cross_entropy(reference(x), y).backward()
    reference_optimizer.step()
    expected = torch.cat([p.detach().flatten() for p in reference.parameters()])
    for k in (1, 3, 4):
        model, optimizer = make()
        with torch.no_grad():
            for p in model.parameters():
                p.grad = torch.ones_like(p)  # stale gradients: the step must start by clearing them
        accumulated_step(model, optimizer, x, y, k)
        got = torch.cat([p.detach().flatten() for p in model.parameters()])
        if torch.allclose(got, expected, atol=1e-12):
            continue
        start = torch.cat([p.detach().flatten() for p in make()[0].parameters()])
        if k > 1 and torch.allclose(got - start, k * (expected - start), atol=1e-10):
            fail(exercise, f"with k={k} the step is {k} times too large: the gradients of the micro-batches add up in .grad, but the whole batch's loss is a mean")
        if torch.allclose(got - start, expected - start - 0.5, atol=1e-10):
            fail(exercise, "the gradients left from before were added in: call optimizer.zero_grad() first")
        fail(exercise, f"with k={k} the result differs from one step on the whole batch: check what .grad holds before the first backward, and how many times the optimiser steps")
    verdict(True, exercise, "")
