"""Interactive explorers. Each widget's drawing is a plain function that a test can call without a browser.

Lesson 04: `trajectory` (built in the lesson) runs a `torch.optim` optimiser on a 2-D test
function; `draw_trajectory` draws one run over the function's contours; `optimizer_playground`
wraps that drawing in sliders.

Lesson 06: `draw_prediction` draws one image, its Grad-CAM overlay and the predicted
probabilities; `prediction_explorer` wraps it in a slider over the test images.
"""

from __future__ import annotations

import math

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import torch

from helpers import explain


def quadratic(p):
    """An ill-conditioned quadratic, 0.5 (u^2 + 25 v^2) in axes u, v turned 30 degrees from x, y.

    Curvature 1 along u and 25 along v (condition number 25); turned, so that no optimiser gains
    from the coordinate axes happening to be the curvature's axes.
    """
    u = math.cos(math.pi / 6) * p[0] + math.sin(math.pi / 6) * p[1]
    v = -math.sin(math.pi / 6) * p[0] + math.cos(math.pi / 6) * p[1]
    return 0.5 * (u**2 + 25 * v**2)


def rosenbrock(p):
    """Rosenbrock's banana-shaped valley, (1 - x)^2 + 100 (y - x^2)^2, minimum 0 at (1, 1)."""
    return (1 - p[0]) ** 2 + 100 * (p[1] - p[0] ** 2) ** 2


# name -> (function, start, minimum, x range, y range)
TEST_FUNCTIONS = {
    "ill-conditioned quadratic": (quadratic, (-4.0, 0.0), (0.0, 0.0), (-5.0, 5.0), (-3.0, 3.0)),
    "Rosenbrock": (rosenbrock, (-1.5, 2.0), (1.0, 1.0), (-2.0, 2.0), (-1.0, 3.0)),
}

OPTIMIZERS = ("SGD", "SGD + momentum", "Nesterov", "RMSprop", "Adam")


def make_optimizer(name: str, params, lr: float, beta1: float = 0.9, beta2: float = 0.999):
    """A `torch.optim` optimiser by name; beta1 is the momentum (or Adam's beta1), beta2 RMSprop's alpha (or Adam's beta2)."""
    if name == "SGD":
        return torch.optim.SGD(params, lr=lr)
    if name == "SGD + momentum":
        return torch.optim.SGD(params, lr=lr, momentum=beta1)
    if name == "Nesterov":
        return torch.optim.SGD(params, lr=lr, momentum=beta1, nesterov=True)
    if name == "RMSprop":
        return torch.optim.RMSprop(params, lr=lr, alpha=beta2)
    if name == "Adam":
        return torch.optim.Adam(params, lr=lr, betas=(beta1, beta2))
    raise ValueError(f"unknown optimiser {name!r}; choose one of {', '.join(OPTIMIZERS)}")


def trajectory(make, function, start, steps: int):
    """Positions (steps + 1) x 2 and losses of an optimiser started at `start`; stops early if it diverges."""
    p = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    optimizer = make([p])
    path, losses = [p.detach().clone()], []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = function(p)
        losses.append(loss.item())
        if not math.isfinite(losses[-1]) or p.detach().abs().max() > 1e6:
            break
        loss.backward()
        optimizer.step()
        path.append(p.detach().clone())
    return torch.stack(path), losses


def draw_contours(ax, function_name: str):
    function, _, minimum, (x0, x1), (y0, y1) = TEST_FUNCTIONS[function_name]
    xs, ys = np.meshgrid(np.linspace(x0, x1, 200), np.linspace(y0, y1, 200))
    values = function(torch.from_numpy(np.stack([xs, ys]))).numpy()
    levels = np.logspace(math.log10(max(values.min(), 1e-3)), math.log10(values.max()), 20)
    ax.contour(xs, ys, values, levels=levels, colors="0.75", linewidths=0.7)
    ax.plot(*minimum, marker="*", markersize=14, color="black", linestyle="none", label="minimum")
    ax.set(xlim=(x0, x1), ylim=(y0, y1), xlabel="x", ylabel="y")


