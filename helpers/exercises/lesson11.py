"""The checks of lesson 11's exercises."""

from __future__ import annotations

import math

import torch

from helpers.exercises.common import fail, require, titled, verdict


def _nucleus(probabilities: torch.Tensor, p: float) -> torch.Tensor:
    """The tokens top-p sampling keeps, found the slow way: add tokens in order of probability until the mass reaches p."""
    keep = torch.zeros_like(probabilities, dtype=torch.bool)
    mass = 0.0
    for index in probabilities.argsort(descending=True).tolist():
        keep[index] = True
        mass += probabilities[index].item()
        if mass >= p:
            break
    return keep


@titled("Exercise 11.1 (the top-p nucleus)")
def check_top_p_keep(exercise, top_p_keep) -> None:
    generator = torch.Generator().manual_seed(11)
    cases = [(torch.tensor([0.5, 0.3, 0.15, 0.05]), 0.7), (torch.tensor([0.05, 0.6, 0.25, 0.1]), 0.9),
             (torch.tensor([0.9, 0.05, 0.05]), 0.5),
             (torch.tensor([0.125, 0.5, 0.125, 0.25]), 0.75)]   # exact in binary: the mass reaches p exactly after two tokens
    cases += [(torch.randn(50, generator=generator).mul(2).softmax(dim=0), p) for p in (0.5, 0.9, 0.99)]
    for probabilities, p in cases:
        result = top_p_keep(probabilities.clone(), p)
        require(isinstance(result, torch.Tensor) and result.dtype == torch.bool and result.shape == probabilities.shape, exercise,
                 f"return a boolean tensor of shape {tuple(probabilities.shape)}: True for each token that is kept")
        expected = _nucleus(probabilities, p)
        if torch.equal(result, expected):
            continue
        require(result[probabilities.argmax()], exercise, "the most likely token must always be kept, whatever p is")
        ranked = probabilities.argsort(descending=True)
        in_order = result[ranked]
        if in_order.any() and not in_order[: int(in_order.sum())].all():
            fail(exercise, "keep the *most likely* tokens: sort the probabilities in descending order before adding them up")
        if int(result.sum()) == int(expected.sum()) - 1:
            fail(exercise, "one token too few: keep the token whose probability makes the mass reach p, not only those before it")
        if int(result.sum()) == int(expected.sum()) + 1:
            fail(exercise, "one token too many: stop as soon as the mass of the kept tokens reaches p")
        fail(exercise, f"for probabilities {[round(x, 3) for x in probabilities.tolist()[:6]]}... and p = {p}, "
                       f"keep {int(expected.sum())} tokens; yours keeps {int(result.sum())}")
    verdict(True, exercise, "")


def _trigram_loss(train_ids, held_ids, V, smoothing=1.0, normalise_dim=2, reduce="mean"):
    counts = torch.full((V, V, V), smoothing)
    counts.index_put_((train_ids[:-2], train_ids[1:-1], train_ids[2:]), torch.ones(len(train_ids) - 2), accumulate=True)
    table = counts / counts.sum(dim=normalise_dim, keepdim=True).clamp_min(1e-30)
    losses = -table[held_ids[:-2], held_ids[1:-1], held_ids[2:]].log()
    return (losses.mean() if reduce == "mean" else losses.sum()).item()


@titled("Exercise 11.2 (the trigram baseline)")
def check_trigram_held_out_loss(exercise, trigram_held_out_loss) -> None:
    generator = torch.Generator().manual_seed(12)
    V = 5
    train_ids = torch.randint(0, V - 1, (600,), generator=generator)   # token V - 1 never occurs in training
    held_ids = torch.cat([torch.randint(0, V, (80,), generator=generator), torch.tensor([V - 1, 0, 1])])
    result = trigram_held_out_loss(train_ids, held_ids, V)
    result = float(result.item() if isinstance(result, torch.Tensor) else result)
    expected = _trigram_loss(train_ids, held_ids, V)
    if math.isclose(result, expected, rel_tol=1e-5):
        verdict(True, exercise, "")
        return
    require(math.isfinite(result), exercise,
             "the loss is infinite: a triple that never occurred in training gets probability 0. Add one to every count first")
    bigram_counts = torch.ones(V, V)
    bigram_counts.index_put_((train_ids[:-1], train_ids[1:]), torch.ones(len(train_ids) - 1), accumulate=True)
    bigram = bigram_counts / bigram_counts.sum(dim=1, keepdim=True)
    for pairs in (held_ids, held_ids[1:]):
        if math.isclose(result, -bigram[pairs[:-1], pairs[1:]].log().mean().item(), rel_tol=1e-5):
            fail(exercise, "that is the bigram's loss: condition on the two previous characters, a table of V × V × V counts")
    for dim in (0, 1):
        if math.isclose(result, _trigram_loss(train_ids, held_ids, V, normalise_dim=dim), rel_tol=1e-5):
            fail(exercise, "normalise over the next character: for each pair (a, b), p(c | a, b) must sum to 1 over c")
    if math.isclose(result, _trigram_loss(train_ids, held_ids, V, reduce="sum"), rel_tol=1e-5):
        fail(exercise, "return the mean over the held-out predictions, not the sum")
    fail(exercise, f"expected {expected:.4f} nats, got {result:.4f}")


@titled("Exercise 11.3 (attention with a key-value cache)")
def check_attend_with_cache(exercise, attend_with_cache) -> None:
    generator = torch.Generator().manual_seed(13)
    n, d = 7, 8
    q, k, v = (torch.randn(n, d, generator=generator, dtype=torch.float64) for _ in range(3))
    causal = torch.ones(n, n, dtype=torch.bool).tril()
    expected = ((q @ k.T / math.sqrt(d)).masked_fill(~causal, float("-inf"))).softmax(dim=-1) @ v
    cache = {}
    for i in range(n):
        out = attend_with_cache(q[i:i + 1], k[i:i + 1], v[i:i + 1], cache)
        require(isinstance(out, torch.Tensor) and tuple(out.shape) == (1, d), exercise,
                 f"return the output for the one new position, shape (1, {d}); yours has {getattr(out, 'shape', type(out))}")
        require("k" in cache and "v" in cache, exercise, "keep the keys and values so far in cache['k'] and cache['v']")
        require(isinstance(cache["k"], torch.Tensor) and isinstance(cache["v"], torch.Tensor), exercise,
                 "keep the cached keys and values as tensors of shape (positions so far, d): torch.cat the new row on")
        require(cache["k"].shape[0] == i + 1, exercise,
                 f"after {i + 1} calls the cache should hold {i + 1} keys, one per position; it holds {cache['k'].shape[0]}")
        if torch.allclose(out, expected[i:i + 1], atol=1e-9):
            continue
        if torch.allclose(out, v[i:i + 1], atol=1e-9):
            fail(exercise, "the output is the new value alone: the new query must attend to every cached key, not only its own")
        unscaled = (q[i:i + 1] @ k[: i + 1].T).softmax(dim=-1) @ v[: i + 1]
        if torch.allclose(out, unscaled, atol=1e-9):
            fail(exercise, "the scores are not scaled: divide q · k by √d before the softmax")
        fail(exercise, f"at position {i} the output differs from attention over positions 0..{i}")
    verdict(True, exercise, "")
