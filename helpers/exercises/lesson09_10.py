"""The checks of lessons 09 and 10's exercises."""

from __future__ import annotations

import math
from collections import Counter

import torch

from helpers.exercises.common import fail, require, titled, verdict


@titled("Exercise 10.1 (warm-up then linear decay)")
def check_warmup_then_linear(exercise, warmup_then_linear) -> None:
    from transformers import get_linear_schedule_with_warmup

    for warmup, total in ((10, 100), (0, 20), (3, 7)):
        optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
        schedule = get_linear_schedule_with_warmup(optimizer, warmup, total)
        for step in range(total + 4):  # past the last step too: the factor stays at 0
            expected, got = schedule.lr_lambdas[0](step), warmup_then_linear(step, warmup, total)
            require(isinstance(got, (int, float)) and not isinstance(got, bool), exercise, f"return a number, not {type(got).__name__}")
            if abs(got - expected) < 1e-9:
                continue
            if step < warmup and abs(got - (step + 1) / warmup) < 1e-9:
                fail(exercise, f"at step {step} of a {warmup}-step warm-up the factor is {expected:.3g}: step 0 starts from 0, not 1/{warmup}")
            if step >= total and got < 0:
                fail(exercise, f"the factor went negative ({got:.3g}) after the last step: it stops at 0")
            phase = "warm-up" if step < warmup else "decay"
            fail(exercise, f"warmup_steps={warmup}, total_steps={total}: at step {step} ({phase}) the factor is {expected:.4g}, yours {got:.4g}")
    verdict(True, exercise, "")


@titled("Exercise 09.1 (the 80/10/10 rule)")
def check_apply_80_10_10(exercise, apply_80_10_10) -> None:
    generator = torch.Generator().manual_seed(9)
    ids = torch.randint(5, 100, (6, 20), generator=generator)
    chosen = torch.rand(6, 20, generator=generator) < 0.3
    draws = torch.rand(6, 20, generator=generator)
    draws[0, :4] = torch.tensor([0.8, 0.9, 0.7999, 0.8999])  # the edges of the three ranges
    chosen[0, :4] = True
    random_ids = torch.randint(5, 100, (6, 20), generator=generator)
    original = ids.clone()
    result = apply_80_10_10(ids, chosen, draws, random_ids, 4)
    require(torch.equal(ids, original), exercise, "ids was changed in place: work on a copy (ids.clone())")
    require(isinstance(result, torch.Tensor) and result.shape == ids.shape, exercise, f"return a tensor of shape {tuple(ids.shape)}")
    expected = ids.clone()
    expected[chosen & (draws < 0.8)] = 4
    swap = chosen & (draws >= 0.8) & (draws < 0.9)
    expected[swap] = random_ids[swap]
    if torch.equal(result, expected):
        verdict(True, exercise, "")
        return
    require(torch.equal(result[~chosen], ids[~chosen]), exercise, "a position that was not chosen changed: the rule applies to chosen positions only")
    wrong = (result != expected).nonzero()[0].tolist()
    fail(exercise, f"at position {wrong} (draw {draws[tuple(wrong)]:.4f}, chosen) expected {expected[tuple(wrong)].item()}, "
          f"got {result[tuple(wrong)].item()}: below 0.8 -> mask_id, 0.8 up to 0.9 -> the random id, else unchanged")


@titled("Exercise 09.2 (the frequency-only guess)")
def check_frequency_cross_entropy(exercise, frequency_cross_entropy) -> None:
    generator = torch.Generator().manual_seed(3)
    vocab_size = 40

    def rows(n):  # [CLS]=2 first and [SEP]=3 last, as lm.encode gives them; tokens 5..39, skewed towards small ids
        return [[2] + (torch.rand(int(torch.randint(3, 12, (1,), generator=generator)), generator=generator) ** 2 * 35 + 5).long().tolist() + [3]
                for _ in range(n)]

    train_rows, held_rows = rows(200), rows(50)
    held_rows[0][1] = 4  # a token that never occurs in train_rows: only smoothing gives it a probability
    counts = Counter(t for r in train_rows for t in r[1:-1])
    total = sum(counts.values())
    held = [t for r in held_rows for t in r[1:-1]]
    expected = -sum(math.log((counts[t] + 1) / (total + vocab_size)) for t in held) / len(held)
    got = frequency_cross_entropy(train_rows, held_rows, vocab_size)
    require(isinstance(got, (int, float)) and not isinstance(got, bool), exercise, f"return a number, not {type(got).__name__}")
    if abs(got - expected) < 1e-6:
        verdict(True, exercise, "")
        return
    require(math.isfinite(got), exercise, "a held-out token never seen in training got probability 0: add one to every count (and the "
             "vocabulary size to the total)")
    require(abs(got * math.log(2) - expected) > 1e-6, exercise, "that is in bits (log2): use the natural logarithm, as cross_entropy does")
    with_special = Counter(t for r in train_rows for t in r)
    special_total = sum(with_special.values())
    held_all = [t for r in held_rows for t in r]
    counted_special = -sum(math.log((with_special[t] + 1) / (special_total + vocab_size)) for t in held_all) / len(held_all)
    require(abs(got - counted_special) > 1e-6, exercise, "[CLS] and [SEP] were counted: leave out the first and last id of every row")
    fail(exercise, f"the cross-entropy should be {expected:.4f} nats per held-out token, yours {got:.4f}")


@titled("Exercise 10.2 (AdamW's state in bytes)")
def check_adamw_state_bytes(exercise, adamw_state_bytes) -> None:
    def measured(model):
        trained = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(trained, lr=1e-3)
        sum(p.sum() for p in trained).backward()
        optimizer.step()
        return sum(v.numel() * v.element_size() for s in optimizer.state.values() for v in s.values() if torch.is_tensor(v))

    torch.manual_seed(0)
    cases = {"a linear layer": torch.nn.Linear(10, 3), "a float64 network": torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 2)).double()}
    frozen = torch.nn.Sequential(torch.nn.Embedding(50, 8), torch.nn.Linear(8, 2))
    frozen[0].weight.requires_grad_(False)
    cases["a network with a frozen embedding"] = frozen
    for name, model in cases.items():
        expected, got = measured(model), adamw_state_bytes(model)
        if got == expected:
            continue
        everything = sum(2 * p.numel() * p.element_size() + 4 for p in model.parameters())
        if got == everything:
            fail(exercise, f"{name}: frozen parameters (requires_grad False) get no optimiser state")
        if got == expected - 4 * len([p for p in model.parameters() if p.requires_grad]):
            fail(exercise, f"{name}: nearly: AdamW also keeps a 'step' counter per parameter tensor, a float32 scalar")
        fail(exercise, f"{name}: optimizer.state holds {expected:,} bytes, you computed {got:,}")
    verdict(True, exercise, "")
