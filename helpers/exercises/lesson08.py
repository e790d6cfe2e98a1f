"""The checks of lesson 08's exercises."""

from __future__ import annotations

import torch

from helpers.exercises.common import fail, require, titled, verdict


@titled("Exercise 08.1 (a causal mask)")
def check_causal_mask(exercise, causal_mask) -> None:
    for length in (4, 7, 1):
        mask = causal_mask(length)
        require(isinstance(mask, torch.Tensor) and mask.dtype == torch.bool, exercise,
                 "return a tensor of dtype torch.bool (True where a position may attend)")
        require(tuple(mask.shape) == (length, length), exercise, f"causal_mask({length}) should have shape ({length}, {length}), not {tuple(mask.shape)}")
        expected = torch.ones(length, length, dtype=torch.bool).tril()
        if torch.equal(mask, expected):
            continue
        if torch.equal(mask, ~expected):
            fail(exercise, "True must mean 'may attend', as F.scaled_dot_product_attention reads a boolean mask; yours marks the blocked positions")
        if torch.equal(mask, expected.T):
            fail(exercise, "your mask lets each position see the ones after it: a causal model may only look back")
        if torch.equal(mask, expected.tril(diagonal=-1)):
            fail(exercise, "each position must also see itself; with your mask the first position has nothing to attend to")
        fail(exercise, f"row i should allow positions 0..i and nothing after; for length {length} yours is\n{mask.int()}")
    verdict(True, exercise, "")


@titled("Exercise 08.2 (sinusoidal position encodings)")
def check_sinusoidal(exercise, sinusoidal) -> None:
    from helpers.transformer import sinusoidal_positions

    length, d = 30, 16
    result = sinusoidal(length, d)
    require(isinstance(result, torch.Tensor) and tuple(result.shape) == (length, d), exercise,
             f"sinusoidal({length}, {d}) should return a tensor of shape ({length}, {d}), one row per position")
    result = result.double()
    expected = sinusoidal_positions(length, d).double()

    def close(candidate):
        return (result - candidate).abs().max().item() < 1e-5

    if close(expected):
        other = sinusoidal(7, 64)
        verdict(isinstance(other, torch.Tensor) and tuple(other.shape) == (7, 64)
                 and (other.double() - sinusoidal_positions(7, 64).double()).abs().max().item() < 1e-5, exercise,
                 "right for d_model = 16 but not for d_model = 64: the formula's d is the d_model argument")
        return
    pairs = expected.view(length, d // 2, 2)
    if close(pairs.flip(-1).reshape(length, d)):
        fail(exercise, "sine and cosine are swapped: the even columns (0, 2, ...) hold the sines, the odd ones the cosines")
    if close(torch.cat([pairs[..., 0], pairs[..., 1]], dim=1)):
        fail(exercise, "the sine and cosine of one frequency sit side by side (columns 2i and 2i + 1), not in two halves")
    position = torch.arange(length, dtype=torch.float64)[:, None]
    own = position / 10000 ** (torch.arange(d, dtype=torch.float64) / d)
    if close(torch.where(torch.arange(d) % 2 == 0, own.sin(), own.cos())):
        fail(exercise, "columns 2i and 2i + 1 must share one frequency; yours gives every column a frequency of its own")
    half = position / 10000 ** (torch.arange(0, d // 2, dtype=torch.float64)[None, :] / d)
    if close(torch.stack([half.sin(), half.cos()], dim=-1).reshape(length, d)):
        fail(exercise, "your frequencies fall too slowly from column to column: compare your exponent with the formula in section 4")
    if (result[0] - expected[0]).abs().max().item() > 1e-5:
        fail(exercise, "row 0 (position 0) should be sin(0) = 0 in the even columns and cos(0) = 1 in the odd ones")
    fail(exercise, f"the values differ from the formula (largest difference {(result - expected).abs().max():.3g}); check the frequency of pair i")


@titled("Exercise 08.3 (attention with a padding mask)")
def check_masked_attention(exercise, masked_attention) -> None:
    generator = torch.Generator().manual_seed(8)
    q, k, v = (torch.randn(3, 6, 8, generator=generator, dtype=torch.float64) for _ in range(3))
    padding = torch.arange(6)[None, :] >= torch.tensor([6, 4, 2])[:, None]  # True at padding
    result = masked_attention(q, k, v, padding)
    require(isinstance(result, torch.Tensor) and result.shape == q.shape, exercise,
             f"return the output only, a tensor of shape {tuple(q.shape)} (batch, length, size of a value)")
    result = result.double()

    def sdpa(mask, scale=None):
        return torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)

    def close(candidate):
        return torch.allclose(result, candidate, rtol=0, atol=1e-9, equal_nan=True)

    keys = ~padding[:, None, :]
    flipped = (q @ k.transpose(-2, -1) / 8**0.5).masked_fill(~padding[:, None, :], float("-inf")).softmax(-1) @ v
    if close(flipped):
        fail(exercise, "the mask is flipped: padding_mask is True at padding, and those are the keys to hide")
    require(not torch.isnan(result).any(), exercise,
             "the output holds NaN: a row whose every score is -inf has no softmax. Hide keys (columns of the score matrix), not queries")
    if close(sdpa(keys)):
        verdict(True, exercise, "")
        return
    if close(sdpa(None)):
        fail(exercise, "the padded keys still receive weight: the padding mask is not applied")
    if close(sdpa(keys, scale=1.0)) or close(sdpa(keys, scale=1 / 8)):
        fail(exercise, "the scores are scaled wrongly: look again at what section 5 divides them by, and why")
    scores = (q @ k.transpose(-2, -1) / 8**0.5).masked_fill(~keys, 0.0)
    if close(scores.softmax(-1) @ v):
        fail(exercise, "a score set to 0 is not ignored: softmax still gives it weight. A hidden key needs a weight of exactly 0")
    fail(exercise, "the output differs from F.scaled_dot_product_attention with the padded keys hidden")
