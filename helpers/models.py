"""The course's models, each first built layer by layer in a lesson."""

from __future__ import annotations

import math

import torch
from torch import nn


class MnistCNN(nn.Module):
    """Lesson 02's CNN for 28x28 grey images: two convolution blocks, then a small classifier.

    Each block is a 3x3 convolution (padding 1 keeps the size), batch normalisation, ReLU and a 2x2
    max-pool that halves the size: 28 -> 14 -> 7. The classifier flattens the 64 x 7 x 7 features
    and maps them through a hidden layer to one score (logit) per class.
    """

    def __init__(self, num_classes: int = 10, channels: tuple[int, int] = (32, 64), hidden: int = 128, dropout: float = 0.25):
        super().__init__()
        c1, c2 = channels
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, kernel_size=3, padding=1, bias=False),  # the batch norm after it has the bias
            nn.BatchNorm2d(c1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(c2),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c2 * 7 * 7, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


def layer_stack(model: nn.Module, input_shape=(1, 1, 28, 28)) -> list[tuple[str, tuple, int, int, int]]:
    """Lesson 02's count, one row per layer in the order they run: (name, output shape, parameters, multiply-adds, other operations).

    A convolution's output value sums in_channels x kernel products, a linear layer's in_features; any other layer
    (batch norm, ReLU, pooling, flatten, dropout) is counted as about one operation per input value. Forward hooks
    record what one image of `input_shape` goes through, in evaluation mode (the model's mode is restored)."""
    rows = []

    def record(layer, inputs, output):
        params = sum(p.numel() for p in layer.parameters())
        if isinstance(layer, nn.Conv2d):
            macs, other = output.numel() * layer.in_channels // layer.groups * math.prod(layer.kernel_size), 0
        elif isinstance(layer, nn.Linear):
            macs, other = output.numel() * layer.in_features, 0
        else:
            macs, other = 0, inputs[0].numel()
        rows.append((type(layer).__name__, tuple(output.shape[1:]), params, macs, other))

    hooks = [m.register_forward_hook(record) for m in model.modules() if not list(m.children())]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(input_shape))
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return rows


class SpeedNet(nn.Module):
    """Lesson 07's speed-recipe CNN for 28x28 grey images: 3x3 convolution blocks, then one linear layer.

    `crop` pixels of empty border are cut from each side first (2: 28x28 -> 24x24, which drops 0.3 %
    of MNIST's ink). Each block is a 3x3 convolution (padding 1), a 2x2 max-pool, batch normalisation
    (if `batch_norm`) and ReLU. With `pool_before_norm=False` the pool comes last instead, as in
    `MnistCNN`: the same kind of function, but batch norm and ReLU then touch four times as many
    values. With `first_stride=2` the first convolution itself halves the image and its block has no
    pool. With three blocks, 24 -> 12 -> 6 -> 3; the linear layer maps the flattened
    `widths[-1]` x 3 x 3 features to one logit per class. Without batch norm the convolutions get
    a bias (with it, the batch norm's shift plays that part).
    """

    def __init__(self, widths: tuple[int, ...] = (8, 16, 48), first_stride: int = 2, batch_norm: bool = True, crop: int = 2,
                 pool_before_norm: bool = True, num_classes: int = 10):
        super().__init__()
        if not widths or first_stride < 1 or not 0 <= crop < 14:
            raise ValueError(f"SpeedNet needs at least one width, a first_stride of at least 1 and a crop in 0..13, "
                             f"got widths={widths!r}, first_stride={first_stride!r}, crop={crop!r}")
        self.crop = crop
        layers, channels, size = [], 1, 28 - 2 * crop
        for i, width in enumerate(widths):
            stride = first_stride if i == 0 else 1
            block = [nn.Conv2d(channels, width, kernel_size=3, stride=stride, padding=1, bias=not batch_norm)]
            size = (size - 1) // stride + 1  # a 3x3 convolution with padding 1 and stride s
            norm = ([nn.BatchNorm2d(width)] if batch_norm else []) + [nn.ReLU(inplace=True)]
            if stride == 1:  # a block whose convolution keeps the size halves it with a pool
                block += [nn.MaxPool2d(2)] + norm if pool_before_norm else norm + [nn.MaxPool2d(2)]
                size //= 2
            else:
                block += norm
            layers += block
            channels = width
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(channels * size * size, num_classes)

    def forward(self, x):
        if self.crop:
            x = x[..., self.crop : -self.crop, self.crop : -self.crop]
        return self.head(torch.flatten(self.features(x), 1))
