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


# --- Lesson 06: the prediction explorer -------------------------------------------------------

CLASSES = [f"class {c}" for c in range(4)]


def three_axes():
    fig, axes = plt.subplots(1, 3)
    return fig, axes


def test_draw_prediction_draws_image_overlay_and_bars():
    fig, axes = three_axes()
    image = torch.arange(36.0).reshape(6, 6)
    cam = torch.linspace(0, 1, 36).reshape(6, 6)
    probabilities = torch.tensor([0.1, 0.6, 0.2, 0.1])
    predicted = widgets.draw_prediction(axes, image, probabilities, cam, 2, CLASSES, "test image 7")
    assert predicted == 1
    ax_image, ax_cam, ax_bars = axes
    assert ax_image.get_title() == "true: class 2" and fig._suptitle.get_text() == "test image 7"
    assert (ax_cam.images[0].get_array() == image.numpy()).all() and (ax_cam.images[1].get_array() == cam.numpy()).all()
    assert ax_cam.images[1].get_clim() == (0, 1) and ax_cam.get_title() == "Grad-CAM for 'class 1'"
    bars = ax_bars.patches
    assert [bar.get_width() for bar in bars] == pytest.approx(probabilities.tolist())
    assert bars[2].get_facecolor()[:3] == matplotlib.colors.to_rgb(widgets.TRUE_COLOUR)
    assert bars[1].get_facecolor()[:3] == matplotlib.colors.to_rgb(widgets.WRONG_COLOUR) and bars[1].get_hatch() == "//"
    assert "wrong" in ax_bars.get_title() and ax_bars.get_xlabel() == "predicted probability"
    assert [t.get_text() for t in ax_bars.get_yticklabels()] == CLASSES
    plt.close(fig)


def test_draw_prediction_of_a_correct_prediction_has_no_wrong_bar():
    fig, axes = three_axes()
    predicted = widgets.draw_prediction(axes, torch.zeros(4, 4), [0.05, 0.05, 0.8, 0.1], torch.zeros(4, 4), 2, CLASSES)
    assert predicted == 2 and "correct" in axes[2].get_title()
    colours = {matplotlib.colors.to_hex(bar.get_facecolor()) for bar in axes[2].patches}
    assert widgets.WRONG_COLOUR.lower() not in colours and not any(bar.get_hatch() for bar in axes[2].patches)
    plt.close(fig)


@pytest.mark.parametrize("probabilities, cam, label, message", [
    ([0.5, 0.5, 0.0], torch.zeros(4, 4), 0, "3 probabilities for 4 class names"),
    ([2.0, -1.0, 0.0, 0.0], torch.zeros(4, 4), 0, "non-negative and sum to 1"),
    ([0.3, 0.3, 0.3, 0.3], torch.zeros(4, 4), 0, "apply softmax"),
    ([0.25] * 4, torch.zeros(2, 2), 0, r"Grad-CAM map is \(2, 2\)"),
    ([0.25] * 4, torch.zeros(4, 4), 4, "label 4 is not a class index"),
])
def test_draw_prediction_refuses_inconsistent_inputs(probabilities, cam, label, message):
    fig, axes = three_axes()
    with pytest.raises(ValueError, match=message):
        widgets.draw_prediction(axes, torch.zeros(4, 4), probabilities, cam, label, CLASSES)
    plt.close(fig)


def test_prediction_explorer_follows_the_slider_and_the_subset():
    from helpers import models

    torch.manual_seed(0)
    model = models.MnistCNN(num_classes=4, channels=(4, 8), hidden=16).eval()
    inputs = torch.randn(12, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        predicted = model(inputs).argmax(dim=1)
    labels = predicted.clone()
    labels[[2, 5, 9]] = (predicted[[2, 5, 9]] + 1) % 4  # three mistakes
    explorer = widgets.prediction_explorer(model, model.features[6], inputs, inputs[:, 0], labels, CLASSES)
    controls = {child.description: child for child in explorer.children if hasattr(child, "description")}
    assert explorer.result == (0, int(predicted[0]))
    controls["image"].value = 7
    assert explorer.result == (7, int(predicted[7]))
    controls["show"].value = "mistakes only"
    assert controls["image"].max == 2 and explorer.result[0] == 2
    controls["image"].value = 2
    assert explorer.result == (9, int(predicted[9]))
    assert model.training is False and all(p.grad is None for p in model.parameters())
    plt.close("all")
