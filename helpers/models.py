"""The course's models, each first built layer by layer in a lesson."""

from __future__ import annotations

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
