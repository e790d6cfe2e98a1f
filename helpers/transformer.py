"""Attention and the transformer encoder, as lesson 08 writes them, each equal to PyTorch's own.

- `attention`: scaled dot-product attention, returning the output and the attention weights.
- `sinusoidal_positions`: the position encodings of "Attention is all you need".
- `MultiHeadAttention`: equal to `nn.MultiheadAttention(batch_first=True)` once `copy_from` has
  copied its weights; `key_padding_mask` is True at padding, as PyTorch has it.
- `EncoderBlock`: equal to `nn.TransformerEncoderLayer(batch_first=True, activation="relu")` in
  both its forms, post-norm (`norm_first=False`) and pre-norm (`norm_first=True`).
  With `norm_first=False, activation="gelu", eps=1e-12` it is the layer inside BERT, equal to
  `transformers`' BertLayer once `copy_from_bert` has copied its weights (lesson 09).
- `TransformerClassifier`: embeddings, positions, blocks, and a linear head on the first ([CLS]) token.

Masks: `attention`'s `mask` is True where a query MAY look at a key (as in
`F.scaled_dot_product_attention`); a padding mask is True at padding (as in `nn.MultiheadAttention`).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(q kᵀ / √d + masked) v for q (..., Lq, d), k (..., Lk, d), v (..., Lk, dv).

    `mask` (broadcastable to (..., Lq, Lk)) is True where attending is allowed; a masked score is
    set to -inf before the softmax, so it gets a weight of exactly 0. A query allowed no key at all
    gets weights 0 and output 0 (the softmax of nothing but -inf is 0/0), as
    `F.scaled_dot_product_attention` gives; `nn.MultiheadAttention` gives NaN there. Returns (output, weights).
    """
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = scores.softmax(dim=-1)
    if mask is not None:
        weights = weights.masked_fill(~mask.any(dim=-1, keepdim=True), 0.0)
    return weights @ v, weights


def causal_mask(length: int) -> torch.Tensor:
    """(length, length), True on and below the diagonal: position i may look at positions 0..i."""
    return torch.ones(length, length, dtype=torch.bool).tril()


def sinusoidal_positions(length: int, d_model: int) -> torch.Tensor:
    """(length, d_model): PE[p, 2i] = sin(p / 10000^(2i/d)), PE[p, 2i+1] = cos(p / 10000^(2i/d))."""
    if d_model % 2:
        raise ValueError(f"d_model must be even for sine and cosine pairs, got {d_model}")
    position = torch.arange(length, dtype=torch.float64).unsqueeze(1)
    frequency = 10000.0 ** (-torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)
    encoding = torch.zeros(length, d_model, dtype=torch.float64)
    encoding[:, 0::2] = torch.sin(position * frequency)
    encoding[:, 1::2] = torch.cos(position * frequency)
    return encoding.float()


