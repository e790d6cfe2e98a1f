"""Interactive explorers. Each widget's drawing is a plain function that a test can call without a browser.

Lesson 04: `trajectory` (built in the lesson) runs a `torch.optim` optimiser on a 2-D test
function; `draw_trajectory` draws one run over the function's contours; `optimizer_playground`
wraps that drawing in sliders.
"""

from __future__ import annotations

import math

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import torch


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


def optimizer_playground():
    """Sliders for learning rate, betas and steps that redraw `draw_trajectory`; returns the widget."""
    style = {"description_width": "initial"}

    def redraw(function_name, optimizer_name, lr, beta1, beta2, steps):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        path, _ = draw_trajectory(ax, function_name, optimizer_name, lr, beta1, beta2, steps)
        plt.show()
        return path

    return widgets.interactive(
        redraw,
        {"manual": False},
        function_name=widgets.Dropdown(options=list(TEST_FUNCTIONS), description="function", style=style),
        optimizer_name=widgets.Dropdown(options=OPTIMIZERS, value="Adam", description="optimiser", style=style),
        lr=widgets.FloatLogSlider(value=0.1, base=10, min=-4, max=0, step=0.1, description="learning rate", style=style),
        beta1=widgets.FloatSlider(value=0.9, min=0.0, max=0.99, step=0.01, description="momentum / beta1", style=style),
        beta2=widgets.FloatSlider(value=0.999, min=0.5, max=0.9999, step=0.0001, readout_format=".4f", description="alpha / beta2", style=style),
        steps=widgets.IntSlider(value=200, min=10, max=1000, step=10, description="steps", style=style),
    )
