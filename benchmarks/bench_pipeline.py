"""Data pipeline throughput: per-image PIL transforms through a DataLoader versus in-memory tensors.

    python -m benchmarks.bench_pipeline

Every variant delivers the same normalised 1 x 28 x 28 float batches of 128 Fashion-MNIST
training images, shuffled, for one pass over the first 20,000 images; nothing is trained, so
this measures the data pipeline alone. Run side by side in one process.
"""

from __future__ import annotations

import time

import torch
from torch.utils.data import DataLoader, Subset, TensorDataset
from torchvision.transforms import v2

from benchmarks.report import write_section
from helpers import config, data, train

N, BATCH = 20_000, 128
MEAN, STD = 0.2860, 0.3530  # Fashion-MNIST's training statistics (lesson 01, exercise 1)


def images_per_second(loader) -> float:
    started = time.perf_counter()
    seen = sum(len(y) for _, y in loader)
    assert seen == N, seen
    return seen / (time.perf_counter() - started)


def main() -> None:
    transform = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize([MEAN], [STD])])
    per_image = Subset(data.load_fashion_mnist(train=True, transform=transform), range(N))
    raw = data.load_fashion_mnist(train=True)
    x = ((raw.data[:N].unsqueeze(1).float() / 255) - MEAN) / STD
    y = raw.targets[:N]
    generator = config.seed_everything(0)
    variants = [
        *[(f"torchvision dataset, per-image PIL transforms, num_workers={w}", DataLoader(per_image, BATCH, shuffle=True, num_workers=w, generator=generator)) for w in (0, 1, 2)],
        ("in memory, DataLoader(TensorDataset) one example at a time", DataLoader(TensorDataset(x, y), BATCH, shuffle=True, generator=generator)),
        ("in memory, helpers.train.tensor_loader (whole batches by indexing)", train.tensor_loader(x, y, BATCH, shuffle=True, generator=generator)),
    ]
    rows = ["| pipeline | images per second | relative to the first |", "|---|---|---|"]
    baseline = None
    for name, loader in variants:
        speed = images_per_second(loader)
        baseline = baseline or speed
        rows.append(f"| {name} | {speed:,.0f} | {speed / baseline:.1f}x |")
        print(rows[-1], flush=True)
    summary = f"One shuffled pass over {N:,} Fashion-MNIST images in batches of {BATCH}, {torch.get_num_threads()} threads, torch {torch.__version__}."
    write_section("pipeline", "\n".join(rows) + "\n\n" + summary)


if __name__ == "__main__":
    main()
