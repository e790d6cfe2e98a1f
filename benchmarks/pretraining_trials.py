"""What each change to lesson 09's pretraining buys, judged against the controls a frequency model fails (issue 30).

For each trial (a `helpers.lm.Budget`), pretrain the course's small BERT once (not cached) and measure, on
the validation sentences of lessons 08-10 (never pretrained on):

- held-out masked-LM loss at 15 % masking (whatever the trial trained with, so trials compare) against the
  loss of guessing by token frequency on the very same hidden tokens (add-one counts from the pretraining
  texts);
- top-5 hits on those hidden tokens against the frequency-only top 5;
- a frozen linear probe on the sentiment task (mean-pooled last hidden states, logistic regression with C
  chosen on the validation split, scored on the test split) against the same probe on randomly initialised
  encoders of the same shape and tokenizer (three seeds).

    python -m benchmarks.pretraining_trials baseline dropout0 dropout0-mask30 ...

Not run by `make bench`; each trial takes minutes. The table goes to stdout.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import statistics
import time
from collections import Counter

import torch
from sklearn.linear_model import LogisticRegression

from helpers import lm, minilm, text

FULL = lm.Budget(lines=117_659, steps=2000)
TRIALS = {
    "baseline": FULL,
    "dropout0": dataclasses.replace(FULL, dropout=0.0),
    "dropout0-mask30": dataclasses.replace(FULL, dropout=0.0, mask_probability=0.3),
    "dropout0-mask30-noheadwords": dataclasses.replace(FULL, dropout=0.0, mask_probability=0.3, headwords=False),
    "dropout0-mask30-noheadwords-v4000": dataclasses.replace(FULL, dropout=0.0, mask_probability=0.3, headwords=False, vocab_size=4000),
    "dropout0-mask30-lr2e-3": dataclasses.replace(FULL, dropout=0.0, mask_probability=0.3, lr=2e-3),
    "dropout0-mask30-6000steps": dataclasses.replace(FULL, dropout=0.0, mask_probability=0.3, steps=6000),
    "dropout0-mask30-noheadwords-v4000-lr2e-3": dataclasses.replace(FULL, dropout=0.0, mask_probability=0.3, headwords=False, vocab_size=4000, lr=2e-3),
    "dropout0-mask30-noheadwords-v4000-lr2e-3-6000steps": dataclasses.replace(FULL, dropout=0.0, mask_probability=0.3, headwords=False, vocab_size=4000,
                                                                              lr=2e-3, steps=6000),
    "fast-dropout0-mask30-noheadwords-v4000": lm.Budget(lines=40_000, steps=400, batch_size=32, lr=2e-3, vocab_size=4000, dropout=0.0,
                                                        mask_probability=0.3, headwords=False),
    "fast-dropout0-mask30-noheadwords-v4000-1000steps": lm.Budget(lines=40_000, steps=1000, batch_size=32, lr=2e-3, vocab_size=4000,
                                                                  dropout=0.0, mask_probability=0.3, headwords=False),
    "dropout0-mask30-noheadwords-v4000-lr2e-3-wholewords": dataclasses.replace(FULL, dropout=0.0, mask_probability=0.3, headwords=False,
                                                                              vocab_size=4000, lr=2e-3, whole_words=True),
    "dropout0-mask30-noheadwords-v4000-lr2e-3-wholewords-6000steps": dataclasses.replace(FULL, dropout=0.0, mask_probability=0.3, headwords=False,
                                                                                       vocab_size=4000, lr=2e-3, whole_words=True, steps=6000),
    "smoke": lm.Budget(lines=2000, steps=20, batch_size=16, vocab_size=1000),
    "fast": lm.Budget(lines=40_000, steps=400, batch_size=32, lr=2e-3, vocab_size=6000),
    "fast-dropout0-mask30": lm.Budget(lines=40_000, steps=400, batch_size=32, lr=2e-3, vocab_size=6000, dropout=0.0, mask_probability=0.3),
}


def splits():
    kept, _ = text.drop_duplicates(text.load_sentences())
    train_idx, val_idx, test_idx = text.stratified_split(kept, (0.7, 0.15, 0.15), seed=0)
    return {name: ([kept[i].text for i in idx], [kept[i].label for i in idx])
            for name, idx in (("train", train_idx), ("val", val_idx), ("test", test_idx))}


@torch.no_grad()
def masked_lm_scores(model, tokenizer, sentences, frequencies):
    """(model loss, frequency-only loss, model top-5 hits, frequency top-5 hits) on 15 % of the tokens, seed 0."""
    generator = torch.Generator().manual_seed(0)
    rows = lm.encode(tokenizer, sentences)
    ids, attention = lm.pad(rows)
    inputs, labels = lm.mask_tokens(ids, lm.special_mask(ids), lm.MASK_ID, len(tokenizer), generator, 0.15)
    hidden = model.bert(input_ids=inputs, attention_mask=attention).last_hidden_state
    chosen = labels != -100
    logits, targets = model.cls(hidden[chosen]), labels[chosen]
    loss = torch.nn.functional.cross_entropy(logits, targets).item()
    frequency_loss = -frequencies.log()[targets].mean().item()
    model_hits = (logits.topk(5, dim=1).indices == targets[:, None]).any(dim=1).float().mean().item()
    frequency_hits = torch.isin(targets, frequencies.topk(5).indices).float().mean().item()
    return loss, frequency_loss, model_hits, frequency_hits


def probe_accuracy(encoder, tokenizer, data):
    features = {name: minilm.embed(encoder, tokenizer, sentences).numpy() for name, (sentences, _) in data.items()}
    fitted = {C: LogisticRegression(C=C, max_iter=3000).fit(features["train"], data["train"][1]) for C in (0.01, 0.1, 1.0, 10.0)}
    best = max(fitted, key=lambda C: fitted[C].score(features["val"], data["val"][1]))
    return fitted[best].score(features["test"], data["test"][1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trials", nargs="+", choices=list(TRIALS))
    args = parser.parse_args()
    data = splits()
    print(f"{torch.get_num_threads()} threads; validation {len(data['val'][0])} and test {len(data['test'][0])} sentences")
    print(f"{'trial':36s} {'min':>5s} {'MLM loss':>8s} {'freq':>6s} {'below':>6s} {'top5':>6s} {'freq5':>6s} {'probe':>6s} "
          f"{'random probe (3 seeds)':>24s}", flush=True)
    for name in args.trials:
        budget = TRIALS[name]
        started = time.perf_counter()
        model, tokenizer, record = lm.pretrain(budget, progress=False)
        minutes = (time.perf_counter() - started) / 60
        counts = Counter(t for row in lm.encode(tokenizer, lm.pretraining_texts(budget)) for t in row[1:-1])
        frequencies = torch.ones(len(tokenizer))
        for token, n in counts.items():
            frequencies[token] += n
        frequencies /= frequencies.sum()
        model.eval()
        loss, frequency_loss, hits, frequency_hits = masked_lm_scores(model, tokenizer, data["val"][0], frequencies)
        probe = probe_accuracy(model.bert, tokenizer, data)
        randoms = []
        for seed in range(3):
            torch.manual_seed(seed)
            randoms.append(probe_accuracy(lm.new_bert(budget, len(tokenizer)).bert.eval(), tokenizer, data))
        print(f"{name:36s} {minutes:5.1f} {loss:8.3f} {frequency_loss:6.3f} {frequency_loss - loss:+6.3f} {hits:6.1%} {frequency_hits:6.1%} "
              f"{probe:6.1%} {statistics.mean(randoms):6.1%} ± {statistics.stdev(randoms):.1%} "
              f"(final train loss {sum(record['losses'][-50:]) / len(record['losses'][-50:]):.2f})", flush=True)


if __name__ == "__main__":
    main()
