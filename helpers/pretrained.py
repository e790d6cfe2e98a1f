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
    classes: tuple[int, ...] | None = None  # the course's own: the Fashion-MNIST classes its head outputs; ImageNet: None


def to_inputs(images: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    """uint8 N x 28 x 28 grey images -> float N x 3 x 32 x 32: padded, normalised, repeated to RGB.

    32 x 32 rather than the 224 x 224 of ImageNet's transforms: 49 times less work, which is what
    lets lesson 05 train a ResNet-18 on a laptop CPU.
    """
    x = (F.pad(images.float() / 255, (2, 2, 2, 2)) - mean) / std
    return x.unsqueeze(1).expand(-1, 3, -1, -1).contiguous()


def load_pretrained_resnet18(progress: bool = True, classes: tuple[int, ...] = tuple(range(10))) -> Pretrained:
    """ImageNet weights through the weights API when possible; otherwise `course_pretrained_resnet18(progress, classes)`."""
    why = _why_no_imagenet()
    if why is None:
        try:
            model = _imagenet_resnet18(progress)
        except OSError as error:  # URLError, timeouts and socket errors are OSErrors
            why = f"the download failed: {error}"
        else:
            # The course's images are grey and to_inputs repeats one channel three times, so it takes
            # ONE mean and std: the averages of ImageNet's per-channel (R, G, B) statistics. Not what
            # the weights' transforms() do (each colour channel its own), and said so when loading.
            rgb_mean, rgb_std = IMAGENET.transforms().mean, IMAGENET.transforms().std
            mean, std = sum(rgb_mean) / 3, sum(rgb_std) / 3
            print(f"Pretrained weights: ImageNet ({IMAGENET}), through torchvision's weights API; grey inputs are "
                  f"normalised with the average of its RGB mean {list(rgb_mean)} and std {list(rgb_std)}: "
                  f"one mean {mean:.3f} and std {std:.3f} for all three channels")
            return Pretrained(model, f"ImageNet ({IMAGENET})", True, mean, std)
    print(f"No ImageNet weights ({why}); using the course's own pretrained ResNet-18 instead.")
    return course_pretrained_resnet18(progress, classes)


def _imagenet_resnet18(progress: bool) -> nn.Module:
    """resnet18(weights=IMAGENET), with data.NETWORK_TIMEOUT_S on each network wait: torch.hub's download sets none."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(data.NETWORK_TIMEOUT_S)
    try:
        return resnet18(weights=IMAGENET, progress=progress)
    finally:
        socket.setdefaulttimeout(previous)


def _imagenet_cache_file() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(IMAGENET.url).path).name


def _why_no_imagenet() -> str | None:
    """None when the ImageNet weights can be loaded (cached, or the server answers); else the reason."""
    if _imagenet_cache_file().is_file():
        return None
    if config.offline():
        return "COURSE_OFFLINE=1 and not in the torch cache"
    return data.why_unreachable(IMAGENET.url, timeout=NETWORK_TIMEOUT_S)  # through urllib: honours HTTPS_PROXY


FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


def course_pretrained_resnet18(progress: bool = True, classes: tuple[int, ...] = tuple(range(10))) -> Pretrained:
    """torchvision's ResNet-18 pretrained on Fashion-MNIST: loaded from the checkpoint root, or trained and saved there.

    classes: the Fashion-MNIST classes to pretrain on (all ten by default; the head has one output per
    class, in this order). Fast mode pretrains on at most 12,000 of their images for one epoch (about
    30 s on 2 CPU cores), full mode on all of them (60,000 for ten classes) for two (about 5 minutes).
    The checkpoint is named after the classes and the number of images actually used, so a run on
    the 4,000-image embedded sample never passes for one on the full data, and the full data, once
    it appears, gets its own pretraining.
    """
    classes = tuple(int(c) for c in classes)
    if not classes or len(set(classes)) != len(classes) or not set(classes) <= set(range(10)):
        raise ValueError(f"classes={classes!r}: give distinct Fashion-MNIST class numbers between 0 and 9")
    wanted, epochs = config.pick(fast=(12_000, 1), full=(60_000, 2))
    train_set = data.load_fashion_mnist(train=True)
    n_images = min(wanted, int(torch.isin(train_set.targets, torch.tensor(classes)).sum()))
    subset = "" if classes == tuple(range(10)) else "-classes" + "".join(map(str, classes))
    path = config.checkpoint_root() / f"resnet18-fashion-mnist{subset}-{n_images}x{epochs}.pt"
    model = resnet18(weights=None, num_classes=len(classes))
    meta = _load_cached(path, model)
    if meta is None:
        # A read-only or full checkpoint root fails now, not after minutes of pretraining.
        train.check_writable(path, train.checkpoint_bytes(model))
        # Two processes at once (two notebooks, or the tests on several workers) must not both pretrain: the
        # first takes the lock and pretrains, the others wait for it and then load its checkpoint.
        with train.exclusive(path.with_name(path.name + ".lock"), f"pretraining the ResNet-18 {path.name}"):
            meta = _load_cached(path, model)  # pretrained by the process this one waited for
            if meta is None:
                meta = _UNSAVED.pop(path.name, None)
                if meta is not None:  # pretrained earlier in this session, but the save failed (a full disk)
                    model.load_state_dict(meta.pop("state"))
                    print(f"Saving the ResNet-18 pretrained earlier in this session (its save had failed) to {path}.")
                else:
                    meta = _pretrain_on_fashion_mnist(model, n_images, epochs, progress, classes, train_set)
                try:
                    train.save_checkpoint(path, model, **meta)
                except OSError as error:
                    _UNSAVED[path.name] = {**meta, "state": {k: v.clone() for k, v in model.state_dict().items()}}
                    kept = (" Nothing is lost: the pretrained ResNet-18 is kept in memory. Run this cell again once there is room, "
                            "or after os.environ['COURSE_CHECKPOINT_ROOT'] = '<a folder on another disk>', and it is saved "
                            "without pretraining again.")
                    if isinstance(error, train.DiskFullError):
                        raise train.disk_full(path.parent, train.checkpoint_bytes(model), f"the checkpoint {path.name}", kept) from error
                    raise OSError(f"{error}.{kept}") from error
                print(f"Saved the pretrained ResNet-18 to {path}; later runs load it from there.")
    which = "Fashion-MNIST" if not subset else f"Fashion-MNIST's {', '.join(FASHION_CLASSES[c] for c in classes)}"
    source = (
        f"the course's own ResNet-18, pretrained on {meta['images']:,} images of {which} for {meta['epochs']} "
        f"epoch(s), {meta['fashion_test_accuracy']:.1%} test accuracy on those classes (not ImageNet)"
    )
    return Pretrained(model, source, False, meta["mean"], meta["std"], classes)


_UNSAVED: dict[str, dict] = {}  # checkpoint file name -> what a pretraining whose save failed produced (kept for the next try)


def _load_cached(path: Path, model: nn.Module) -> dict | None:
    """The cached checkpoint's extras, loaded into `model`; None when there is none, or it was damaged (then set aside)."""
    if not path.is_file():  # save_checkpoint renames a whole file into place: one that exists is complete
        return None
    try:
        meta = train.load_checkpoint(path, model)
    except train.CheckpointError as error:
        why = str(error).removeprefix(f"{path}: ")
        if config.why_not_writable(path.parent) is not None:
            raise train.CheckpointError(f"{error}. It is in a read-only folder: ask whoever prepared it to delete it, "
                                        "or set COURSE_CHECKPOINT_ROOT to a folder of your own") from error
        train.set_aside(path, why)
        return None
    print(f"Pretrained weights: the course's ResNet-18 from {path}")
    return meta


def _pretrain_on_fashion_mnist(
    model: nn.Module, n_images: int, epochs: int, progress: bool, classes: tuple[int, ...] = tuple(range(10)), train_set=None
) -> dict:
    """Train `model` on `n_images` Fashion-MNIST images of `classes` (relabelled 0, 1, ... in that order)."""
    train_set = train_set if train_set is not None else data.load_fashion_mnist(train=True)
    test_set = data.load_fashion_mnist(train=False)
    relabel = torch.full((10,), -1, dtype=torch.long)
    relabel[list(classes)] = torch.arange(len(classes))
    generator = torch.Generator().manual_seed(0)
    members = torch.isin(train_set.targets, torch.tensor(classes)).nonzero().flatten()
    keep = members[torch.randperm(len(members), generator=generator)[: min(n_images, len(members))]]
    pixels = train_set.data[keep].double() / 255
    mean, std = pixels.mean().item(), pixels.std().item()
    x, y = to_inputs(train_set.data[keep], mean, std), relabel[train_set.targets[keep]]
    loader = train.tensor_loader(x, y, 128, shuffle=True, generator=generator)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=5e-4)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=2e-3, total_steps=epochs * len(loader))
    print(f"Pretraining ResNet-18 on {len(x):,} Fashion-MNIST images (classes {list(classes)}) for {epochs} epoch(s), once; it is then cached.")
    train.fit(model, loader, optimizer, epochs=epochs, scheduler=scheduler, progress=progress)
    test_keep = torch.isin(test_set.targets, torch.tensor(classes))
    test_loader = train.tensor_loader(to_inputs(test_set.data[test_keep], mean, std), relabel[test_set.targets[test_keep]], 500)
    accuracy = train.evaluate(model, test_loader)["accuracy"]
    print(f"Fashion-MNIST test accuracy of the pretrained network (its {len(classes)} classes): {accuracy:.2%}")
    return {"images": len(x), "epochs": epochs, "fashion_test_accuracy": accuracy, "mean": mean, "std": std}
