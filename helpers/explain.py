"""Looking inside a trained network, as built in lesson 06: saliency, Grad-CAM, and a rank correlation of maps.

Each function puts the model in evaluation mode for the measurement (batch norm uses its running
statistics, dropout is off) and restores the mode it found. None of them leaves gradients in the
model's parameters.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn
from torch.nn import functional as F


@contextlib.contextmanager
def eval_mode(model: nn.Module):
    """Evaluation mode inside the `with` block; afterwards, the mode the model was in before."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def _targets(scores: torch.Tensor, target) -> torch.Tensor:
    """The class to explain for each image: `target` (an int or one per image), or the predicted class."""
    if target is None:
        return scores.argmax(dim=1)
    target = torch.as_tensor(target, device=scores.device).reshape(-1).expand(len(scores))
    bad = (target < 0) | (target >= scores.shape[1])
    if bad.any():
        raise ValueError(f"target class {int(target[bad][0])} is out of range: the model has {scores.shape[1]} classes (0 to {scores.shape[1] - 1})")
    return target


def saliency(model: nn.Module, x: torch.Tensor, target=None) -> torch.Tensor:
    """Simonyan et al.'s saliency map: |d score_target / d input|, the largest over channels; N x H x W."""
    with eval_mode(model):
        x = x.detach().clone().requires_grad_(True)
        scores = model(x)
        chosen = scores.gather(1, _targets(scores, target)[:, None]).sum()
        (gradient,) = torch.autograd.grad(chosen, x)
    return gradient.abs().amax(dim=1)


def grad_cam(model: nn.Module, layer: nn.Module, x: torch.Tensor, target=None) -> torch.Tensor:
    """Selvaraju et al.'s Grad-CAM at `layer`, upsampled to the input's size and scaled to [0, 1]; N x H x W.

    A forward hook keeps the layer's output A (K channels); a hook on that tensor catches the
    gradient of the target score during the backward pass. Each channel's weight is its gradient
    averaged over positions, and the map is ReLU(sum_k weight_k * A_k). An image whose map is zero
    everywhere stays zero.
    """
    kept = {}

    def keep_output(module, inputs, output):
        kept["activation"] = output
        output.register_hook(lambda gradient: kept.__setitem__("gradient", gradient))

    handle = layer.register_forward_hook(keep_output)
    try:
        with eval_mode(model):
            scores = model(x.detach())
    finally:
        handle.remove()
    if "activation" not in kept:
        raise ValueError(f"the layer {type(layer).__name__} did not run in the model's forward pass: pass one of model's own modules")
    chosen = scores.gather(1, _targets(scores, target)[:, None]).sum()
    chosen.backward(inputs=[kept["activation"]])  # only this tensor: nothing accumulates in the parameters' .grad
    activation, gradient = kept["activation"].detach(), kept["gradient"]
    weights = gradient.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * activation).sum(dim=1, keepdim=True))
    cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    return cam / cam.amax(dim=(1, 2), keepdim=True).clamp_min(1e-12)


def ranks(values: torch.Tensor) -> torch.Tensor:
    """Ranks 0 .. P-1 within each row of an N x P tensor; tied values share the average of their ranks."""
    ordered, order = values.sort(dim=1)
    first = torch.searchsorted(ordered, ordered, right=False)
    last = torch.searchsorted(ordered, ordered, right=True) - 1
    return torch.empty(values.shape, dtype=torch.float64).scatter_(1, order, (first + last).double() / 2)


def rank_correlation(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Spearman's rank correlation between maps a[i] and b[i], one value per image.

    The Pearson correlation of the two maps' ranks, ties averaged (a ReLU map holds many tied zeros).
    A constant map (a Grad-CAM map that is zero everywhere, say) ranks no pixel above another, so it
    agrees with no ranking: its correlation is counted as 0 rather than left undefined.
    """
    if a.shape != b.shape:
        raise ValueError(f"the two sets of maps differ in shape: {tuple(a.shape)} and {tuple(b.shape)}")
    ranks_a, ranks_b = ranks(a.detach().flatten(1).cpu()), ranks(b.detach().flatten(1).cpu())
    ranks_a -= ranks_a.mean(dim=1, keepdim=True)
    ranks_b -= ranks_b.mean(dim=1, keepdim=True)
    norms = ranks_a.norm(dim=1) * ranks_b.norm(dim=1)
    return torch.where(norms > 0, (ranks_a * ranks_b).sum(dim=1) / norms.clamp_min(1e-300), 0.0)
