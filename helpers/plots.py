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


def draw_residual_block(block, title):
    """A residual block as boxes and arrows, read from the block itself with torch.fx; returns (figure, labels).

    The main path runs down the middle, the shortcut (identity, or the projection's layers) on the
    right, and both meet at the addition. Every box is a node of the traced forward pass, labelled
    with the module's name and shape, so the picture changes when the block does.
    """
    import operator

    from torch import fx, nn
    from torch.nn import functional as F

    graph = fx.symbolic_trace(block).graph
    modules = dict(block.named_modules())
    adds = [n for n in graph.nodes if n.op == "call_function" and n.target in (operator.add, torch.add)]
    if len(adds) != 1:
        raise ValueError(f"expected one addition (the shortcut's) in the block's forward pass, found {len(adds)}")
    add = adds[0]

    def chain(node):  # the nodes from the input down to `node`, following first arguments
        nodes = []
        while node.op != "placeholder":
            nodes.append(node)
            node = node.args[0]
        return nodes[::-1]

    branches = sorted((chain(arg) for arg in add.args), key=len)
    shortcut, main = branches
    after = [n for n in graph.nodes if n.op not in ("placeholder", "output") and n not in main + shortcut + [add]]

    def label(node):
        if node.op == "call_module":
            m = modules[node.target]
            if isinstance(m, nn.Conv2d):
                k, s = m.kernel_size[0], m.stride[0]
                return f"{node.target}: Conv2d {m.in_channels}→{m.out_channels}, {k}×{k}, stride {s}"
            if isinstance(m, nn.BatchNorm2d):
                return f"{node.target}: BatchNorm2d({m.num_features})"
            return f"{node.target}: {type(m).__name__}"
        if node.target in (F.relu, torch.relu):
            return "ReLU"
        return str(node.target.__name__ if hasattr(node.target, "__name__") else node.target)

    rows = len(main) + len(after) + 3
    fig, ax = plt.subplots(figsize=(8, 0.75 * rows + 0.6))
    ax.set(xlim=(-2.2, 4.2), ylim=(-rows + 0.4, 0.6), title=title)
    ax.axis("off")
    box = {"boxstyle": "round,pad=0.35", "facecolor": "#dbe8f6", "edgecolor": "#335"}
    labels = []

    def put(x, y, text, style=box):
        ax.text(x, y, text, ha="center", va="center", fontsize=9, bbox=style)
        if style is box:
            labels.append(text)

    def arrow(start, end, **kw):
        ax.annotate("", xy=end, xytext=start, arrowprops={"arrowstyle": "->", "color": "#333", **kw})

    put(0, 0, "input x", {"boxstyle": "round,pad=0.35", "facecolor": "white", "edgecolor": "#333"})
    y = 0
    for node in main:
        arrow((0, y - 0.25), (0, y - 0.75))
        y -= 1
        put(0, y, label(node))
    add_y = y - 1
    arrow((0, y - 0.25), (0, add_y + 0.25))
    put(0, add_y, "+", {"boxstyle": "circle,pad=0.2", "facecolor": "#fde3c8", "edgecolor": "#333"})
    if shortcut:
        step = (add_y + 1) / (len(shortcut) + 1)
        arrow((0.6, 0), (2.6, step + 0.25), connectionstyle="arc3,rad=-0.2")
        for i, node in enumerate(shortcut, start=1):
            put(2.6, step * i, label(node))
            if i < len(shortcut):
                arrow((2.6, step * i - 0.25), (2.6, step * (i + 1) + 0.25))
        arrow((2.6, step * len(shortcut) - 0.25), (0.3, add_y), connectionstyle="arc3,rad=-0.2")
        ax.text(2.6, step * len(shortcut) - 0.6, "projection shortcut", ha="center", va="center", fontsize=9, style="italic")
    else:
        arrow((0.6, 0), (0.3, add_y), connectionstyle="arc3,rad=-0.6")
        ax.text(2.2, add_y / 2, "identity shortcut: x itself", ha="center", va="center", fontsize=9, style="italic")
    y = add_y
    for node in after:
        arrow((0, y - 0.25), (0, y - 0.75))
        y -= 1
        put(0, y, label(node))
    arrow((0, y - 0.25), (0, y - 0.75))
    put(0, y - 1, "output", {"boxstyle": "round,pad=0.35", "facecolor": "white", "edgecolor": "#333"})
    fig.tight_layout()
    return fig, labels