def draw_trajectory(ax, function_name: str, optimizer_name: str, lr: float, beta1: float = 0.9, beta2: float = 0.999, steps: int = 200):
    """Draw one optimiser's path over the contours of a test function; returns (path, losses)."""
    if function_name not in TEST_FUNCTIONS:
        raise ValueError(f"unknown test function {function_name!r}; choose one of {', '.join(TEST_FUNCTIONS)}")
    function, start, minimum, _, _ = TEST_FUNCTIONS[function_name]
    path, losses = trajectory(lambda params: make_optimizer(optimizer_name, params, lr, beta1, beta2), function, start, steps)
    draw_contours(ax, function_name)
    ax.plot(path[:, 0], path[:, 1], "o-", color="#0072B2", markersize=2, linewidth=1, label=optimizer_name)
    ax.plot(*start, marker="o", markersize=8, color="#D55E00", linestyle="none", label="start")
    diverged = len(path) <= steps
    outcome = f"diverged after {len(path) - 1} steps" if diverged else f"loss {losses[-1]:.2e} after {steps} steps"
    ax.set_title(f"{optimizer_name} on the {function_name}, lr={lr:.3g}: {outcome}")
    ax.legend(loc="upper right", fontsize="small")
    return path, losses


def drawn_interactive(redraw, **controls) -> widgets.interactive:
    """`widgets.interactive(redraw, **controls)`, drawn once as soon as it is made.

    ipywidgets 8 calls `redraw` when the widget is made; ipywidgets 7.7, which Google Colab ships,
    only when it is displayed. Calling it here gives both the same `result` from the start.
    """
    ui = widgets.interactive(redraw, {"manual": False}, **controls)
    if ui.result is None:
        ui.update()
    return ui


def optimizer_playground():
    """Sliders for learning rate, betas and steps that redraw `draw_trajectory`; returns the widget."""
    style = {"description_width": "initial"}

    def redraw(function_name, optimizer_name, lr, beta1, beta2, steps):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        path, _ = draw_trajectory(ax, function_name, optimizer_name, lr, beta1, beta2, steps)
        plt.show()
        return path

    return drawn_interactive(
        redraw,
        function_name=widgets.Dropdown(options=list(TEST_FUNCTIONS), description="function", style=style),
        optimizer_name=widgets.Dropdown(options=OPTIMIZERS, value="Adam", description="optimiser", style=style),
        lr=widgets.FloatLogSlider(value=0.1, base=10, min=-4, max=0, step=0.1, description="learning rate", style=style),
        beta1=widgets.FloatSlider(value=0.9, min=0.0, max=0.99, step=0.01, description="momentum / beta1", style=style),
        beta2=widgets.FloatSlider(value=0.999, min=0.5, max=0.9999, step=0.0001, readout_format=".4f", description="alpha / beta2", style=style),
        steps=widgets.IntSlider(value=200, min=10, max=1000, step=10, description="steps", style=style),
    )


# Okabe and Ito's colour-blind-safe colours: blue for the true class, vermilion for a wrong prediction.
TRUE_COLOUR, WRONG_COLOUR, OTHER_COLOUR = "#0072B2", "#D55E00", "#BBBBBB"


