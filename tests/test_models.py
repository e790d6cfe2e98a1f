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
