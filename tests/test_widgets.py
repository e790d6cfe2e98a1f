"""The lesson-04 optimiser playground: its drawing function and its controls, without a browser."""

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from helpers import widgets  # noqa: E402


@pytest.fixture
def ax():
    fig, ax = plt.subplots()
    yield ax
    plt.close(fig)


def test_quadratic_has_the_stated_curvatures():
    hessian = torch.autograd.functional.hessian(widgets.quadratic, torch.zeros(2, dtype=torch.float64))
    assert torch.allclose(torch.linalg.eigvalsh(hessian), torch.tensor([1.0, 25.0], dtype=torch.float64), atol=1e-12)


def test_rosenbrock_minimum():
    assert widgets.rosenbrock(torch.tensor([1.0, 1.0])) == 0
    assert widgets.rosenbrock(torch.tensor([0.9, 0.8])) > 0


def test_trajectory_follows_gradient_descent_exactly():
    path, losses = widgets.trajectory(lambda p: torch.optim.SGD(p, lr=0.01), widgets.quadratic, (-4.0, 0.0), 5)
    x = torch.tensor([-4.0, 0.0], dtype=torch.float64)
    for step in range(5):
        x_leaf = x.clone().requires_grad_()
        widgets.quadratic(x_leaf).backward()
        assert losses[step] == pytest.approx(widgets.quadratic(x).item())
        x = x - 0.01 * x_leaf.grad
        assert torch.allclose(path[step + 1], x, atol=1e-14)
    assert path.shape == (6, 2)


def test_draw_trajectory_converges_and_draws(ax):
    path, losses = widgets.draw_trajectory(ax, "Rosenbrock", "Adam", lr=0.2, steps=1000)
    assert len(path) == 1001 and losses[-1] < 1e-5 < losses[0]
    assert torch.allclose(path[-1], torch.tensor([1.0, 1.0], dtype=torch.float64), atol=0.01)
    drawn = [line for line in ax.get_lines() if line.get_label() == "Adam"]
    assert len(drawn) == 1 and len(drawn[0].get_xdata()) == 1001
    assert "loss" in ax.get_title() and ax.get_xlabel() == "x" and ax.get_ylabel() == "y"


def test_draw_trajectory_reports_divergence(ax):
    path, losses = widgets.draw_trajectory(ax, "ill-conditioned quadratic", "SGD", lr=0.5, steps=200)
    assert len(path) < 201 and "diverged" in ax.get_title()
    assert not math.isfinite(losses[-1]) or path.abs().max() > 1e6


def test_beta_sliders_reach_the_optimiser(ax):
    with_momentum, _ = widgets.draw_trajectory(ax, "ill-conditioned quadratic", "SGD + momentum", lr=0.01, beta1=0.9, steps=20)
    without, _ = widgets.draw_trajectory(ax, "ill-conditioned quadratic", "SGD + momentum", lr=0.01, beta1=0.0, steps=20)
    plain, _ = widgets.draw_trajectory(ax, "ill-conditioned quadratic", "SGD", lr=0.01, steps=20)
    assert torch.equal(without, plain) and not torch.allclose(with_momentum, plain)


def test_unknown_names_are_refused(ax):
    with pytest.raises(ValueError, match="unknown test function 'Himmelblau'"):
        widgets.draw_trajectory(ax, "Himmelblau", "Adam", lr=0.1)
    with pytest.raises(ValueError, match="unknown optimiser 'Adagrad'"):
        widgets.make_optimizer("Adagrad", [torch.zeros(1, requires_grad=True)], lr=0.1)


def test_playground_redraws_when_a_slider_moves():
    playground = widgets.optimizer_playground()
    controls = {child.description: child for child in playground.children if hasattr(child, "description")}
    assert {"function", "optimiser", "learning rate", "momentum / beta1", "alpha / beta2", "steps"} <= set(controls)
    first = playground.result
    assert first is not None and len(first) == 201
    controls["learning rate"].value = 0.01
    assert not torch.equal(playground.result, first)
    controls["steps"].value = 50
    assert len(playground.result) == 51
    plt.close("all")
