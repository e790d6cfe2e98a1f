"""helpers.explain: saliency, Grad-CAM and the rank correlation, each against an independent computation."""

import pytest
import torch
from scipy import stats
from torch import nn
from torch.nn import functional as F

from helpers import explain, models


@pytest.fixture
def cnn():
    torch.manual_seed(0)
    model = models.MnistCNN(channels=(4, 8), hidden=16).double()
    with torch.no_grad():  # batch-norm statistics that are not 0 and 1, so that evaluation mode matters
        for bn in (model.features[1], model.features[5]):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
    return model.train()


@pytest.fixture
def images():
    return torch.randn(5, 1, 28, 28, generator=torch.Generator().manual_seed(1), dtype=torch.float64)


def test_saliency_is_the_absolute_input_gradient_in_eval_mode(cnn, images):
    target = torch.tensor([0, 3, 9, 1, 1])
    result = explain.saliency(cnn, images, target)
    assert cnn.training, "the mode is restored"
    cnn.eval()
    for i in range(len(images)):
        x = images[i : i + 1].clone().requires_grad_(True)
        cnn(x)[0, target[i]].backward()
        assert torch.allclose(result[i], x.grad[0, 0].abs(), atol=1e-12)


def test_saliency_takes_the_largest_channel_and_the_predicted_class_by_default():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 2, 3, padding=1), nn.Flatten(), nn.Linear(2 * 5 * 5, 4)).double()
    x = torch.randn(2, 3, 5, 5, dtype=torch.float64)
    predicted = model(x).argmax(dim=1)
    assert torch.equal(explain.saliency(model, x), explain.saliency(model, x, predicted))
    full = torch.autograd.functional.jacobian(lambda inputs: model(inputs).gather(1, predicted[:, None]).sum(), x)
    assert torch.allclose(explain.saliency(model, x), full.abs().amax(dim=1), atol=1e-12)


def test_grad_cam_matches_the_formula_computed_without_hooks(cnn, images):
    target = torch.tensor([2, 2, 5, 7, 0])
    result = explain.grad_cam(cnn, cnn.features[6], images, target)
    cnn.eval()
    activation = cnn.features[:7](images)
    scores = cnn.classifier(cnn.features[7](activation))
    (gradient,) = torch.autograd.grad(scores.gather(1, target[:, None]).sum(), activation)
    cam = F.relu((gradient.mean(dim=(2, 3), keepdim=True) * activation).sum(dim=1))
    cam = F.interpolate(cam[:, None], size=(28, 28), mode="bilinear", align_corners=False)[:, 0]
    expected = cam / cam.amax(dim=(1, 2), keepdim=True).clamp_min(1e-12)
    assert result.shape == (5, 28, 28)
    assert torch.allclose(result, expected.detach(), atol=1e-10)
    assert result.min() >= 0 and torch.allclose(result.amax(dim=(1, 2))[expected.amax(dim=(1, 2)) > 0], torch.tensor(1.0, dtype=torch.float64))


def test_grad_cam_leaves_no_hooks_and_no_gradients(cnn, images):
    explain.grad_cam(cnn, cnn.features[6], images)
    explain.saliency(cnn, images)
    assert all(p.grad is None for p in cnn.parameters())
    assert all(not m._forward_hooks for m in cnn.modules())


def test_grad_cam_refuses_a_layer_outside_the_model_and_a_bad_class(cnn, images):
    with pytest.raises(ValueError, match="did not run in the model's forward pass"):
        explain.grad_cam(cnn, nn.ReLU(), images)
    with pytest.raises(ValueError, match="target class 10 is out of range: the model has 10 classes"):
        explain.grad_cam(cnn, cnn.features[6], images, 10)
    assert all(not m._forward_hooks for m in cnn.modules()), "the hook is removed even when the call fails"


def test_ranks_average_ties_like_scipy():
    values = torch.tensor([[3.0, 1.0, 3.0, 0.0, 0.0, 0.0, 2.0], [5.0, 4.0, 3.0, 2.0, 1.0, 0.0, -1.0]])
    for row in range(2):
        assert explain.ranks(values)[row].tolist() == (stats.rankdata(values[row].numpy()) - 1).tolist()


def test_rank_correlation_equals_spearman_and_counts_constant_maps_as_zero():
    generator = torch.Generator().manual_seed(0)
    a = torch.relu(torch.randn(6, 10, 10, generator=generator))  # many tied zeros
    b = a + 0.5 * torch.randn(6, 10, 10, generator=generator)
    result = explain.rank_correlation(a, b)
    expected = [stats.spearmanr(a[i].flatten(), b[i].flatten()).statistic for i in range(6)]
    assert result.tolist() == pytest.approx(expected, abs=1e-12)
    assert explain.rank_correlation(a, a).tolist() == pytest.approx([1.0] * 6)
    assert explain.rank_correlation(a, -a).tolist() == pytest.approx([-1.0] * 6)
    constant = torch.zeros(6, 10, 10)
    assert explain.rank_correlation(constant, b).tolist() == [0.0] * 6
    with pytest.raises(ValueError, match=r"differ in shape: \(6, 10, 10\) and \(6, 100\)"):
        explain.rank_correlation(a, b.flatten(1))
