"""The checks of lesson 02's exercises."""

from __future__ import annotations

import torch

from helpers.exercises.common import fail, require, titled, verdict


@titled("Exercise 02.1 (convolution arithmetic)")
def check_conv_arithmetic(exercise, out_size, n_params) -> None:
    from torch import nn

    layer = nn.Conv2d(1, 16, kernel_size=5, stride=2, padding=2)
    expected_size = layer(torch.zeros(1, 1, 28, 28)).shape[-1]
    expected_params = sum(p.numel() for p in layer.parameters())
    if out_size == 28 // 2 - 1 or out_size == (28 - 5) // 2 + 1:
        fail(exercise, "the padding adds p pixels on both sides of the image, not on one")
    require(out_size == expected_size, exercise, "use section 2's output-size formula with this layer's n, k, p and s; the division by the stride rounds down (floor)")
    if n_params == expected_params - 16:
        fail(exercise, "the bias adds one parameter per output channel")
    verdict(n_params == expected_params, exercise, "count what one output channel owns (its kernels, one per input channel, and its bias), then multiply by the number of output channels")


@titled("Exercise 02.2 (top-k accuracy)")
def check_top_k_accuracy(exercise, top_k_accuracy) -> None:
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(500, 10, generator=generator)
    targets = torch.randint(0, 10, (500,), generator=generator)
    for k in (1, 3, 10):
        result = top_k_accuracy(logits, targets, k)
        if not isinstance(result, float):
            fail(exercise, f"return a Python float (use .item()), not {type(result).__name__}")
        ranks = (logits > logits.gather(1, targets.unsqueeze(1))).sum(dim=1)  # how many classes score higher
        expected = (ranks < k).double().mean().item()
        if k == 1:
            require(abs(result - expected) < 1e-6, exercise, "with k = 1 it must equal the plain accuracy (is the largest logit the target's?)")
        if k == 10:
            require(abs(result - 1.0) < 1e-6, exercise, "with k = all 10 classes every prediction is right: 1.0")
        require(abs(result - expected) < 1e-6, exercise, f"k={k}: got {result:.4f}, expected {expected:.4f}; find the k largest logits of each row (a tensor method does it) and ask whether the target is among them")
    verdict(True, exercise, "")


@titled("Exercise 02.3 (most confused pair)")
def check_most_confused(exercise, confusion, most_confused) -> None:
    both_ways = (confusion + confusion.T).clone()
    both_ways.fill_diagonal_(0)
    best = int(both_ways.max())
    pairs = {(a, b) for a in range(len(confusion)) for b in range(a + 1, len(confusion)) if both_ways[a, b] == best}
    if not (isinstance(most_confused, tuple) and len(most_confused) == 2 and all(isinstance(c, int) for c in most_confused)):
        fail(exercise, "give a tuple of two ints, such as (4, 9)")
    one_way = confusion.clone()
    one_way.fill_diagonal_(0)
    a, b = divmod(int(one_way.argmax()), len(confusion))
    if tuple(sorted((a, b))) == most_confused and most_confused not in pairs:
        fail(exercise, "that pair is the largest in one direction only: add confusion and its transpose")
    verdict(tuple(most_confused) in pairs, exercise, "ignore the diagonal (correct predictions) and sort the pair")
