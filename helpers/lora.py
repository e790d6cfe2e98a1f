"""LoRA (low-rank adaptation) written out, as lesson 09 builds it; equal to `peft`'s LoRA.

A frozen linear layer W x + b gets a trainable low-rank path beside it:

    y = W x + b + (alpha / r) * B A x        A: (r, in), B: (out, r)

A starts like peft's default (Kaiming-uniform with a = sqrt(5), as nn.Linear starts) and B at
zero, so at the start the adapted model computes exactly what the base model computes. Only A and
B (r * (in + out) numbers per layer) are trained; `merge` folds (alpha / r) B A into W afterwards,
so the adapted model costs nothing extra at inference.

- `LoRALinear`: the wrapper; `merge()` returns a plain nn.Linear with W + (alpha / r) B A.
- `add_lora`: replace the linears named in `target_names` (the last part of their module name,
  as peft's `target_modules` matches them) and freeze everything except the adapters and `train`.
- `merge_lora`: replace every LoRALinear in a model by its merged nn.Linear.
- `trainable_parameters`: (trainable, total) parameter counts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn


class LoRALinear(nn.Module):
    """A frozen nn.Linear plus (alpha / r) * B A, with optional dropout on the LoRA path's input."""

    def __init__(self, base: nn.Linear, r: int, alpha: float, dropout: float = 0.0):
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise TypeError(f"LoRALinear wraps an nn.Linear, not {type(base).__name__}")
        if not (isinstance(r, int) and r > 0):
            raise ValueError(f"the rank r must be a positive integer, got {r!r}")
        if alpha <= 0:
            raise ValueError(f"alpha must be positive, got {alpha!r}")
        self.base, self.r, self.alpha = base, r, alpha
        self.scaling = alpha / r
        for parameter in base.parameters():
            parameter.requires_grad_(False)
        weight = base.weight
        self.A = nn.Parameter(torch.empty(r, base.in_features, device=weight.device, dtype=weight.dtype))
        self.B = nn.Parameter(torch.zeros(base.out_features, r, device=weight.device, dtype=weight.dtype))
        nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + self.scaling * (self.dropout(x) @ self.A.T @ self.B.T)

    @torch.no_grad()
    def merge(self) -> nn.Linear:
        """A new nn.Linear computing the same function in one matrix: W + (alpha / r) B A."""
        merged = nn.Linear(self.base.in_features, self.base.out_features, bias=self.base.bias is not None,
                           device=self.base.weight.device, dtype=self.base.weight.dtype)
        merged.weight.copy_(self.base.weight + self.scaling * self.B @ self.A)
        if self.base.bias is not None:
            merged.bias.copy_(self.base.bias)
        return merged

    def extra_repr(self) -> str:
        return f"r={self.r}, alpha={self.alpha}, scaling={self.scaling:g}"


def _replace(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, module)


def add_lora(model: nn.Module, target_names: Sequence[str] = ("query", "value"), r: int = 8, alpha: float = 16,
             dropout: float = 0.0, train: Sequence[str] = ()) -> list[str]:
    """Put a LoRALinear on every nn.Linear whose name ends in one of `target_names`, in place.

    Every other parameter is frozen, except those of the modules named in `train` (the task head,
    e.g. "classifier"). Returns the names of the adapted layers. A target or a `train` name that
    matches nothing is an error naming it (a typo would otherwise train nothing, silently).
    """
    if isinstance(target_names, str):
        target_names = (target_names,)
    if not (isinstance(r, int) and r > 0):
        raise ValueError(f"the rank r must be a positive integer, got {r!r}")
    found = {target: [] for target in target_names}
    for name, module in list(model.named_modules()):
        last = name.rpartition(".")[2]
        if last in found and isinstance(module, nn.Linear):
            found[last].append(name)
    missing = [target for target, names in found.items() if not names]
    if missing:
        raise ValueError(f"no nn.Linear in the model is named {missing} (target_names={list(target_names)})")
    heads = {}
    for head in train:
        try:
            heads[head] = model.get_submodule(head)
        except AttributeError:
            raise ValueError(f"train={list(train)}: the model has no module named {head!r}") from None
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    adapted = sorted(name for names in found.values() for name in names)
    for name in adapted:
        _replace(model, name, LoRALinear(model.get_submodule(name), r, alpha, dropout))
    for module in heads.values():
        for parameter in module.parameters():
            parameter.requires_grad_(True)
    return adapted


def merge_lora(model: nn.Module) -> nn.Module:
    """Replace every LoRALinear in `model` by its merged nn.Linear, in place; returns the model."""
    for name, module in list(model.named_modules()):
        if isinstance(module, LoRALinear):
            _replace(model, name, module.merge())
    return model


def trainable_parameters(model: nn.Module) -> tuple[int, int]:
    """(number of parameters that require a gradient, number of parameters)."""
    parameters = list(model.parameters())
    return sum(p.numel() for p in parameters if p.requires_grad), sum(p.numel() for p in parameters)
