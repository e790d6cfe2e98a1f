"""Does lesson 09's pretraining help fine-tuning when labels are few? The course BERT against the same network from scratch.

Fine-tunes the course's pretrained BERT (lesson 09's default budget, pretrained first if it is not cached)
and a randomly initialised BERT of the same shape and tokenizer on N labelled training sentences of the
sentiment task (half of each label, drawn per seed), with BERT's recipe (`helpers.lm.fine_tune`), each arm's
learning rate chosen on the validation split with seed 0, then scored on the test split for several seeds.
Reports each arm's mean ± sd and the paired difference with its 95 % Student's t interval.

    python -m benchmarks.few_label_fine_tuning --labels 64 --seeds 5

A measurement for issue 30, not a speed benchmark; not run by `make bench`.
"""

from __future__ import annotations

import argparse
import statistics

import torch
from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer
from transformers import logging as transformers_logging

from helpers import lm, stats, text


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=int, default=64)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--rates", nargs="+", type=float, default=[1e-4, 3e-4, 1e-3, 3e-3])
    parser.add_argument("--pooling", choices=["cls", "mean"], default="cls",
                        help="cls: BertForSequenceClassification (pooler on [CLS]); mean: a linear layer on the mean of the outputs")
    args = parser.parse_args()
    transformers_logging.set_verbosity_error()
    budget = lm.default_budget()
    path = lm.course_language_model(budget)
    tokenizer = AutoTokenizer.from_pretrained(path)
    kept, _ = text.drop_duplicates(text.load_sentences())
    parts = text.stratified_split(kept, (0.7, 0.15, 0.15), seed=0)
    data = {name: (lm.encode(tokenizer, [kept[i].text for i in idx]), [kept[i].label for i in idx])
            for name, idx in zip(("train", "val", "test"), parts)}

    def sample(seed):
        g = torch.Generator().manual_seed(seed)
        rows, labels = data["train"]
        chosen = []
        for label in (0, 1):
            members = [i for i, y in enumerate(labels) if y == label]
            chosen += [members[j] for j in torch.randperm(len(members), generator=g)[: args.labels // 2].tolist()]
        return [rows[i] for i in chosen], [labels[i] for i in chosen]

    def arm(pretrained, lr, seed):
        torch.manual_seed(seed)
        if args.pooling == "cls":
            model = (AutoModelForSequenceClassification.from_pretrained(path, num_labels=2) if pretrained
                     else lm.new_bert(budget, len(tokenizer), num_labels=2))
        else:
            encoder = AutoModel.from_pretrained(path, add_pooling_layer=False) if pretrained else lm.new_bert(budget, len(tokenizer)).bert
            model = lm.MeanPooled(encoder)
        run = lm.fine_tune(model, sample(seed), data["val"], lr=lr, epochs=args.epochs, seed=seed, batch_size=16, patience=5)
        return run["model"], max(run["curve"])

    print(f"{path.name}; {args.pooling} pooling; {args.labels} labels, {args.seeds} seeds, rates {args.rates}, up to {args.epochs} epochs")
    results = {}
    for name, pretrained in (("pretrained", True), ("scratch", False)):
        val = {lr: arm(pretrained, lr, 0)[1] for lr in args.rates}
        best = max(args.rates, key=val.get)
        tests = [lm.accuracy(arm(pretrained, best, seed)[0], *data["test"]) for seed in range(args.seeds)]
        results[name] = tests
        print(f"{name:10s} lr {best:g} (validation {', '.join(f'{lr:g}: {v:.1%}' for lr, v in val.items())}): "
              f"test {statistics.mean(tests):.1%} ± {statistics.stdev(tests):.1%}", flush=True)
    mean, low, high = stats.paired_t_interval(results["pretrained"], results["scratch"])
    print(f"pretrained - scratch: {mean:+.1%} (95 % interval {low:+.1%} to {high:+.1%})")


if __name__ == "__main__":
    main()
