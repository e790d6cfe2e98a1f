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


def plot_confusion_matrix(confusion, class_names, title):
    """The confusion matrix (rows: true class, columns: predicted) with counts and a log colour scale."""
    from matplotlib.colors import LogNorm

    fig, ax = plt.subplots(figsize=(7, 6))
    image = ax.imshow(confusion.numpy() + 1, cmap="viridis", norm=LogNorm())  # +1: log of zero counts
    for t in range(len(class_names)):
        for p in range(len(class_names)):
            count = int(confusion[t, p])
            if count:
                ax.text(p, t, count, ha="center", va="center", fontsize=8, color="white" if t != p else "black")
    ax.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set(xlabel="predicted class", ylabel="true class", title=title)
    fig.colorbar(image, ax=ax, label="images + 1 (log scale)")
    fig.tight_layout()
    return fig
