"""The checks of lesson 03's exercises."""

from __future__ import annotations

import torch

from helpers.exercises.common import fail, require, titled, verdict


@titled("Exercise 03.1 (gradient of binary cross-entropy with logits)")
def check_bce_with_logits_grad(exercise, bce_with_logits_grad) -> None:
    generator = torch.Generator().manual_seed(0)
    z = torch.randn(50, generator=generator, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 2, (50,), generator=generator).double()
    torch.nn.functional.binary_cross_entropy_with_logits(z, y).backward()
    with torch.no_grad():
        got = bce_with_logits_grad(z.detach(), y)
    if not isinstance(got, torch.Tensor) or got.shape != z.shape:
        fail(exercise, f"return a tensor of z's shape {tuple(z.shape)}, not {getattr(got, 'shape', type(got).__name__)}")
    expected = z.grad
    if torch.allclose(got, expected * len(z), atol=1e-10):
        fail(exercise, "almost: the loss is a mean over the N examples, so divide by N")
    if torch.allclose(got, -expected, atol=1e-10):
        fail(exercise, "the sign is flipped: when y = 1, a larger z lowers the loss, so the gradient there must be negative")
    if torch.allclose(got, expected * (torch.sigmoid(z) * (1 - torch.sigmoid(z))).detach(), atol=1e-10):
        fail(exercise, "sigma'(z) cancels against the 1/sigma and 1/(1 - sigma) of the logs: the result is simpler")
    verdict(torch.allclose(got, expected, atol=1e-10), exercise, "differentiate -[y log s + (1 - y) log(1 - s)] with s = sigma(z), using sigma' = s(1 - s)")


@titled("Exercise 03.2 (backward pass of a tanh layer)")
def check_tanh_layer_backward(exercise, tanh_layer_backward) -> None:
    generator = torch.Generator().manual_seed(0)
    X = torch.randn(6, 4, generator=generator, dtype=torch.float64, requires_grad=True)
    W = torch.randn(3, 4, generator=generator, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, generator=generator, dtype=torch.float64, requires_grad=True)
    G = torch.randn(6, 3, generator=generator, dtype=torch.float64)
    torch.tanh(X @ W.T + b).backward(G)
    with torch.no_grad():
        got = tanh_layer_backward(X.detach(), W.detach(), b.detach(), G)
    if not (isinstance(got, tuple) and len(got) == 3):
        fail(exercise, "return a tuple of three tensors: (dL/dX, dL/dW, dL/db)")
    for name, ours, expected in zip(("dL/dX", "dL/dW", "dL/db"), got, (X.grad, W.grad, b.grad)):
        if not isinstance(ours, torch.Tensor) or ours.shape != expected.shape:
            fail(exercise, f"{name} must have shape {tuple(expected.shape)}, like the tensor it belongs to; got {getattr(ours, 'shape', type(ours).__name__)}")
        if not torch.allclose(ours, expected, atol=1e-10):
            delta_without_derivative = G
            plain = {"dL/dX": delta_without_derivative @ W.detach(), "dL/dW": delta_without_derivative.T @ X.detach(), "dL/db": G.sum(0)}[name]
            if torch.allclose(ours, plain, atol=1e-10):
                fail(exercise, f"{name}: G is the gradient at the tanh's output; take it back through tanh's derivative (section 4 writes it with the output) before the linear layer's rules")
            fail(exercise, f"{name} differs from autograd's; once G is back through tanh, the linear layer's rules are section 2's: check the order of each product and what the bias sums over")
    verdict(True, exercise, "")


@titled("Exercise 03.3 (backward pass of average pooling)")
def check_avg_pool_backward(exercise, avg_pool_backward) -> None:
    generator = torch.Generator().manual_seed(0)
    for k in (2, 3):
        x = torch.randn(2, 3, 6, 6, generator=generator, dtype=torch.float64, requires_grad=True)
        G = torch.randn(2, 3, 6 // k, 6 // k, generator=generator, dtype=torch.float64)
        torch.nn.functional.avg_pool2d(x, k).backward(G)
        got = avg_pool_backward(G, k)
        if not isinstance(got, torch.Tensor) or got.shape != x.shape:
            fail(exercise, f"with k={k} the result must have the input's shape {tuple(x.shape)}, not {getattr(got, 'shape', type(got).__name__)}")
        if torch.allclose(got, x.grad * k**2, atol=1e-10):
            fail(exercise, f"each input is 1/k^2 of its window's mean: divide by k^2 = {k * k}")
        require(torch.allclose(got, x.grad, atol=1e-10), exercise, "ask how much one input pixel moves its window's mean: unlike max pooling, no pixel of the window is special (repeat_interleave can spread a value over a window)")
    verdict(True, exercise, "")