def draw_prediction(axes, image, probabilities, cam, label: int, class_names, title: str = "") -> int:
    """Draw one prediction on three axes: the image, its Grad-CAM overlay, and the probability of each class.

    image: H x W; probabilities: one per class, summing to 1; cam: H x W in [0, 1]. The bar of the
    true class is blue, that of a wrong prediction vermilion and hatched, so that colour is never
    the only cue. Returns the predicted class.
    """
    probabilities = torch.as_tensor(probabilities, dtype=torch.float64).flatten()
    image, cam = torch.as_tensor(image).detach().cpu().squeeze(), torch.as_tensor(cam).detach().cpu().squeeze()
    if len(probabilities) != len(class_names):
        raise ValueError(f"{len(probabilities)} probabilities for {len(class_names)} class names")
    if (probabilities < 0).any() or abs(probabilities.sum().item() - 1) > 1e-4:
        raise ValueError(f"the probabilities must be non-negative and sum to 1, not {probabilities.sum().item():.6f}: apply softmax to the logits")
    if image.shape != cam.shape:
        raise ValueError(f"the image is {tuple(image.shape)} but the Grad-CAM map is {tuple(cam.shape)}: upsample the map to the image")
    if not 0 <= label < len(class_names):
        raise ValueError(f"label {label} is not a class index (0 to {len(class_names) - 1})")
    ax_image, ax_cam, ax_bars = axes
    predicted = int(probabilities.argmax())
    ax_image.imshow(image.numpy(), cmap="gray_r")
    ax_image.set(title=f"true: {class_names[label]}", xticks=[], yticks=[])
    ax_cam.imshow(image.numpy(), cmap="gray_r")
    overlay = ax_cam.imshow(cam.numpy(), cmap="inferno", alpha=0.55, vmin=0, vmax=1)
    ax_cam.set(title=f"Grad-CAM for '{class_names[predicted]}'", xticks=[], yticks=[])
    ax_cam.figure.colorbar(overlay, ax=ax_cam, fraction=0.046, pad=0.04, label="relevance")
    colours = [TRUE_COLOUR if c == label else WRONG_COLOUR if c == predicted else OTHER_COLOUR for c in range(len(class_names))]
    bars = ax_bars.barh(range(len(class_names)), probabilities.numpy(), color=colours)
    if predicted != label:
        bars[predicted].set_hatch("//")
    ax_bars.set_yticks(range(len(class_names)), class_names)
    ax_bars.invert_yaxis()
    verdict = "correct" if predicted == label else "wrong"
    ax_bars.set(xlim=(0, 1), xlabel="predicted probability", title=f"predicted: {class_names[predicted]} ({probabilities[predicted]:.1%}, {verdict})")
    if title:
        ax_image.figure.suptitle(title)
    return predicted


def prediction_explorer(model, layer, inputs, images, labels, class_names):
    """A slider over test images (all, the mistakes, or the correct ones) that redraws `draw_prediction`.

    inputs: what the model takes (N x C x H x W); images: the same images for display (N x H x W);
    layer: the module whose output Grad-CAM uses. Returns the widget; its `result` is
    (test image index, predicted class) of the image on show.
    """
    with torch.no_grad(), explain.eval_mode(model):
        probabilities = model(inputs).softmax(dim=1)
    predicted = probabilities.argmax(dim=1)
    subsets = {
        "all test images": torch.arange(len(labels)),
        "mistakes only": torch.nonzero(predicted != labels).flatten(),
        "correct only": torch.nonzero(predicted == labels).flatten(),
    }
    style = {"description_width": "initial"}
    show = widgets.Dropdown(options=[name for name, keep in subsets.items() if len(keep)], description="show", style=style)
    position = widgets.IntSlider(value=0, min=0, max=len(subsets[show.value]) - 1, description="image", style=style)

    def on_subset(change):
        position.value = 0
        position.max = len(subsets[change["new"]]) - 1

    show.observe(on_subset, names="value")

    def redraw(show, position):
        index = int(subsets[show][min(position, len(subsets[show]) - 1)])
        cam = explain.grad_cam(model, layer, inputs[index : index + 1])[0]
        fig, axes = plt.subplots(1, 3, figsize=(11, 3.2), gridspec_kw={"width_ratios": [1, 1.2, 1.6]})
        label = int(labels[index])
        shown = draw_prediction(axes, images[index].cpu(), probabilities[index].cpu(), cam.cpu(), label, class_names, f"test image {index}")
        fig.tight_layout()
        plt.show()
        return index, shown

    return drawn_interactive(redraw, show=show, position=position)
