"""The checks of lesson 04's exercises."""

from __future__ import annotations

import math

import torch

from helpers.exercises.common import fail, require, titled, verdict


@titled("Exercise 04.1 (Nesterov momentum)")
def check_nesterov_step(exercise, nesterov_step) -> None:
    scale = torch.tensor([1.0, 10.0, 0.3], dtype=torch.float64)

    def gradient(p):  # of the quadratic 0.5 * sum(scale * p^2)
        return scale * p

    start = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64)
    lr, momentum = 0.05, 0.9
    reference = start.clone().requires_grad_()
    optimizer = torch.optim.SGD([reference], lr=lr, momentum=momentum, nesterov=True)
    p, buffer = start.clone(), None
    for step in range(1, 101):
        g = gradient(p)
        result = nesterov_step(p, g, buffer, lr, momentum)
        if not (isinstance(result, tuple) and len(result) == 2):
            fail(exercise, "return a tuple (new p, new buffer)")
        p, buffer = result
        optimizer.zero_grad()
        reference.grad = gradient(reference.detach())
        optimizer.step()
        if not torch.allclose(p, reference.detach(), atol=1e-10, rtol=0):
            plain, plain_buffer = start.clone(), None
            for _ in range(step):
                g0 = gradient(plain)
                plain_buffer = g0.clone() if plain_buffer is None else momentum * plain_buffer + g0
                plain = plain - lr * plain_buffer
            if torch.allclose(p, plain, atol=1e-10, rtol=0):
                fail(exercise, "that is plain momentum (a step along the buffer); Nesterov steps from where the momentum is about to carry the parameters: see section 3's PyTorch form")
            if step == 1:
                fail(exercise, "the first step already differs: check how PyTorch starts the buffer (section 2) and what Nesterov's step adds to it (section 3)")
            fail(exercise, f"step {step} differs from torch.optim.SGD(nesterov=True): compare your buffer update, then your step, with section 3's PyTorch form")
    verdict(True, exercise, "")


@titled("Exercise 04.2 (warm-up then cosine)")
def check_warmup_cosine(exercise, warmup_cosine) -> None:
    for base_lr, warmup, total in ((0.1, 10, 100), (3e-4, 25, 60)):
        optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base_lr)
        scheduler = torch.optim.lr_scheduler.SequentialLR(
            optimizer,
            [
                torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.1, end_factor=1.0, total_iters=warmup),
                torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total - warmup),
            ],
            milestones=[warmup],
        )
        for t in range(total + 1):
            expected = optimizer.param_groups[0]["lr"]
            got = warmup_cosine(t, base_lr, warmup, total)
            if not isinstance(got, (float, int)) or isinstance(got, bool) or not math.isfinite(got):
                fail(exercise, f"return a finite number, not {got!r}")
            if abs(got - expected) > 1e-9 * base_lr:
                where = "during the warm-up: linear from 0.1 * base_lr at t = 0 to base_lr at t = warmup" if t < warmup else (
                    "after the warm-up: a cosine from base_lr at t = warmup down to 0 at t = total, so its clock starts when the warm-up ends")
                fail(exercise, f"at t={t} (base_lr={base_lr}, warmup={warmup}, total={total}) expected {expected:.6g}, got {got:.6g}; {where}")
            optimizer.step()
            scheduler.step()
    verdict(True, exercise, "")


@titled("Exercise 04.3 (Kaiming initialisation of a convolution)")
def check_kaiming_conv(exercise, fan_in, kaiming_std) -> None:
    expected_fan_in = 16 * 3 * 3
    if fan_in == 16:
        fail(exercise, "each output of a convolution sums over in_channels x kernel height x kernel width inputs, not in_channels alone")
    if fan_in == 32 * 3 * 3:
        fail(exercise, "that is the fan-out (out_channels x k x k); the forward pass sums over the inputs")
    require(fan_in == expected_fan_in, exercise, "fan-in counts the inputs that feed one output value: look at how many input channels, and how many pixels of each, one kernel covers")
    if isinstance(kaiming_std, (int, float)) and abs(kaiming_std - 2 / expected_fan_in) < 1e-9:
        fail(exercise, "that is the variance; the standard deviation is its square root")
    if isinstance(kaiming_std, (int, float)) and abs(kaiming_std - math.sqrt(1 / expected_fan_in)) < 1e-9:
        fail(exercise, "that is the variance for a layer without ReLU; ReLU zeroes half of its inputs, and Kaiming's variance makes up for that (section 9)")
    verdict(
        isinstance(kaiming_std, (int, float)) and abs(kaiming_std - math.sqrt(2 / expected_fan_in)) < 1e-9,
        exercise,
        "Kaiming's variance keeps E[z^2] the same through ReLU layers (section 9); give its standard deviation as a Python float",
    )
