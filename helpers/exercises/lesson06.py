"""The checks of lesson 06's exercises."""

from __future__ import annotations

import torch

from helpers.exercises.common import fail, require, titled, verdict


def _small_classifier(dropout: float = 0.0):
    """A tiny convolutional classifier of 8 x 8 images into 3 classes, in float64, always the same weights."""
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Dropout(dropout), nn.Linear(4 * 8 * 8, 3)).double()
    return model.train()  # left in training mode on purpose: the answer must switch to evaluation mode


@titled("Exercise 06.1 (occlusion sensitivity)")
def check_occlusion(exercise, occlusion) -> None:
    model = _small_classifier(dropout=0.5)
    x = torch.randn(1, 1, 8, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    for patch, fill, target in ((4, 0.0, 2), (2, -1.0, 0)):
        with torch.no_grad():
            model.eval()
            original = model(x).softmax(dim=1)[0, target]
            covered_probability = torch.empty(8 // patch, 8 // patch, dtype=torch.float64)
            for i in range(8 // patch):
                for j in range(8 // patch):
                    covered = x.clone()
                    covered[..., i * patch : (i + 1) * patch, j * patch : (j + 1) * patch] = fill
                    covered_probability[i, j] = model(covered).softmax(dim=1)[0, target]
            model.train()
        expected = original - covered_probability
        result = occlusion(model, x, target, patch, fill)
        require(isinstance(result, torch.Tensor), exercise, "return a tensor")
        result = result.detach().double().cpu()
        require(tuple(result.shape) == tuple(expected.shape), exercise,
                 f"with an 8 x 8 image and patch={patch} the map is {tuple(expected.shape)}, one value per position of the square; got {tuple(result.shape)}")
        if torch.allclose(result, -expected, atol=1e-6) and not torch.allclose(result, expected, atol=1e-6):
            fail(exercise, "the sign is reversed: the drop is the original probability minus the covered one")
        if torch.allclose(result, covered_probability, atol=1e-6):
            fail(exercise, "that is the probability with the square covered; return how much it dropped from the original")
        if torch.allclose(result, expected.T, atol=1e-6) and not torch.allclose(result, expected, atol=1e-6):
            fail(exercise, "rows and columns are swapped: entry [i, j] covers rows i*patch..(i+1)*patch and columns j*patch..(j+1)*patch")
        require(torch.allclose(result, expected, atol=1e-6), exercise,
                 f"the drops differ from the expected ones (largest difference {(result - expected).abs().max():.3g} with patch={patch}, fill={fill}); "
                 "use softmax probabilities of the target class, and put the model in evaluation mode (it has dropout)")
    verdict(True, exercise, "")


@titled("Exercise 06.2 (integrated gradients)")
def check_integrated_gradients(exercise, integrated_gradients) -> None:
    model = _small_classifier()
    x = torch.randn(1, 1, 8, 8, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    target, steps = 1, 50

    def mean_gradient(ks):
        points = torch.stack([k / steps * x[0] for k in ks]).requires_grad_(True)
        (gradient,) = torch.autograd.grad(model.eval()(points)[:, target].sum(), points)
        return gradient.mean(dim=0, keepdim=True)

    expected = x * mean_gradient(range(1, steps + 1))
    result = integrated_gradients(model, x, target, steps)
    require(isinstance(result, torch.Tensor) and tuple(result.shape) == tuple(x.shape), exercise,
             f"return a tensor of the image's shape {tuple(x.shape)}")
    result = result.detach().double()
    close = lambda a, b: torch.allclose(a, b, rtol=1e-4, atol=1e-7)
    if close(result, mean_gradient(range(1, steps + 1))):
        fail(exercise, "that is the average gradient; multiply it by (x - baseline)")
    if close(result, steps * expected):
        fail(exercise, f"the attributions are {steps} times too large: average the gradients over the steps, do not add them up")
    if close(result, x * mean_gradient(range(0, steps))):
        fail(exercise, "the sum runs over k = 1 .. steps (the right Riemann sum), not 0 .. steps - 1")
    require(close(result, expected), exercise,
             f"the attributions differ from the formula above (largest difference {(result - expected).abs().max():.3g}): compare "
             "the points on the path, what is averaged and what multiplies it; the score F is the target's logit, not its probability")
    with torch.no_grad():
        gap = (model(x)[0, target] - model(torch.zeros_like(x))[0, target]).item()
    total = result.sum().item()
    print(f"{exercise}: the attributions add up to {total:.4f}; F(x) - F(baseline) = {gap:.4f}")
    verdict(abs(total - gap) < 0.05 * abs(gap) + 1e-3, exercise, f"the attributions add up to {total:.4f}, but F(x) - F(x') = {gap:.4f}")