class MultiHeadAttention(nn.Module):
    """Self-attention with `heads` heads of size d_model / heads, then an output projection."""

    def __init__(self, d_model: int, heads: int):
        super().__init__()
        if d_model % heads:
            raise ValueError(f"d_model={d_model} is not divisible by heads={heads}")
        self.heads = heads
        self.q, self.k, self.v, self.out = (nn.Linear(d_model, d_model) for _ in range(4))

    def forward(self, x: torch.Tensor, key_padding_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """x (batch, length, d_model); key_padding_mask (batch, length), True at padding.

        Returns the output (batch, length, d_model) and the weights (batch, heads, length, length).
        """
        batch, length, d_model = x.shape

        def split(t):  # (batch, length, d_model) -> (batch, heads, length, d_model / heads)
            return t.view(batch, length, self.heads, d_model // self.heads).transpose(1, 2)

        mask = None if key_padding_mask is None else ~key_padding_mask[:, None, None, :]
        out, weights = attention(split(self.q(x)), split(self.k(x)), split(self.v(x)), mask)
        return self.out(out.transpose(1, 2).reshape(batch, length, d_model)), weights

    @torch.no_grad()
    def copy_from(self, torch_mha: nn.MultiheadAttention) -> MultiHeadAttention:
        """Take the weights of an nn.MultiheadAttention, which stacks q, k, v in one in_proj matrix."""
        for mine, weight, bias in zip((self.q, self.k, self.v), torch_mha.in_proj_weight.chunk(3), torch_mha.in_proj_bias.chunk(3)):
            mine.weight.copy_(weight)
            mine.bias.copy_(bias)
        self.out.weight.copy_(torch_mha.out_proj.weight)
        self.out.bias.copy_(torch_mha.out_proj.bias)
        return self


# The feed-forward network's non-linearity: ReLU (the 2017 paper, PyTorch's default) or GELU
# (BERT, exact form with erf, as F.gelu computes it by default).
ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu}


class EncoderBlock(nn.Module):
    """Attention and a feed-forward network, each with a residual connection and a LayerNorm.

    post-norm (the 2017 paper): x = norm1(x + attn(x)); x = norm2(x + ff(x))
    pre-norm (most models since): x = x + attn(norm1(x)); x = x + ff(norm2(x))
    """

    def __init__(self, d_model: int, heads: int, d_ff: int, norm_first: bool = True, dropout: float = 0.0,
                 activation: str = "relu", eps: float = 1e-5):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, not {activation!r}")
        self.norm_first = norm_first
        self.activation = activation
        self.attention = MultiHeadAttention(d_model, heads)
        self.linear1, self.linear2 = nn.Linear(d_model, d_ff), nn.Linear(d_ff, d_model)
        self.norm1, self.norm2 = nn.LayerNorm(d_model, eps=eps), nn.LayerNorm(d_model, eps=eps)
        self.dropout = nn.Dropout(dropout)
        self.weights = None  # the attention weights of the last forward pass

    def _attend(self, x, key_padding_mask):
        out, self.weights = self.attention(x, key_padding_mask)
        return self.dropout(out)

    def _feed_forward(self, x):
        return self.dropout(self.linear2(self.dropout(ACTIVATIONS[self.activation](self.linear1(x)))))

    def forward(self, x: torch.Tensor, key_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        if self.norm_first:
            x = x + self._attend(self.norm1(x), key_padding_mask)
            return x + self._feed_forward(self.norm2(x))
        x = self.norm1(x + self._attend(x, key_padding_mask))
        return self.norm2(x + self._feed_forward(x))

    @torch.no_grad()
    def copy_from(self, layer: nn.TransformerEncoderLayer) -> EncoderBlock:
        """Take the weights of an nn.TransformerEncoderLayer of the same sizes."""
        self.attention.copy_from(layer.self_attn)
        for name in ("linear1", "linear2", "norm1", "norm2"):
            getattr(self, name).load_state_dict(getattr(layer, name).state_dict())
        return self

    @torch.no_grad()
    def copy_from_bert(self, layer: nn.Module) -> EncoderBlock:
        """Take the weights of a `transformers` BertLayer (post-norm, GELU, LayerNorm eps 1e-12).

        BERT names the same parts differently: attention.self.query/key/value are our q/k/v,
        attention.output.dense our output projection and attention.output.LayerNorm our norm1,
        intermediate.dense and output.dense our linear1 and linear2, output.LayerNorm our norm2.
        """
        pairs = {
            self.attention.q: layer.attention.self.query, self.attention.k: layer.attention.self.key,
            self.attention.v: layer.attention.self.value, self.attention.out: layer.attention.output.dense,
            self.norm1: layer.attention.output.LayerNorm, self.linear1: layer.intermediate.dense,
            self.linear2: layer.output.dense, self.norm2: layer.output.LayerNorm,
        }
        for mine, theirs in pairs.items():
            if mine.weight.shape != theirs.weight.shape:
                raise ValueError(f"shape mismatch copying {theirs}: ours is {tuple(mine.weight.shape)}")
            mine.load_state_dict(theirs.state_dict())
        return self


class TransformerClassifier(nn.Module):
    """Token embeddings plus positions, `layers` encoder blocks, a final LayerNorm, and a linear head.

    pooling "cls" reads the first token ([CLS]), which attends to the whole sentence; "mean" averages
    the outputs at the real tokens. positions "none" adds no positions (a control: attention then
    sees a set of tokens, lesson 08).
    """

    def __init__(self, vocab_size: int, num_classes: int = 2, d_model: int = 64, heads: int = 4, d_ff: int = 128,
                 layers: int = 2, max_length: int = 256, positions: str = "learned", dropout: float = 0.1, pad_id: int = 0,
                 pooling: str = "cls"):
        super().__init__()
        if pooling not in ("cls", "mean"):
            raise ValueError(f"pooling must be 'cls' or 'mean', not {pooling!r}")
        self.pooling = pooling
        self.embedding = nn.Embedding(vocab_size, d_model, padding_idx=pad_id)
        # Token vectors at the scale of the learned positions (std 0.02, as BERT and GPT-2 initialise both):
        # nn.Embedding's default std 1 would leave each position 1/50 of its token's vector (lesson 08 measures it).
        nn.init.normal_(self.embedding.weight, std=0.02)
        with torch.no_grad():
            self.embedding.weight[pad_id].zero_()
        if positions == "learned":
            self.positions = nn.Parameter(torch.randn(max_length, d_model) * 0.02)
        elif positions == "sinusoidal":
            self.register_buffer("positions", sinusoidal_positions(max_length, d_model))
        elif positions == "none":
            self.register_buffer("positions", torch.zeros(max_length, d_model))
        else:
            raise ValueError(f"positions must be 'learned', 'sinusoidal' or 'none', not {positions!r}")
        self.blocks = nn.ModuleList(EncoderBlock(d_model, heads, d_ff, norm_first=True, dropout=dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(d_model, num_classes)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """ids (batch, length); mask (batch, length), True at real tokens (as `helpers.text.collate` gives it)."""
        if ids.shape[1] > len(self.positions):
            raise ValueError(f"a sequence of {ids.shape[1]} tokens is longer than max_length={len(self.positions)}")
        x = self.dropout(self.embedding(ids) + self.positions[: ids.shape[1]])
        for block in self.blocks:
            x = block(x, key_padding_mask=~mask)
        if self.pooling == "mean":
            pooled = (x * mask.unsqueeze(-1)).sum(dim=1) / mask.sum(dim=1, keepdim=True)
        else:
            pooled = x[:, 0]
        return self.head(self.norm(pooled))
