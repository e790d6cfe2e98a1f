import torch

import pytest

from helpers.models import MnistCNN, SpeedNet, layer_stack


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


@pytest.mark.parametrize(("widths", "first_stride", "crop", "feature_size"),
                         [((8, 16, 48), 2, 2, 3), ((8, 16, 48), 2, 0, 3), ((12, 24), 2, 2, 6), ((8, 16, 32), 1, 0, 3), ((8,), 1, 2, 12)])
def test_speed_net_halves_the_image_once_per_block_and_maps_it_to_one_logit_per_class(widths, first_stride, crop, feature_size):
    # stride 2 in the first block replaces its pool: the same output size with a quarter of the first convolution's outputs
    model = SpeedNet(widths, first_stride, crop=crop, num_classes=7).eval()
    assert model.head.in_features == widths[-1] * feature_size * feature_size
    with torch.no_grad():
        assert model(torch.zeros(3, 1, 28, 28)).shape == (3, 7)
    first_conv = model.features[0]
    assert first_conv.stride == (first_stride, first_stride)
    pools = sum(isinstance(m, torch.nn.MaxPool2d) for m in model.features)
    assert pools == len(widths) - (first_stride == 2)


def test_speed_net_first_convolution_at_stride_2_computes_a_quarter_of_the_outputs():
    outputs = {}
    for stride in (1, 2):
        model = SpeedNet((8, 16, 32), stride, crop=0).eval()
        model.features[0].register_forward_hook(lambda module, inputs, output, stride=stride: outputs.__setitem__(stride, output.shape))
        with torch.no_grad():
            model(torch.zeros(1, 1, 28, 28))
    assert outputs[1] == (1, 8, 28, 28) and outputs[2] == (1, 8, 14, 14)


def test_speed_net_crop_ignores_the_border_and_nothing_inside_it():
    model = SpeedNet(crop=2).eval()
    image = torch.randn(1, 1, 28, 28)
    border, inside = image.clone(), image.clone()
    border[..., :2, :] += 5.0
    border[..., :, -2:] += 5.0
    inside[..., 2, 2] += 5.0  # the corner of the kept 24x24
    with torch.no_grad():
        logits = model(image)
        assert torch.equal(model(border), logits)
        assert not torch.allclose(model(inside), logits)
    assert SpeedNet(crop=0).head.in_features == SpeedNet(crop=2).head.in_features == 48 * 3 * 3


def _speed_nets_in_both_orders():
    torch.manual_seed(0)
    first, last = SpeedNet((8, 16, 48), pool_before_norm=True), SpeedNet((8, 16, 48), pool_before_norm=False)
    for bn in (m for m in first.modules() if isinstance(m, torch.nn.BatchNorm2d)):  # statistics and scales that are not the defaults
        bn.running_mean.uniform_(-1, 1), bn.running_var.uniform_(0.5, 2), bn.weight.data.uniform_(0.5, 2), bn.bias.data.uniform_(-1, 1)
    # the same tensors in the same order; only the positions of the pools in the Sequential differ
    last.load_state_dict(dict(zip(last.state_dict(), first.state_dict().values())))
    return first.eval(), last.eval()


def test_speed_net_pool_before_norm_is_the_same_function_in_eval_mode_when_the_scales_are_positive():
    # max-pool commutes with ReLU and with any increasing per-channel map, as batch norm in eval mode is when its scale is > 0
    first, last = _speed_nets_in_both_orders()
    x = torch.randn(16, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(first(x), last(x))
        bn = next(m for m in first.modules() if isinstance(m, torch.nn.BatchNorm2d) and m is not first.features[1])
        bn.weight.data[0] = -1.0  # a decreasing map: max then negate is not negate then max
        assert not torch.allclose(first(x), last(x))


def test_speed_net_pool_before_norm_gives_batch_norm_and_relu_a_quarter_of_the_values_in_pooled_blocks():
    seen = {}
    for order in (True, False):
        model = SpeedNet((8, 16, 48), pool_before_norm=order).eval()
        sizes = []
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.register_forward_hook(lambda module, inputs, output, sizes=sizes: sizes.append(inputs[0].numel()))
        with torch.no_grad():
            model(torch.zeros(1, 1, 28, 28))
        seen[order] = sizes
    assert seen[False] == [8 * 12 * 12, 16 * 12 * 12, 48 * 6 * 6]  # the stride-2 block has no pool: the same in both orders
    assert seen[True] == [8 * 12 * 12, 16 * 6 * 6, 48 * 3 * 3]


def test_speed_net_parameter_count_follows_the_layer_formulas_with_and_without_batch_norm():
    w1, w2, w3 = 8, 16, 32
    convs = w1 * 1 * 9 + w2 * w1 * 9 + w3 * w2 * 9
    with_bn = convs + 2 * (w1 + w2 + w3) + (w3 * 3 * 3 * 10 + 10)  # batch norm: a scale and a shift per channel, no conv bias
    without_bn = convs + (w1 + w2 + w3) + (w3 * 3 * 3 * 10 + 10)  # a bias per channel instead
    assert sum(p.numel() for p in SpeedNet((w1, w2, w3)).parameters()) == with_bn
    plain = SpeedNet((w1, w2, w3), batch_norm=False)
    assert sum(p.numel() for p in plain.parameters()) == without_bn
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in plain.modules())


def test_speed_net_refuses_an_empty_width_list_a_stride_below_1_or_a_crop_that_leaves_nothing():
    with pytest.raises(ValueError, match="widths"):
        SpeedNet(())
    with pytest.raises(ValueError, match="first_stride"):
        SpeedNet((8, 16), first_stride=0)
    with pytest.raises(ValueError, match="crop=14"):
        SpeedNet(crop=14)


def test_layer_stack_counts_multiply_adds_parameters_and_other_operations_layer_by_layer():
    model = SpeedNet((8, 16, 48), crop=2).train()
    rows = layer_stack(model)
    assert [name for name, *_ in rows] == ["Conv2d", "BatchNorm2d", "ReLU", "Conv2d", "MaxPool2d", "BatchNorm2d", "ReLU",
                                           "Conv2d", "MaxPool2d", "BatchNorm2d", "ReLU", "Linear"]
    convs = [row for row in rows if row[0] == "Conv2d"]
    assert [row[1] for row in convs] == [(8, 12, 12), (16, 12, 12), (48, 6, 6)]
    # each output value of a 3x3 convolution sums in_channels x 9 products; the linear layer's 10 outputs sum 48 x 3 x 3 each
    assert [row[3] for row in convs] == [8 * 12 * 12 * 1 * 9, 16 * 12 * 12 * 8 * 9, 48 * 6 * 6 * 16 * 9]
    assert rows[-1][3] == 10 * 48 * 3 * 3
    assert sum(row[2] for row in rows) == sum(p.numel() for p in model.parameters())
    assert rows[4][4] == 16 * 12 * 12 and rows[5][4] == 16 * 6 * 6  # the pool reads the full map, batch norm the pooled one
    assert model.training, "layer_stack must give the model back in the mode it found it"
