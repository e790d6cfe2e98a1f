"""Figures the lessons draw again and again, first built in lesson 01."""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch


def show_images(images, titles, suptitle, ncols=10, cmap="gray_r"):
    """Draw images (PIL, or tensors H x W or 1 x H x W) in a grid with one title each; returns the figure."""
    nrows = -(-len(images) // ncols)  # ceiling division
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.2 * ncols, 1.4 * nrows + 0.6), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, title in zip(axes.flat, images, titles):
        if isinstance(image, torch.Tensor):
            image = image.detach().cpu().squeeze(0).numpy()
        ax.imshow(image, cmap=cmap)
        ax.set_title(title, fontsize=9)
    fig.suptitle(suptitle)
    fig.tight_layout()
    return fig
