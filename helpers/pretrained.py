"""A pretrained ResNet-18 for lesson 05: ImageNet's when it can be had, otherwise the course's own.

The standard path is torchvision's weights API, `resnet18(weights=ResNet18_Weights.DEFAULT)`: it
downloads the ImageNet weights once into the torch cache and loads them from there afterwards.
Without a network and without a cached copy, ImageNet weights cannot be had, so the course
pretrains the same architecture on a different source task it has offline (Fashion-MNIST),
caches that checkpoint under the checkpoint root, and says so: a self-pretrained network is never
labelled as ImageNet-pretrained. `make prefetch` runs this ahead of a class.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn
from torch.nn import functional as F
from torchvision.models import ResNet18_Weights, resnet18

from helpers import config, data, train

IMAGENET = ResNet18_Weights.DEFAULT
NETWORK_TIMEOUT_S = 5


@dataclass
class Pretrained:
    model: nn.Module  # torchvision's resnet18 with its pretrained weights and its original head
    source: str  # where the weights come from, in words
    imagenet: bool
    mean: float  # the normalisation of a grey image, the same for all three input channels
    std: float


def to_inputs(images: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    """uint8 N x 28 x 28 grey images -> float N x 3 x 32 x 32: padded, normalised, repeated to RGB.

    32 x 32 rather than the 224 x 224 of ImageNet's transforms: 49 times less work, which is what
    lets lesson 05 train a ResNet-18 on a laptop CPU.
    """
    x = (F.pad(images.float() / 255, (2, 2, 2, 2)) - mean) / std
    return x.unsqueeze(1).expand(-1, 3, -1, -1).contiguous()


def load_pretrained_resnet18(progress: bool = True) -> Pretrained:
    """ImageNet weights through the weights API when possible; otherwise `course_pretrained_resnet18()`."""
    why = _why_no_imagenet()
    if why is None:
        try:
            model = resnet18(weights=IMAGENET, progress=progress)
        except OSError as error:  # URLError and socket errors are OSErrors
            why = f"the download failed: {error}"
        else:
            # One mean and std for the grey image: the averages of ImageNet's three channels.
            mean, std = (sum(v) / 3 for v in (IMAGENET.transforms().mean, IMAGENET.transforms().std))
            print(f"Pretrained weights: ImageNet ({IMAGENET}), through torchvision's weights API")
            return Pretrained(model, f"ImageNet ({IMAGENET})", True, mean, std)
    print(f"No ImageNet weights ({why}); using the course's own pretrained ResNet-18 instead.")
    return course_pretrained_resnet18(progress)


def _imagenet_cache_file() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(IMAGENET.url).path).name


def _why_no_imagenet() -> str | None:
    """None when the ImageNet weights can be loaded (cached, or the server answers); else the reason."""
    if _imagenet_cache_file().is_file():
        return None
    if config.offline():
        return "COURSE_OFFLINE=1 and not in the torch cache"
    host = urlparse(IMAGENET.url).hostname
    try:
        socket.create_connection((host, 443), timeout=NETWORK_TIMEOUT_S).close()
    except OSError as error:
        return f"cannot reach {host}: {error.strerror or error}"
    return None


def course_pretrained_resnet18(progress: bool = True) -> Pretrained:
    """torchvision's ResNet-18 pretrained on Fashion-MNIST: loaded from the checkpoint root, or trained and saved there.

    Fast mode pretrains on 12,000 images for one epoch (about 30 s on 2 CPU cores), full mode on
    all 60,000 for two (about 5 minutes); each mode keeps its own checkpoint.
    """
    n_images, epochs = config.pick(fast=(12_000, 1), full=(60_000, 2))
    path = config.checkpoint_root() / f"resnet18-fashion-mnist-{n_images}x{epochs}.pt"
    model = resnet18(weights=None, num_classes=10)
    if path.is_file():
        meta = train.load_checkpoint(path, model)
        print(f"Pretrained weights: the course's ResNet-18 from {path}")
    else:
        meta = _pretrain_on_fashion_mnist(model, n_images, epochs, progress)
        train.save_checkpoint(path, model, **meta)
        print(f"Saved the pretrained ResNet-18 to {path}; later runs load it from there.")
    source = (
        f"the course's own ResNet-18, pretrained on {meta['images']:,} Fashion-MNIST images for {meta['epochs']} "
        f"epoch(s), {meta['fashion_test_accuracy']:.1%} Fashion-MNIST test accuracy (not ImageNet)"
    )
    return Pretrained(model, source, False, meta["mean"], meta["std"])


def _pretrain_on_fashion_mnist(model: nn.Module, n_images: int, epochs: int, progress: bool) -> dict:
    train_set, test_set = data.load_fashion_mnist(train=True), data.load_fashion_mnist(train=False)
    generator = torch.Generator().manual_seed(0)
    keep = torch.randperm(len(train_set), generator=generator)[: min(n_images, len(train_set))]
    pixels = train_set.data[keep].double() / 255
    mean, std = pixels.mean().item(), pixels.std().item()
    x, y = to_inputs(train_set.data[keep], mean, std), train_set.targets[keep]
    loader = train.tensor_loader(x, y, 128, shuffle=True, generator=generator)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=5e-4)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=2e-3, total_steps=epochs * len(loader))
    print(f"Pretraining ResNet-18 on {len(x):,} Fashion-MNIST images for {epochs} epoch(s), once; it is then cached.")
    train.fit(model, loader, optimizer, epochs=epochs, scheduler=scheduler, progress=progress)
    test_loader = train.tensor_loader(to_inputs(test_set.data, mean, std), test_set.targets, 500)
    accuracy = train.evaluate(model, test_loader)["accuracy"]
    print(f"Fashion-MNIST test accuracy of the pretrained network: {accuracy:.2%}")
    return {"images": len(x), "epochs": epochs, "fashion_test_accuracy": accuracy, "mean": mean, "std": std}
