"""Optimisers written from scratch in lesson 04, each equal to its `torch.optim` counterpart.

Every class has the two methods a training loop uses, `zero_grad()` and `step()`, and a
learning rate in `self.lr`. The update of one parameter `p` with gradient `g` is in `update`,
written with the same operations, in the same order, as PyTorch, so that the results agree to
the last bits of float32 and not only in exact arithmetic (lesson 04 shows the textbook forms).
"""

from __future__ import annotations

import math

import torch


class ScratchOptimizer:
    def __init__(self, params, lr: float):
        self.params = list(params)
        if not self.params:
            raise ValueError("the optimiser got no parameters")
        self.lr = lr
        self.state = [{} for _ in self.params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        for p, state in zip(self.params, self.state):
            if p.grad is not None:
                state["step"] = state.get("step", 0) + 1
                self.update(p, p.grad, state)

    def update(self, p: torch.Tensor, g: torch.Tensor, state: dict) -> None:
        raise NotImplementedError


class SGD(ScratchOptimizer):
    """Gradient descent; with `momentum`, PyTorch's form: b <- mu b + (1 - dampening) g, p <- p - lr b.

    `nesterov=True` steps along g + mu b instead of b (the look-ahead form PyTorch uses).
    `weight_decay` adds the L2 term wd * p to the gradient.
    """

    def __init__(self, params, lr: float, momentum: float = 0.0, dampening: float = 0.0, nesterov: bool = False, weight_decay: float = 0.0):
        super().__init__(params, lr)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum needs momentum > 0 and dampening = 0")
        self.momentum, self.dampening, self.nesterov, self.weight_decay = momentum, dampening, nesterov, weight_decay

    def update(self, p, g, state):
        if self.weight_decay:
            g = g.add(p, alpha=self.weight_decay)
        if self.momentum:
            if "buffer" not in state:
                state["buffer"] = g.clone()  # the first step starts the buffer at g, as PyTorch does
            else:
                state["buffer"].mul_(self.momentum).add_(g, alpha=1 - self.dampening)
            g = g.add(state["buffer"], alpha=self.momentum) if self.nesterov else state["buffer"]
        p.add_(g, alpha=-self.lr)


class ClassicalMomentum(ScratchOptimizer):
    """The 'velocity' form of momentum (Polyak; Sutskever et al. 2013): v <- mu v - lr g, p <- p + v.

    With a constant learning rate it equals PyTorch's form, since v = -lr * b at every step; when
    the learning rate changes they differ (lesson 04 shows both).
    """

    def __init__(self, params, lr: float, momentum: float = 0.9):
        super().__init__(params, lr)
        self.momentum = momentum

    def update(self, p, g, state):
        velocity = state.setdefault("velocity", torch.zeros_like(p))
        velocity.mul_(self.momentum).add_(g, alpha=-self.lr)
        p.add_(velocity)


class RMSprop(ScratchOptimizer):
    """s <- alpha s + (1 - alpha) g^2, p <- p - lr g / (sqrt(s) + eps)."""

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8):
        super().__init__(params, lr)
        self.alpha, self.eps = alpha, eps

    def update(self, p, g, state):
        square_avg = state.setdefault("square_avg", torch.zeros_like(p))
        square_avg.mul_(self.alpha).addcmul_(g, g, value=1 - self.alpha)
        p.addcdiv_(g, square_avg.sqrt().add_(self.eps), value=-self.lr)


class Adam(ScratchOptimizer):
    """Adam (Kingma and Ba 2015, Algorithm 1), with `weight_decay` as an L2 term added to the gradient.

        m <- b1 m + (1 - b1) g            v <- b2 v + (1 - b2) g^2
        m_hat = m / (1 - b1^t)            v_hat = v / (1 - b2^t)
        p <- p - lr m_hat / (sqrt(v_hat) + eps)

    computed as PyTorch does: p <- p - (lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps),
    which is the same number in exact arithmetic.
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0):
        super().__init__(params, lr)
        self.betas, self.eps, self.weight_decay = betas, eps, weight_decay

    def update(self, p, g, state):
        if self.weight_decay:
            g = g.add(p, alpha=self.weight_decay)
        self.adam_update(p, g, state)

    def adam_update(self, p, g, state, lr: float | None = None):
        lr = self.lr if lr is None else lr
        beta1, beta2 = self.betas
        t = state["step"]
        m = state.setdefault("exp_avg", torch.zeros_like(p))
        v = state.setdefault("exp_avg_sq", torch.zeros_like(p))
        m.lerp_(g, 1 - beta1)  # m + (1 - b1)(g - m) = b1 m + (1 - b1) g
        v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
        denominator = (v.sqrt() / math.sqrt(1 - beta2**t)).add_(self.eps)
        p.addcdiv_(m, denominator, value=-lr / (1 - beta1**t))


class AdamW(Adam):
    """Adam with decoupled weight decay in PyTorch's form: p <- p (1 - lr wd), then Adam's step.

    `lr` includes any schedule, so the decay per step, lr * wd, changes with the learning rate.
    Loshchilov and Hutter's own form (2019, Algorithm 2) is `AdamWPaper`.
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 1e-2):
        super().__init__(params, lr, betas, eps, weight_decay)

    def update(self, p, g, state):
        p.mul_(1 - self.lr * self.weight_decay)
        self.adam_update(p, g, state)


class AdamWPaper(Adam):
    """AdamW as Loshchilov and Hutter (2019, Algorithm 2) write it:

        p <- p - eta_t (alpha m_hat / (sqrt(v_hat) + eps) + lambda p)

    with `lr` = alpha, `weight_decay` = lambda and `schedule` = eta_t, the schedule multiplier
    (set it before each step; 1 means no schedule). The decay per step is eta_t lambda, whatever
    alpha is. It equals torch.optim.AdamW with lr = alpha eta_t and weight_decay = lambda / alpha.
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 1e-2, schedule: float = 1.0):
        super().__init__(params, lr, betas, eps, weight_decay)
        self.schedule = schedule

    def update(self, p, g, state):
        p.mul_(1 - self.schedule * self.weight_decay)
        self.adam_update(p, g, state, lr=self.lr * self.schedule)
