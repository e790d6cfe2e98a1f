import torch

from helpers.models import MnistCNN


def test_mnist_cnn_maps_a_batch_of_images_to_one_logit_per_class():
    model = MnistCNN().eval()
    assert model(torch.zeros(5, 1, 28, 28)).shape == (5, 10)
    assert MnistCNN(num_classes=3).eval()(torch.zeros(2, 1, 28, 28)).shape == (2, 3)


def test_mnist_cnn_parameter_count_follows_the_layer_formulas():
    c1, c2, hidden = 8, 16, 32
    model = MnistCNN(channels=(c1, c2), hidden=hidden)
    expected = (c1 * 1 * 9 + 2 * c1) + (c2 * c1 * 9 + 2 * c2) + (c2 * 7 * 7 * hidden + hidden) + (hidden * 10 + 10)
    assert sum(p.numel() for p in model.parameters()) == expected


def test_mnist_cnn_in_eval_mode_predicts_an_image_the_same_alone_or_in_a_batch():
    torch.manual_seed(0)
    model = MnistCNN().eval()
    batch = torch.randn(8, 1, 28, 28)
    with torch.no_grad():
        assert torch.allclose(model(batch[:1])[0], model(batch)[0], atol=1e-5)
        assert torch.equal(model(batch), model(batch))  # no dropout in eval mode


def test_mnist_cnn_training_mode_forward_updates_batch_norm_statistics_even_without_gradients():
    torch.manual_seed(0)
    model = MnistCNN().train()
    before = model.features[1].running_mean.clone()
    with torch.no_grad():
        model(torch.randn(8, 1, 28, 28) + 1)
    assert not torch.equal(model.features[1].running_mean, before)
    model.eval()
    after = model.features[1].running_mean.clone()
    with torch.no_grad():
        model(torch.randn(8, 1, 28, 28) + 1)
    assert torch.equal(model.features[1].running_mean, after)
