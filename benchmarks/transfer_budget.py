"""How much does lesson 05's pretraining buy, at which budget? A measurement, not a speed benchmark.

Lesson 05 fine-tunes a ResNet-18 pretrained on five Fashion-MNIST classes (T-shirt, trouser, pullover,
dress, coat) on few labels of the other five. Its control is the same network with a *random* backbone,
fine-tuned exactly the same way (same learning-rate grid chosen on validation, the backbone at a tenth
of the head's rate, same epochs, same seeds). This script measures, for several pretraining budgets
and several pretraining runs, the paired difference fine-tuned-pretrained minus fine-tuned-random over
the target seeds, so that the lesson's fast mode can choose a budget where the advantage is real.

    python -m benchmarks.transfer_budget --pretrain 12000x1 24000x2 --pretrain-seeds 0 1 2 --labels 20

Uses the lesson's own recipe (copied from its cells; the lesson remains the place it is taught).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
from torch import nn
from torchvision.models import resnet18

from helpers import config, data, pretrained, train

SOURCE_CLASSES, TARGET_CLASSES = (0, 1, 2, 3, 4), (5, 6, 7, 8, 9)
LEARNING_RATES = [1e-3, 3e-3, 1e-2, 3e-2]
EPOCHS, BATCH = 10, 50


def one_channel_conv1(model):
    old = model.conv1
    new = nn.Conv2d(1, old.out_channels, old.kernel_size, old.stride, old.padding, bias=False)
    with torch.no_grad():
        new.weight.copy_(old.weight.sum(dim=1, keepdim=True))
    model.conv1 = new
    return model


def per_class(labels, classes, n, generator, exclude=()):
    chosen = []
    for c in classes:
        members = [i for i in (labels == c).nonzero().flatten().tolist() if i not in exclude]
        order = torch.randperm(len(members), generator=generator)[:n].tolist()
        chosen += [members[i] for i in order]
    return torch.tensor(chosen)


def splits(n_labels, n_test, mean, std):
    fashion_train, fashion_test = data.load_fashion_mnist(train=True), data.load_fashion_mnist(train=False)
    relabel = torch.full((10,), -1)
    relabel[list(TARGET_CLASSES)] = torch.arange(len(TARGET_CLASSES))
    g = torch.Generator().manual_seed(1)
    train_index = per_class(fashion_train.targets, TARGET_CLASSES, n_labels, g)
    val_index = per_class(fashion_train.targets, TARGET_CLASSES, 20, g, exclude=set(train_index.tolist()))
    test_index = per_class(fashion_test.targets, TARGET_CLASSES, n_test, g)

    def inputs(dataset, index):
        return pretrained.to_inputs(dataset.data[index], mean, std)[:, :1], relabel[dataset.targets[index]]

    return inputs(fashion_train, train_index), inputs(fashion_train, val_index), inputs(fashion_test, test_index)


def target_network(backbone, seed):
    torch.manual_seed(seed)
    model = copy.deepcopy(backbone) if backbone is not None else resnet18(weights=None)
    model = one_channel_conv1(model)
    model.fc = nn.Sequential(nn.Dropout(0.2), nn.Linear(model.fc.in_features, len(TARGET_CLASSES)))
    return model


def fine_tune(backbone, lr, seed, x, y):
    model = target_network(backbone, seed)
    body = [p for n, p in model.named_parameters() if not n.startswith("fc.")]
    groups = [{"params": body, "lr": lr / 10}, {"params": list(model.fc.parameters()), "lr": lr}]
    torch.manual_seed(seed)
    loader = train.tensor_loader(x, y, BATCH, shuffle=True, generator=torch.Generator().manual_seed(seed))
    optimizer = torch.optim.AdamW(groups, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=[g["lr"] for g in groups], total_steps=EPOCHS * len(loader))
    train.fit(model, loader, optimizer, epochs=EPOCHS, scheduler=scheduler, progress=False)
    return model


def accuracy(model, x, y):
    return train.evaluate(model, train.tensor_loader(x, y, 500))["accuracy"]


def arm(backbone, seeds, split):
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = split
    searched = {lr: fine_tune(backbone, lr, seeds[0], x_train, y_train) for lr in LEARNING_RATES}
    val = {lr: accuracy(m, x_val, y_val) for lr, m in searched.items()}
    best = max(LEARNING_RATES, key=val.get)
    models = [searched[best]] + [fine_tune(backbone, best, s, x_train, y_train) for s in seeds[1:]]
    return best, [accuracy(m, x_test, y_test) for m in models]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pretrain", nargs="+", default=["12000x1"], help="IMAGESxEPOCHS of source pretraining")
    parser.add_argument("--pretrain-seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--labels", nargs="+", type=int, default=[20], help="training labels per target class")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--test", type=int, default=200, help="test images per target class")
    parser.add_argument("--grid", nargs="+", type=float, default=LEARNING_RATES, help="peak learning rates searched")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (pretraining differs in rounding)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    LEARNING_RATES[:] = args.grid
    config.seed_everything(0)
    seeds = list(range(args.seeds))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; target seeds {seeds}; test {args.test}/class; grid {LEARNING_RATES}")
    print(f"{'pretraining':<12} {'pseed':>5} {'src acc':>7} {'labels':>6} {'pre s':>6} | {'(c) pretrained FT':<24} "
          f"{'(e) random FT':<24} paired (c)-(e): mean, sd, t, min")
    random_cache = {}
    for setting in args.pretrain:
        n_images, epochs = map(int, setting.split("x"))
        for pseed in args.pretrain_seeds:
            torch.manual_seed(pseed)
            source = resnet18(weights=None, num_classes=len(SOURCE_CLASSES))
            started = time.perf_counter()
            meta = pretrained._pretrain_on_fashion_mnist(source, n_images, epochs, False, SOURCE_CLASSES)
            seconds = time.perf_counter() - started
            for n_labels in args.labels:
                split = splits(n_labels, args.test, meta["mean"], meta["std"])
                lr_c, c = arm(source, seeds, split)
                key = (n_labels, round(meta["mean"], 6))
                if key not in random_cache:
                    random_cache[key] = arm(None, seeds, split)
                lr_e, e = random_cache[key]
                diffs = [a - b for a, b in zip(c, e)]
                mean, sd = statistics.mean(diffs), statistics.stdev(diffs)
                print(f"{setting:<12} {pseed:>5} {meta['fashion_test_accuracy']:>7.1%} {n_labels:>6} {seconds:>6.0f} | "
                      f"{statistics.mean(c):6.1%} ± {statistics.stdev(c):4.1%} lr {lr_c:<5g} {statistics.mean(e):6.1%} ± "
                      f"{statistics.stdev(e):4.1%} lr {lr_e:<5g} {mean:+6.1%} {sd:5.1%} {mean / (sd / len(diffs) ** 0.5):+6.1f} "
                      f"{min(diffs):+6.1%}", flush=True)


if __name__ == "__main__":
    main()
