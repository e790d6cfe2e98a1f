"""What a tiny character-level GPT learns on 2 CPU cores in a fixed time: the budget for lesson 11 (issue 31).

Trains decoder-only transformers of a few sizes on the WordNet glosses embedded in the course
(helpers.lm.load_corpus), each for the same number of seconds, and reports the held-out loss (nats per
character) against the two baselines a generative model must beat: the uniform guess, ln V, and a
character bigram model counted on the training text (add-one smoothing; its held-out loss computed
exactly from the counts).

    python -m benchmarks.gpt_budget --seconds 120 --configs 64x2 128x4

Not a speed benchmark and not run by `make bench`; a measurement to size the lesson.
"""

from __future__ import annotations

import argparse
import math
import time

import torch
from torch import nn
from torch.nn import functional as F

from helpers import lm
from helpers.transformer import attention, causal_mask


class Block(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.ln_1, self.ln_2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.fc, self.out = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(self, x):
        b, n, d = x.shape
        q, k, v = self.qkv(self.ln_1(x)).split(d, dim=2)
        q, k, v = (t.view(b, n, self.heads, d // self.heads).transpose(1, 2) for t in (q, k, v))
        y, _ = attention(q, k, v, causal_mask(n))
        x = x + self.proj(y.transpose(1, 2).reshape(b, n, d))
        return x + self.out(F.gelu(self.fc(self.ln_2(x)), approximate="tanh"))


class TinyGPT(nn.Module):
    def __init__(self, vocab, d, layers, heads, context):
        super().__init__()
        self.tokens, self.positions = nn.Embedding(vocab, d), nn.Parameter(torch.randn(context, d) * 0.02)
        nn.init.normal_(self.tokens.weight, std=0.02)
        self.blocks = nn.ModuleList(Block(d, heads) for _ in range(layers))
        self.ln_f = nn.LayerNorm(d)

    def forward(self, ids):
        x = self.tokens(ids) + self.positions[: ids.shape[1]]
        for block in self.blocks:
            x = block(x)
        return self.ln_f(x) @ self.tokens.weight.T  # the head tied to the embedding


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--configs", nargs="+", default=["64x2", "128x4"], help="WIDTHxLAYERS")
    parser.add_argument("--context", type=int, default=128)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    args = parser.parse_args()
    text = "\n".join(lm.load_corpus())
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    data = torch.tensor([stoi[c] for c in text])
    split = int(0.95 * len(data))
    train, held = data[:split], data[split:]
    V = len(chars)
    counts = torch.ones(V, V)  # add-one smoothing
    counts.index_put_((train[:-1], train[1:]), torch.ones(len(train) - 1), accumulate=True)
    logp = (counts / counts.sum(dim=1, keepdim=True)).log()
    bigram = -logp[held[:-1], held[1:]].mean().item()
    print(f"{len(text):,} characters, V = {V}; uniform ln V = {math.log(V):.3f}; bigram (add-one) held-out {bigram:.3f} nats/char; "
          f"{torch.get_num_threads()} threads")
    g = torch.Generator().manual_seed(0)
    eval_starts = torch.randint(0, len(held) - args.context - 1, (64,), generator=g)
    for setting in args.configs:
        d, layers = map(int, setting.split("x"))
        torch.manual_seed(0)
        model = TinyGPT(V, d, layers, max(1, d // 32), args.context)
        params = sum(p.numel() for p in model.parameters())
        optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.1)
        steps, started = 0, time.perf_counter()
        while time.perf_counter() - started < args.seconds:
            starts = torch.randint(0, len(train) - args.context - 1, (args.batch,), generator=g)
            x = torch.stack([train[s:s + args.context] for s in starts])
            y = torch.stack([train[s + 1:s + args.context + 1] for s in starts])
            loss = F.cross_entropy(model(x).reshape(-1, V), y.reshape(-1))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            steps += 1
        model.eval()
        with torch.no_grad():
            x = torch.stack([held[s:s + args.context] for s in eval_starts])
            y = torch.stack([held[s + 1:s + args.context + 1] for s in eval_starts])
            held_loss = F.cross_entropy(model(x).reshape(-1, V), y.reshape(-1)).item()
        print(f"d={d:4d} layers={layers} ({params:,} parameters): {steps} steps in {args.seconds:.0f} s "
              f"({steps / args.seconds:.1f}/s), held-out {held_loss:.3f} nats/char, {bigram - held_loss:+.3f} below the bigram", flush=True)


if __name__ == "__main__":
    main()
