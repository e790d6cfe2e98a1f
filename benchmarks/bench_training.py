"""Time to a fixed test accuracy on Fashion-MNIST: the course's recipe against pytorch/examples'.

Both recipes train in this one process, one after the other, on the same data, with the same
number of threads; the test accuracy is measured every quarter epoch with the clock stopped, and
the time at which it first reaches the target is recorded. The ratio of those two times is the
figure to report; the absolute seconds depend on the machine.

    python benchmarks/bench_training.py [--target 0.90] [--max-epochs 6]

The pytorch/examples MNIST recipe (examples/mnist/main.py): two 3x3 convolutions (32 and 64
channels), max-pool, dropout 0.25, linear 9216-128, dropout 0.5, linear 128-10; Adadelta with
lr 1.0, StepLR(step_size=1, gamma=0.7), batch 64, per-image ToTensor and Normalize transforms in a
DataLoader. The course's recipe is lesson 02's: `helpers.models.MnistCNN`, AdamW with a one-cycle
schedule over 5 epochs, batch 128, the whole dataset normalised once in memory. The third row is the
same recipe sized for a short budget: `MnistCNN(channels=(16, 32), hidden=64)`, batch 256, a
one-cycle schedule over 2 epochs with a peak learning rate of 0.02.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader
from torchvision import transforms

from benchmarks.report import write_section
from helpers import config, data, models, train


class ExamplesNet(nn.Module):
    """The network of pytorch/examples/mnist/main.py, unchanged."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = self.dropout1(F.max_pool2d(x, 2))
        x = self.dropout2(F.relu(self.fc1(torch.flatten(x, 1))))
        return F.log_softmax(self.fc2(x), dim=1)


def race(name, model, loader, optimizer, step_lr, loss_fn, test_x, test_y, target, max_epochs, per_epoch_scheduler):
    """Train until the test accuracy reaches `target`; returns (seconds, epochs, accuracy) at that point."""
    checks = [round(len(loader) * k / 4) for k in (1, 2, 3, 4)]
    elapsed = 0.0
    best = 0.0
    for epoch in range(max_epochs):
        model.train()
        started = time.perf_counter()
        for step, (x, y) in enumerate(loader, start=1):
            optimizer.zero_grad()
            loss_fn(model(x), y).backward()
            optimizer.step()
            if not per_epoch_scheduler:
                step_lr.step()
            if step in checks:
                elapsed += time.perf_counter() - started
                accuracy = train.evaluate(model, train.tensor_loader(test_x, test_y, 1000), loss_fn)["accuracy"]
                best = max(best, accuracy)
                print(f"  {name}: epoch {epoch + step / len(loader):.2f}, {elapsed:7.1f} s, test accuracy {accuracy:.2%}", flush=True)
                if accuracy >= target:
                    return elapsed, epoch + step / len(loader), accuracy
                started = time.perf_counter()
        if per_epoch_scheduler:
            step_lr.step()
    return float("nan"), float("nan"), best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", type=float, default=0.90)
    parser.add_argument("--max-epochs", type=int, default=6)
    args = parser.parse_args()

    train_set, test_set = data.load_fashion_mnist(train=True), data.load_fashion_mnist(train=False)
    mean, std = 0.1307, 0.3081  # pytorch/examples normalises with MNIST's statistics; both recipes use them
    test_x = ((test_set.data.unsqueeze(1).float() / 255) - mean) / std
    test_y = test_set.targets

    generator = config.seed_everything(0)
    examples_set = data.load_fashion_mnist(train=True, transform=transforms.Compose([transforms.ToTensor(), transforms.Normalize((mean,), (std,))]))
    examples_model = ExamplesNet()
    examples_optimizer = torch.optim.Adadelta(examples_model.parameters(), lr=1.0)
    examples = race(
        "pytorch/examples",
        examples_model,
        DataLoader(examples_set, batch_size=64, shuffle=True, generator=generator),
        examples_optimizer,
        torch.optim.lr_scheduler.StepLR(examples_optimizer, step_size=1, gamma=0.7),
        F.nll_loss,
        test_x,
        test_y,
        args.target,
        args.max_epochs,
        per_epoch_scheduler=True,
    )

    train_x = ((train_set.data.unsqueeze(1).float() / 255) - mean) / std

    def course_recipe(name, model_kwargs, batch_size, max_lr, epochs):
        """The course's recipe: in-memory batches, AdamW, a one-cycle schedule over `epochs`."""
        generator = config.seed_everything(0)
        loader = train.tensor_loader(train_x, train_set.targets, batch_size, shuffle=True, generator=generator)
        model = models.MnistCNN(**model_kwargs)
        optimizer = torch.optim.AdamW(model.parameters(), lr=max_lr, weight_decay=1e-4)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=max_lr, total_steps=epochs * len(loader))
        return race(name, model, loader, optimizer, scheduler, F.cross_entropy, test_x, test_y, args.target,
                    min(args.max_epochs, epochs), per_epoch_scheduler=False)

    course = course_recipe("course", {}, batch_size=128, max_lr=0.01, epochs=5)
    small = course_recipe("course, small budget", {"channels": (16, 32), "hidden": 64}, batch_size=256, max_lr=0.02, epochs=2)

    rows = [
        "| recipe | seconds to the target | epochs to the target | test accuracy then | speed-up |",
        "|---|---|---|---|---|",
        f"| pytorch/examples (Adadelta, per-image transforms, batch 64) | {examples[0]:.1f} | {examples[1]:.2f} | {examples[2]:.2%} | 1.0x |",
        f"| course, lesson 02 (MnistCNN 32/64 channels, AdamW one-cycle over 5 epochs, in-memory tensors, batch 128) "
        f"| {course[0]:.1f} | {course[1]:.2f} | {course[2]:.2%} | {examples[0] / course[0]:.1f}x |",
        f"| course, small budget (MnistCNN 16/32 channels, hidden 64, AdamW one-cycle over 2 epochs, batch 256) "
        f"| {small[0]:.1f} | {small[1]:.2f} | {small[2]:.2%} | {examples[0] / small[0]:.1f}x |",
    ]
    summary = (
        f"Target: {args.target:.0%} test accuracy on Fashion-MNIST ({len(train_set):,} training images, "
        f"{len(test_set):,} test images, {train_set.source}), {torch.get_num_threads()} threads, torch {torch.__version__}. "
        f"**The course's recipes reached it {examples[0] / course[0]:.1f} and {examples[0] / small[0]:.1f} times faster** "
        "than pytorch/examples' (a recipe that never reaches the target shows nan)."
    )
    print("\n".join(rows) + "\n\n" + summary)
    write_section("training", "\n".join(rows) + "\n\n" + summary)


if __name__ == "__main__":
    main()
