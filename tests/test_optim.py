"""The from-scratch optimisers of lesson 04 against torch.optim, 200 steps on the same problem."""

import math

import pytest
import torch
from torch.nn import functional as F

from helpers import optim as scratch

STEPS = 200


def regression_problem(dtype):
    """A small tanh network fitted by least squares: non-convex, so errors would compound."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(64, 5, generator=generator, dtype=dtype)
    y = torch.randn(64, 3, generator=generator, dtype=dtype)
    weights = [torch.randn(5, 8, generator=generator, dtype=dtype), torch.randn(8, 3, generator=generator, dtype=dtype)]
    return x, y, weights


def set_lr(optimizer, lr):
    if isinstance(optimizer, torch.optim.Optimizer):
        for group in optimizer.param_groups:
            group["lr"] = lr
    else:
        optimizer.lr = lr


def train(make_optimizer, dtype, steps=STEPS, lr_at=None):
    x, y, weights = regression_problem(dtype)
    weights = [w.clone().requires_grad_() for w in weights]
    optimizer = make_optimizer(weights)
    losses = []
    for step in range(steps):
        if lr_at is not None:
            set_lr(optimizer, lr_at(step))
        optimizer.zero_grad()
        loss = F.mse_loss(torch.tanh(x @ weights[0]) @ weights[1], y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return torch.cat([w.detach().flatten() for w in weights]), losses


# (name, torch.optim factory, from-scratch factory, float32 tolerance, float64 tolerance)
# The from-scratch classes apply the same operations in the same order as PyTorch's single-tensor
# CPU code, so the results agree to 1e-7 in float32 (the bound for Adam and AdamW; in
# practice they are bit-identical) and to 1e-12 in float64.
CASES = [
    ("SGD", lambda p: torch.optim.SGD(p, lr=0.05), lambda p: scratch.SGD(p, lr=0.05)),
    ("SGD momentum", lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9), lambda p: scratch.SGD(p, lr=0.05, momentum=0.9)),
    (
        "SGD momentum dampening L2",
        lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, dampening=0.5, weight_decay=0.01),
        lambda p: scratch.SGD(p, lr=0.05, momentum=0.9, dampening=0.5, weight_decay=0.01),
    ),
    (
        "Nesterov",
        lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True),
        lambda p: scratch.SGD(p, lr=0.05, momentum=0.9, nesterov=True),
    ),
    ("RMSprop", lambda p: torch.optim.RMSprop(p, lr=0.01), lambda p: scratch.RMSprop(p, lr=0.01)),
    ("Adam", lambda p: torch.optim.Adam(p, lr=0.01), lambda p: scratch.Adam(p, lr=0.01)),
    (
        "Adam betas eps",
        lambda p: torch.optim.Adam(p, lr=0.02, betas=(0.8, 0.99), eps=1e-6),
        lambda p: scratch.Adam(p, lr=0.02, betas=(0.8, 0.99), eps=1e-6),
    ),
    ("Adam L2", lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=0.1), lambda p: scratch.Adam(p, lr=0.01, weight_decay=0.1)),
    ("AdamW", lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1), lambda p: scratch.AdamW(p, lr=0.01, weight_decay=0.1)),
]


@pytest.mark.parametrize("dtype, tolerance", [(torch.float32, 1e-7), (torch.float64, 1e-12)])
@pytest.mark.parametrize("name, reference, ours", CASES, ids=[case[0] for case in CASES])
def test_equal_to_torch_optim_for_200_steps(name, reference, ours, dtype, tolerance):
    expected, expected_losses = train(reference, dtype)
    got, got_losses = train(ours, dtype)
    assert expected_losses[-1] < 0.5 * expected_losses[0], f"{name}: the problem did not train, so the test proves little"
    difference = (expected - got).abs().max().item()
    assert difference <= tolerance, f"{name} ({dtype}): max |difference| {difference:.3g} > {tolerance:g}"


def test_classical_momentum_equals_pytorch_form_with_constant_lr():
    # v = -lr * b at every step, so the two forms take the same steps; float32 rounding differs
    # because one multiplies by lr before accumulating and the other after (measured 1.5e-5 here).
    pytorch_form, _ = train(lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9), torch.float64)
    velocity_form, _ = train(lambda p: scratch.ClassicalMomentum(p, lr=0.05, momentum=0.9), torch.float64)
    assert (pytorch_form - velocity_form).abs().max().item() < 1e-12


def test_classical_momentum_differs_when_the_learning_rate_changes():
    def schedule(step):
        return 0.05 if step < 50 else 0.005

    pytorch_form, _ = train(lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9), torch.float64, lr_at=schedule)
    velocity_form, _ = train(lambda p: scratch.ClassicalMomentum(p, lr=0.05, momentum=0.9), torch.float64, lr_at=schedule)
    assert (pytorch_form - velocity_form).abs().max().item() > 1e-4


def test_adamw_is_not_adam_with_l2():
    adam_l2, _ = train(lambda p: scratch.Adam(p, lr=0.01, weight_decay=0.1), torch.float64)
    adamw, _ = train(lambda p: scratch.AdamW(p, lr=0.01, weight_decay=0.1), torch.float64)
    assert (adam_l2 - adamw).abs().max().item() > 1e-3



def cosine(step):
    return 0.5 * (1 + math.cos(math.pi * step / STEPS))


def test_adamw_paper_form_equals_torch_adamw_with_rescaled_decay():
    # Loshchilov and Hutter: p <- p - eta_t (alpha m_hat / (sqrt(v_hat) + eps) + lambda p).
    # torch.optim.AdamW with lr = alpha eta_t and weight_decay = lambda / alpha is the same optimiser.
    alpha, lam = 0.01, 1e-3

    x, y, weights = regression_problem(torch.float64)
    results = {}
    for name, make in [
        ("paper", lambda w: scratch.AdamWPaper(w, lr=alpha, weight_decay=lam)),
        ("torch", lambda w: torch.optim.AdamW(w, lr=alpha, weight_decay=lam / alpha)),
        ("torch, wd not rescaled", lambda w: torch.optim.AdamW(w, lr=alpha, weight_decay=lam)),
    ]:
        w = [t.clone().requires_grad_() for t in weights]
        optimizer = make(w)
        for step in range(STEPS):
            if name == "paper":
                optimizer.schedule = cosine(step)  # lr stays alpha; the multiplier follows the schedule
            else:
                optimizer.param_groups[0]["lr"] = alpha * cosine(step)
            optimizer.zero_grad()
            F.mse_loss(torch.tanh(x @ w[0]) @ w[1], y).backward()
            optimizer.step()
        results[name] = torch.cat([t.detach().flatten() for t in w])
    assert (results["paper"] - results["torch"]).abs().max().item() < 1e-12
    assert (results["paper"] - results["torch, wd not rescaled"]).abs().max().item() > 1e-4


def test_adamw_paper_decay_does_not_depend_on_alpha():
    final = {}
    for alpha in (0.1, 0.001):
        p = torch.ones(1, dtype=torch.float64, requires_grad=True)
        optimizer = scratch.AdamWPaper([p], lr=alpha, weight_decay=0.01, schedule=0.5)
        for _ in range(100):
            p.grad = torch.zeros_like(p)  # only the decay moves p
            optimizer.step()
        final[alpha] = p.item()
    assert final[0.1] == final[0.001]
    assert abs(final[0.1] - (1 - 0.5 * 0.01) ** 100) < 1e-12


def test_first_adam_step_has_size_lr():
    # With bias correction, the first step is lr * g / (|g| + eps): almost exactly lr per coordinate.
    p = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64, requires_grad=True)
    optimizer = scratch.Adam([p], lr=0.1)
    p.grad = torch.tensor([0.5, -4.0, 1e-3], dtype=torch.float64)
    optimizer.step()
    expected = torch.tensor([0.9, -1.9, 2.9], dtype=torch.float64)
    assert torch.allclose(p.detach(), expected, atol=1e-5, rtol=0)


def test_parameters_without_gradient_are_left_alone():
    used = torch.ones(2, requires_grad=True)
    unused = torch.ones(2, requires_grad=True)
    optimizer = scratch.Adam([used, unused], lr=0.1)
    used.grad = torch.ones(2)
    optimizer.step()
    assert torch.equal(unused.detach(), torch.ones(2))
    assert optimizer.state[1] == {}


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="no parameters"):
        scratch.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="Nesterov"):
        scratch.SGD([torch.zeros(1, requires_grad=True)], lr=0.1, nesterov=True)
