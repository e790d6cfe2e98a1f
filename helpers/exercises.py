"""Checks for the lessons' exercises: one line saying right, or a hint about what is wrong.

A check recomputes the answer its own way and compares; it raises AssertionError with a hint
when the answer is wrong, so that a wrong answer stops the notebook where it happened.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections import Counter

import numpy as np
import torch


class _Todo:
    """The placeholder that student copies put where an answer goes (see tools/make_student.py)."""

    def __repr__(self):
        return "TODO"


TODO = _Todo()


def _check(title: str):
    """Make a check say "not done yet" (and not fail) while the exercise still holds its TODO.

    An answer that is still TODO, or a function or class that still raises NotImplementedError,
    gets one line saying so; the notebook goes on. Anything else is checked, and the check
    receives the exercise's title as its first argument.
    """

    def decorate(check):
        @functools.wraps(check)
        def run(*answers):
            not_done = f"{title}: not done yet. Replace the TODO in the cell above with your answer and run the cell again."
            if any(answer is TODO for answer in answers):
                print(not_done)
                return
            try:
                check(title, *answers)
            except NotImplementedError:
                print(not_done)

        run.title = title
        signature = inspect.signature(check)
        run.__signature__ = signature.replace(parameters=list(signature.parameters.values())[1:])  # without `exercise`
        return run

    return decorate


def _verdict(ok: bool, exercise: str, hint: str) -> None:
    """The final word of a check: 'correct', or an AssertionError with the hint."""
    _require(ok, exercise, hint)
    print(f"{exercise}: correct.")


def _require(ok: bool, exercise: str, hint: str) -> None:
    """One condition of a check: silent when it holds, an AssertionError with the hint when not."""
    if not ok:
        _fail(exercise, hint)


def _fail(exercise: str, hint: str) -> None:
    raise AssertionError(f"{exercise}: not yet. {hint}")


# --- Lesson 00 --------------------------------------------------------------------------------


@_check("Exercise 00.1 (fraction of zero pixels)")
def check_zero_fraction(exercise, dataset, zero_fraction) -> None:
    expected = (dataset.data == 0).double().mean().item()
    if not isinstance(zero_fraction, (float, int)) or isinstance(zero_fraction, bool):
        _fail(exercise, f"give a Python float, not {type(zero_fraction).__name__} (`.item()` turns a 1-element tensor into one)")
    if 1 < zero_fraction <= 100 and abs(zero_fraction / 100 - expected) < 1e-4:
        _fail(exercise, "that is a percentage: give a fraction between 0 and 1")
    if abs(zero_fraction - (1 - expected)) < 1e-4:
        _fail(exercise, "that is the fraction of pixels that are *not* zero")
    _verdict(abs(zero_fraction - expected) < 1e-4, exercise, "count the pixels equal to 0 in `dataset.data` and divide by the number of all pixels")


@_check("Exercise 00.2 (brightest class)")
def check_brightest_class(exercise, dataset, brightest_class) -> None:
    means = torch.stack([dataset.data[dataset.targets == c].double().mean() for c in range(len(dataset.classes))])
    if not isinstance(brightest_class, str):
        _fail(exercise, f"give the class name, such as dataset.classes[i], not a {type(brightest_class).__name__}")
    if brightest_class == dataset.classes[int(means.argmin())]:
        _fail(exercise, "that is the darkest class: you want the largest mean, not the smallest")
    _verdict(
        brightest_class == dataset.classes[int(means.argmax())],
        exercise,
        "compute one mean pixel value per class (select the images with `dataset.targets == c`) and take the largest",
    )


# --- Lesson 01 --------------------------------------------------------------------------------


@_check("Exercise 01.1 (normalisation statistics)")
def check_normalisation(exercise, dataset, mean, std) -> None:
    pixels = dataset.data.double() / 255
    expected_mean, expected_std = pixels.mean().item(), pixels.std().item()
    for name, value in (("mean", mean), ("std", std)):
        if not isinstance(value, float):
            _fail(exercise, f"`{name}` should be a Python float, not {type(value).__name__} (use `.item()`)")
    if mean > 1:
        _fail(exercise, "the pixels are bytes from 0 to 255: divide by 255 first")
    per_image = pixels.flatten(1).std(dim=1).mean().item()
    if abs(std - per_image) < 1e-4:
        _fail(exercise, "that is the average of the per-image standard deviations; take the std over all pixels at once")
    _verdict(
        abs(mean - expected_mean) < 1e-4 and abs(std - expected_std) < 1e-4,
        exercise,
        "use every training pixel, scaled to [0, 1], all at once: one mean and one standard deviation over the whole tensor",
    )


@_check("Exercise 01.2 (a dataset over class folders)")
def check_class_folders(exercise, dataset_class, root) -> None:
    from pathlib import Path

    from PIL import Image

    expected = sorted((p, int(p.parent.name)) for p in Path(root).glob("*/*.png"))
    dataset = dataset_class(root)
    _require(len(dataset) == len(expected), exercise, f"`len()` gives {len(dataset)}, but there are {len(expected)} images: glob '*/*.png' under root")
    for index, (path, label) in enumerate(expected):
        image, got = dataset[index]
        if not isinstance(got, int):
            _fail(exercise, f"labels should be int, not {type(got).__name__}: convert the folder name with int()")
        if not isinstance(image, Image.Image) or image.mode != "L":
            _fail(exercise, "without a transform, return the PIL image converted with .convert('L')")
        with Image.open(path) as truth:
            same_pixels = np.array_equal(np.array(truth.convert("L")), np.array(image))
        if not same_pixels or got != label:
            _fail(exercise, f"item {index} should be {path.parent.name}/{path.name}: sort the (path, label) pairs so the order is fixed")
    marker = object()
    transformed, _ = dataset_class(root, transform=lambda image: marker)[0]
    _verdict(transformed is marker, exercise, "apply `transform` to the image when one is given")


@_check("Exercise 01.3 (stratified split)")
def check_stratified_split(exercise, split_function, labels) -> None:
    for fraction in (0.1, 0.25):
        train, val = split_function(labels, fraction, torch.Generator().manual_seed(0))
        train, val = [int(i) for i in train], [int(i) for i in val]
        if set(train) & set(val):
            _fail(exercise, "an index appears in both parts: the parts must be disjoint")
        if sorted(train + val) != list(range(len(labels))):
            _fail(exercise, "together the two parts must hold every index exactly once")
        for c in labels.unique().tolist():
            count = int((labels == c).sum())
            in_val = int((labels[val] == c).sum())
            if in_val != round(fraction * count):
                _fail(exercise, f"class {c}: {in_val} validation examples, expected round({fraction} * {count}) = {round(fraction * count)}")
    first = split_function(labels, 0.1, torch.Generator().manual_seed(0))[1]
    again = split_function(labels, 0.1, torch.Generator().manual_seed(0))[1]
    other = split_function(labels, 0.1, torch.Generator().manual_seed(1))[1]
    if sorted(map(int, first)) != sorted(map(int, again)):
        _fail(exercise, "the same seed should give the same split: draw with torch.randperm(..., generator=generator)")
    _verdict(sorted(map(int, first)) != sorted(map(int, other)), exercise, "a different seed should give a different split: choose the examples at random")


# --- Lesson 02 --------------------------------------------------------------------------------


@_check("Exercise 02.1 (convolution arithmetic)")
def check_conv_arithmetic(exercise, out_size, n_params) -> None:
    from torch import nn

    layer = nn.Conv2d(1, 16, kernel_size=5, stride=2, padding=2)
    expected_size = layer(torch.zeros(1, 1, 28, 28)).shape[-1]
    expected_params = sum(p.numel() for p in layer.parameters())
    if out_size == 28 // 2 - 1 or out_size == (28 - 5) // 2 + 1:
        _fail(exercise, "the padding adds p pixels on both sides of the image, not on one")
    _require(out_size == expected_size, exercise, "use section 2's output-size formula with this layer's n, k, p and s; the division by the stride rounds down (floor)")
    if n_params == expected_params - 16:
        _fail(exercise, "the bias adds one parameter per output channel")
    _verdict(n_params == expected_params, exercise, "every output channel has one k x k kernel for each input channel, plus its bias")


@_check("Exercise 02.2 (top-k accuracy)")
def check_top_k_accuracy(exercise, top_k_accuracy) -> None:
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(500, 10, generator=generator)
    targets = torch.randint(0, 10, (500,), generator=generator)
    for k in (1, 3, 10):
        result = top_k_accuracy(logits, targets, k)
        if not isinstance(result, float):
            _fail(exercise, f"return a Python float (use .item()), not {type(result).__name__}")
        ranks = (logits > logits.gather(1, targets.unsqueeze(1))).sum(dim=1)  # how many classes score higher
        expected = (ranks < k).double().mean().item()
        if k == 1:
            _require(abs(result - expected) < 1e-6, exercise, "with k = 1 it must equal the plain accuracy (is the largest logit the target's?)")
        if k == 10:
            _require(abs(result - 1.0) < 1e-6, exercise, "with k = all 10 classes every prediction is right: 1.0")
        _require(abs(result - expected) < 1e-6, exercise, f"k={k}: got {result:.4f}, expected {expected:.4f}; find the k largest logits of each row (a tensor method does it) and ask whether the target is among them")
    _verdict(True, exercise, "")


@_check("Exercise 02.3 (most confused pair)")
def check_most_confused(exercise, confusion, most_confused) -> None:
    both_ways = (confusion + confusion.T).clone()
    both_ways.fill_diagonal_(0)
    best = int(both_ways.max())
    pairs = {(a, b) for a in range(len(confusion)) for b in range(a + 1, len(confusion)) if both_ways[a, b] == best}
    if not (isinstance(most_confused, tuple) and len(most_confused) == 2 and all(isinstance(c, int) for c in most_confused)):
        _fail(exercise, "give a tuple of two ints, such as (4, 9)")
    one_way = confusion.clone()
    one_way.fill_diagonal_(0)
    a, b = divmod(int(one_way.argmax()), len(confusion))
    if tuple(sorted((a, b))) == most_confused and most_confused not in pairs:
        _fail(exercise, "that pair is the largest in one direction only: add confusion and its transpose")
    _verdict(tuple(most_confused) in pairs, exercise, "ignore the diagonal (correct predictions) and sort the pair")


# --- Lesson 03 --------------------------------------------------------------------------------


@_check("Exercise 03.1 (gradient of binary cross-entropy with logits)")
def check_bce_with_logits_grad(exercise, bce_with_logits_grad) -> None:
    generator = torch.Generator().manual_seed(0)
    z = torch.randn(50, generator=generator, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 2, (50,), generator=generator).double()
    torch.nn.functional.binary_cross_entropy_with_logits(z, y).backward()
    with torch.no_grad():
        got = bce_with_logits_grad(z.detach(), y)
    if not isinstance(got, torch.Tensor) or got.shape != z.shape:
        _fail(exercise, f"return a tensor of z's shape {tuple(z.shape)}, not {getattr(got, 'shape', type(got).__name__)}")
    expected = z.grad
    if torch.allclose(got, expected * len(z), atol=1e-10):
        _fail(exercise, "almost: the loss is a mean over the N examples, so divide by N")
    if torch.allclose(got, -expected, atol=1e-10):
        _fail(exercise, "the sign is flipped: when y = 1, a larger z lowers the loss, so the gradient there must be negative")
    if torch.allclose(got, expected * (torch.sigmoid(z) * (1 - torch.sigmoid(z))).detach(), atol=1e-10):
        _fail(exercise, "sigma'(z) cancels against the 1/sigma and 1/(1 - sigma) of the logs: the result is simpler")
    _verdict(torch.allclose(got, expected, atol=1e-10), exercise, "differentiate -[y log s + (1 - y) log(1 - s)] with s = sigma(z), using sigma' = s(1 - s)")


@_check("Exercise 03.2 (backward pass of a tanh layer)")
def check_tanh_layer_backward(exercise, tanh_layer_backward) -> None:
    generator = torch.Generator().manual_seed(0)
    X = torch.randn(6, 4, generator=generator, dtype=torch.float64, requires_grad=True)
    W = torch.randn(3, 4, generator=generator, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, generator=generator, dtype=torch.float64, requires_grad=True)
    G = torch.randn(6, 3, generator=generator, dtype=torch.float64)
    torch.tanh(X @ W.T + b).backward(G)
    with torch.no_grad():
        got = tanh_layer_backward(X.detach(), W.detach(), b.detach(), G)
    if not (isinstance(got, tuple) and len(got) == 3):
        _fail(exercise, "return a tuple of three tensors: (dL/dX, dL/dW, dL/db)")
    for name, ours, expected in zip(("dL/dX", "dL/dW", "dL/db"), got, (X.grad, W.grad, b.grad)):
        if not isinstance(ours, torch.Tensor) or ours.shape != expected.shape:
            _fail(exercise, f"{name} must have shape {tuple(expected.shape)}, like the tensor it belongs to; got {getattr(ours, 'shape', type(ours).__name__)}")
        if not torch.allclose(ours, expected, atol=1e-10):
            delta_without_derivative = G
            plain = {"dL/dX": delta_without_derivative @ W.detach(), "dL/dW": delta_without_derivative.T @ X.detach(), "dL/db": G.sum(0)}[name]
            if torch.allclose(ours, plain, atol=1e-10):
                _fail(exercise, f"{name}: G is the gradient at the tanh's output; take it back through tanh's derivative (section 4 writes it with the output) before the linear layer's rules")
            _fail(exercise, f"{name} differs from autograd's; once G is back through tanh, the linear layer's rules are section 2's: check the order of each product and what the bias sums over")
    _verdict(True, exercise, "")


@_check("Exercise 03.3 (backward pass of average pooling)")
def check_avg_pool_backward(exercise, avg_pool_backward) -> None:
    generator = torch.Generator().manual_seed(0)
    for k in (2, 3):
        x = torch.randn(2, 3, 6, 6, generator=generator, dtype=torch.float64, requires_grad=True)
        G = torch.randn(2, 3, 6 // k, 6 // k, generator=generator, dtype=torch.float64)
        torch.nn.functional.avg_pool2d(x, k).backward(G)
        got = avg_pool_backward(G, k)
        if not isinstance(got, torch.Tensor) or got.shape != x.shape:
            _fail(exercise, f"with k={k} the result must have the input's shape {tuple(x.shape)}, not {getattr(got, 'shape', type(got).__name__)}")
        if torch.allclose(got, x.grad * k**2, atol=1e-10):
            _fail(exercise, f"each input is 1/k^2 of its window's mean: divide by k^2 = {k * k}")
        _require(torch.allclose(got, x.grad, atol=1e-10), exercise, "ask how much one input pixel moves its window's mean: unlike max pooling, no pixel of the window is special (repeat_interleave can spread a value over a window)")
    _verdict(True, exercise, "")


# --- Lesson 04 --------------------------------------------------------------------------------


@_check("Exercise 04.1 (Nesterov momentum)")
def check_nesterov_step(exercise, nesterov_step) -> None:
    scale = torch.tensor([1.0, 10.0, 0.3], dtype=torch.float64)

    def gradient(p):  # of the quadratic 0.5 * sum(scale * p^2)
        return scale * p

    start = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64)
    lr, momentum = 0.05, 0.9
    reference = start.clone().requires_grad_()
    optimizer = torch.optim.SGD([reference], lr=lr, momentum=momentum, nesterov=True)
    p, buffer = start.clone(), None
    for step in range(1, 101):
        g = gradient(p)
        result = nesterov_step(p, g, buffer, lr, momentum)
        if not (isinstance(result, tuple) and len(result) == 2):
            _fail(exercise, "return a tuple (new p, new buffer)")
        p, buffer = result
        optimizer.zero_grad()
        reference.grad = gradient(reference.detach())
        optimizer.step()
        if not torch.allclose(p, reference.detach(), atol=1e-10, rtol=0):
            plain, plain_buffer = start.clone(), None
            for _ in range(step):
                g0 = gradient(plain)
                plain_buffer = g0.clone() if plain_buffer is None else momentum * plain_buffer + g0
                plain = plain - lr * plain_buffer
            if torch.allclose(p, plain, atol=1e-10, rtol=0):
                _fail(exercise, "that is plain momentum (a step along the buffer); Nesterov steps from where the momentum is about to carry the parameters: see section 3's PyTorch form")
            if step == 1:
                _fail(exercise, "the first step already differs: check how PyTorch starts the buffer (section 2) and what Nesterov's step adds to it (section 3)")
            _fail(exercise, f"step {step} differs from torch.optim.SGD(nesterov=True): compare your buffer update, then your step, with section 3's PyTorch form")
    _verdict(True, exercise, "")


@_check("Exercise 04.2 (warm-up then cosine)")
def check_warmup_cosine(exercise, warmup_cosine) -> None:
    for base_lr, warmup, total in ((0.1, 10, 100), (3e-4, 25, 60)):
        optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base_lr)
        scheduler = torch.optim.lr_scheduler.SequentialLR(
            optimizer,
            [
                torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.1, end_factor=1.0, total_iters=warmup),
                torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total - warmup),
            ],
            milestones=[warmup],
        )
        for t in range(total + 1):
            expected = optimizer.param_groups[0]["lr"]
            got = warmup_cosine(t, base_lr, warmup, total)
            if not isinstance(got, (float, int)) or isinstance(got, bool) or not math.isfinite(got):
                _fail(exercise, f"return a finite number, not {got!r}")
            if abs(got - expected) > 1e-9 * base_lr:
                where = "during the warm-up: linear from 0.1 * base_lr at t = 0 to base_lr at t = warmup" if t < warmup else (
                    "after the warm-up: a cosine from base_lr at t = warmup down to 0 at t = total, so its clock starts when the warm-up ends")
                _fail(exercise, f"at t={t} (base_lr={base_lr}, warmup={warmup}, total={total}) expected {expected:.6g}, got {got:.6g}; {where}")
            optimizer.step()
            scheduler.step()
    _verdict(True, exercise, "")


@_check("Exercise 04.3 (Kaiming initialisation of a convolution)")
def check_kaiming_conv(exercise, fan_in, kaiming_std) -> None:
    expected_fan_in = 16 * 3 * 3
    if fan_in == 16:
        _fail(exercise, "each output of a convolution sums over in_channels x kernel height x kernel width inputs, not in_channels alone")
    if fan_in == 32 * 3 * 3:
        _fail(exercise, "that is the fan-out (out_channels x k x k); the forward pass sums over the inputs")
    _require(fan_in == expected_fan_in, exercise, "fan-in = in_channels x kernel height x kernel width")
    if isinstance(kaiming_std, (int, float)) and abs(kaiming_std - 2 / expected_fan_in) < 1e-9:
        _fail(exercise, "that is the variance; the standard deviation is its square root")
    if isinstance(kaiming_std, (int, float)) and abs(kaiming_std - math.sqrt(1 / expected_fan_in)) < 1e-9:
        _fail(exercise, "that is the variance for a layer without ReLU; ReLU zeroes half of its inputs, and Kaiming's variance makes up for that (section 9)")
    _verdict(
        isinstance(kaiming_std, (int, float)) and abs(kaiming_std - math.sqrt(2 / expected_fan_in)) < 1e-9,
        exercise,
        "Kaiming's variance keeps E[z^2] the same through ReLU layers (section 9); give its standard deviation as a Python float",
    )


# --- Lesson 05 --------------------------------------------------------------------------------


def _resnet18():
    from torchvision.models import resnet18

    return resnet18(weights=None)


@_check("Exercise 05.1 (freeze all but the last stage)")
def check_freeze_all_but_last_stage(exercise, freeze_all_but_last_stage) -> None:
    model = _resnet18()
    result = freeze_all_but_last_stage(model)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    expected = {name for name, _ in model.named_parameters() if name.startswith(("layer4.", "fc."))}
    if trainable == {name for name in expected if name.startswith("layer4.")}:
        _fail(exercise, "the new head `fc` must stay trainable too")
    if trainable and all(name.startswith("fc.") for name in trainable):
        _fail(exercise, "only the head is trainable: keep `layer4` trainable as well")
    _require(trainable == expected, exercise, f"exactly the parameters whose names start with 'layer4.' or 'fc.' should have requires_grad=True; {len(trainable)} do, {len(expected)} should")
    count = sum(p.numel() for name, p in model.named_parameters() if name in expected)
    if result == sum(p.numel() for p in model.parameters()):
        _fail(exercise, "that counts all parameters; count only those with requires_grad=True")
    _verdict(result == count, exercise, "return the number of trainable parameters: numbers, not tensors, and only those that will train")


@_check("Exercise 05.2 (layer-wise learning rates)")
def check_layerwise_groups(exercise, layerwise_groups) -> None:
    model = _resnet18()
    head_lr, decay = 1e-3, 0.5
    groups = layerwise_groups(model, head_lr, decay)
    if not (isinstance(groups, list) and all(isinstance(g, dict) and "params" in g and "lr" in g for g in groups)):
        _fail(exercise, "return a list of dicts, each with 'params' (a list of parameters) and 'lr'")
    owner = {}
    for index, group in enumerate(groups):
        for p in group["params"]:
            if id(p) in owner:
                _fail(exercise, "a parameter appears in two groups; every parameter must be in exactly one")
            owner[id(p)] = group["lr"]
    names = dict(model.named_parameters())
    missing = [name for name, p in names.items() if id(p) not in owner]
    _require(not missing, exercise, f"{len(missing)} parameters are in no group, for example {missing[0] if missing else ''}")
    depth = {"fc": 0, "layer4": 1, "layer3": 2, "layer2": 3, "layer1": 4, "conv1": 5, "bn1": 5}
    for name, p in names.items():
        expected = head_lr * decay ** depth[name.split(".")[0]]
        if abs(owner[id(p)] - expected) > 1e-15:
            _fail(exercise, f"{name} has lr {owner[id(p)]:.3g}, expected {expected:.3g}: count how many stages {name.split('.')[0]} lies below the head")
    _verdict(True, exercise, "")


# --- Lesson 06 --------------------------------------------------------------------------------


def _small_classifier(dropout: float = 0.0):
    """A tiny convolutional classifier of 8 x 8 images into 3 classes, in float64, always the same weights."""
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Dropout(dropout), nn.Linear(4 * 8 * 8, 3)).double()
    return model.train()  # left in training mode on purpose: the answer must switch to evaluation mode


@_check("Exercise 06.1 (occlusion sensitivity)")
def check_occlusion(exercise, occlusion) -> None:
    model = _small_classifier(dropout=0.5)
    x = torch.randn(1, 1, 8, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    for patch, fill, target in ((4, 0.0, 2), (2, -1.0, 0)):
        with torch.no_grad():
            model.eval()
            original = model(x).softmax(dim=1)[0, target]
            covered_probability = torch.empty(8 // patch, 8 // patch, dtype=torch.float64)
            for i in range(8 // patch):
                for j in range(8 // patch):
                    covered = x.clone()
                    covered[..., i * patch : (i + 1) * patch, j * patch : (j + 1) * patch] = fill
                    covered_probability[i, j] = model(covered).softmax(dim=1)[0, target]
            model.train()
        expected = original - covered_probability
        result = occlusion(model, x, target, patch, fill)
        _require(isinstance(result, torch.Tensor), exercise, "return a tensor")
        result = result.detach().double().cpu()
        _require(tuple(result.shape) == tuple(expected.shape), exercise,
                 f"with an 8 x 8 image and patch={patch} the map is {tuple(expected.shape)}, one value per position of the square; got {tuple(result.shape)}")
        if torch.allclose(result, -expected, atol=1e-6) and not torch.allclose(result, expected, atol=1e-6):
            _fail(exercise, "the sign is reversed: the drop is the original probability minus the covered one")
        if torch.allclose(result, covered_probability, atol=1e-6):
            _fail(exercise, "that is the probability with the square covered; return how much it dropped from the original")
        if torch.allclose(result, expected.T, atol=1e-6) and not torch.allclose(result, expected, atol=1e-6):
            _fail(exercise, "rows and columns are swapped: entry [i, j] covers rows i*patch..(i+1)*patch and columns j*patch..(j+1)*patch")
        _require(torch.allclose(result, expected, atol=1e-6), exercise,
                 f"the drops differ from the expected ones (largest difference {(result - expected).abs().max():.3g} with patch={patch}, fill={fill}); "
                 "use softmax probabilities of the target class, and put the model in evaluation mode (it has dropout)")
    _verdict(True, exercise, "")


@_check("Exercise 06.2 (integrated gradients)")
def check_integrated_gradients(exercise, integrated_gradients) -> None:
    model = _small_classifier()
    x = torch.randn(1, 1, 8, 8, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    target, steps = 1, 50

    def mean_gradient(ks):
        points = torch.stack([k / steps * x[0] for k in ks]).requires_grad_(True)
        (gradient,) = torch.autograd.grad(model.eval()(points)[:, target].sum(), points)
        return gradient.mean(dim=0, keepdim=True)

    expected = x * mean_gradient(range(1, steps + 1))
    result = integrated_gradients(model, x, target, steps)
    _require(isinstance(result, torch.Tensor) and tuple(result.shape) == tuple(x.shape), exercise,
             f"return a tensor of the image's shape {tuple(x.shape)}")
    result = result.detach().double()
    close = lambda a, b: torch.allclose(a, b, rtol=1e-4, atol=1e-7)
    if close(result, mean_gradient(range(1, steps + 1))):
        _fail(exercise, "that is the average gradient; multiply it by (x - baseline)")
    if close(result, steps * expected):
        _fail(exercise, f"the attributions are {steps} times too large: average the gradients over the steps, do not add them up")
    if close(result, x * mean_gradient(range(0, steps))):
        _fail(exercise, "the sum runs over k = 1 .. steps (the right Riemann sum), not 0 .. steps - 1")
    _require(close(result, expected), exercise,
             f"the attributions differ from the formula above (largest difference {(result - expected).abs().max():.3g}): compare "
             "the points on the path, what is averaged and what multiplies it; the score F is the target's logit, not its probability")
    with torch.no_grad():
        gap = (model(x)[0, target] - model(torch.zeros_like(x))[0, target]).item()
    total = result.sum().item()
    print(f"{exercise}: the attributions add up to {total:.4f}; F(x) - F(baseline) = {gap:.4f}")
    _verdict(abs(total - gap) < 0.05 * abs(gap) + 1e-3, exercise, f"the attributions add up to {total:.4f}, but F(x) - F(x') = {gap:.4f}")


# --- Lesson 07 --------------------------------------------------------------------------------


@_check("Exercise 07.1 (linear scaling rule)")
def check_linear_scaling(exercise, global_batch, scaled_lr) -> None:
    if global_batch == 128:
        _fail(exercise, "128 is the batch of one GPU; the global batch counts the images of all 4 GPUs in one step")
    _require(global_batch == 512, exercise, "count the images that all the GPUs process together in one optimiser step")
    if isinstance(scaled_lr, (int, float)) and abs(scaled_lr - 0.1 * 4) < 1e-12:
        _fail(exercise, "that scales by the number of GPUs; the rule scales by how much the global batch grew")
    _verdict(isinstance(scaled_lr, (int, float)) and abs(scaled_lr - 0.2) < 1e-12, exercise, "the learning rate should grow by the same factor as the global batch did, starting from the tuned run")


@_check("Exercise 07.2 (an accumulated step)")
def check_accumulated_step(exercise, accumulated_step) -> None:
    from torch import nn

    def make():
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(20, 16), nn.ReLU(), nn.Linear(16, 5)).double()
        return model, torch.optim.SGD(model.parameters(), lr=0.5)

    generator = torch.Generator().manual_seed(0)
    x = torch.randn(24, 20, generator=generator, dtype=torch.float64)
    y = torch.randint(0, 5, (24,), generator=generator)
    reference, reference_optimizer = make()
    reference_optimizer.zero_grad()
    torch.nn.functional.cross_entropy(reference(x), y).backward()
    reference_optimizer.step()
    expected = torch.cat([p.detach().flatten() for p in reference.parameters()])
    for k in (1, 3, 4):
        model, optimizer = make()
        with torch.no_grad():
            for p in model.parameters():
                p.grad = torch.ones_like(p)  # stale gradients: the step must start by clearing them
        accumulated_step(model, optimizer, x, y, k)
        got = torch.cat([p.detach().flatten() for p in model.parameters()])
        if torch.allclose(got, expected, atol=1e-12):
            continue
        start = torch.cat([p.detach().flatten() for p in make()[0].parameters()])
        if k > 1 and torch.allclose(got - start, k * (expected - start), atol=1e-10):
            _fail(exercise, f"with k={k} the step is {k} times too large: the gradients of the micro-batches add up in .grad, but the whole batch's loss is a mean")
        if torch.allclose(got - start, expected - start - 0.5, atol=1e-10):
            _fail(exercise, "the gradients left from before were added in: call optimizer.zero_grad() first")
        _fail(exercise, f"with k={k} the result differs from one step on the whole batch: check what .grad holds before the first backward, and how many times the optimiser steps")
    _verdict(True, exercise, "")


# --- Lesson 08 --------------------------------------------------------------------------------


@_check("Exercise 08.1 (a causal mask)")
def check_causal_mask(exercise, causal_mask) -> None:
    for length in (4, 7, 1):
        mask = causal_mask(length)
        _require(isinstance(mask, torch.Tensor) and mask.dtype == torch.bool, exercise,
                 "return a tensor of dtype torch.bool (True where a position may attend)")
        _require(tuple(mask.shape) == (length, length), exercise, f"causal_mask({length}) should have shape ({length}, {length}), not {tuple(mask.shape)}")
        expected = torch.ones(length, length, dtype=torch.bool).tril()
        if torch.equal(mask, expected):
            continue
        if torch.equal(mask, ~expected):
            _fail(exercise, "True must mean 'may attend', as F.scaled_dot_product_attention reads a boolean mask; yours marks the blocked positions")
        if torch.equal(mask, expected.T):
            _fail(exercise, "your mask lets each position see the ones after it: a causal model may only look back")
        if torch.equal(mask, expected.tril(diagonal=-1)):
            _fail(exercise, "each position must also see itself; with your mask the first position has nothing to attend to")
        _fail(exercise, f"row i should allow positions 0..i and nothing after; for length {length} yours is\n{mask.int()}")
    _verdict(True, exercise, "")


@_check("Exercise 08.2 (sinusoidal position encodings)")
def check_sinusoidal(exercise, sinusoidal) -> None:
    from helpers.transformer import sinusoidal_positions

    length, d = 30, 16
    result = sinusoidal(length, d)
    _require(isinstance(result, torch.Tensor) and tuple(result.shape) == (length, d), exercise,
             f"sinusoidal({length}, {d}) should return a tensor of shape ({length}, {d}), one row per position")
    result = result.double()
    expected = sinusoidal_positions(length, d).double()

    def close(candidate):
        return (result - candidate).abs().max().item() < 1e-5

    if close(expected):
        other = sinusoidal(7, 64)
        _verdict(isinstance(other, torch.Tensor) and tuple(other.shape) == (7, 64)
                 and (other.double() - sinusoidal_positions(7, 64).double()).abs().max().item() < 1e-5, exercise,
                 "right for d_model = 16 but not for d_model = 64: the formula's d is the d_model argument")
        return
    pairs = expected.view(length, d // 2, 2)
    if close(pairs.flip(-1).reshape(length, d)):
        _fail(exercise, "sine and cosine are swapped: the even columns (0, 2, ...) hold the sines, the odd ones the cosines")
    if close(torch.cat([pairs[..., 0], pairs[..., 1]], dim=1)):
        _fail(exercise, "the sine and cosine of one frequency sit side by side (columns 2i and 2i + 1), not in two halves")
    position = torch.arange(length, dtype=torch.float64)[:, None]
    own = position / 10000 ** (torch.arange(d, dtype=torch.float64) / d)
    if close(torch.where(torch.arange(d) % 2 == 0, own.sin(), own.cos())):
        _fail(exercise, "columns 2i and 2i + 1 must share one frequency; yours gives every column a frequency of its own")
    half = position / 10000 ** (torch.arange(0, d // 2, dtype=torch.float64)[None, :] / d)
    if close(torch.stack([half.sin(), half.cos()], dim=-1).reshape(length, d)):
        _fail(exercise, "your frequencies fall too slowly from column to column: compare your exponent with the formula in section 4")
    if (result[0] - expected[0]).abs().max().item() > 1e-5:
        _fail(exercise, "row 0 (position 0) should be sin(0) = 0 in the even columns and cos(0) = 1 in the odd ones")
    _fail(exercise, f"the values differ from the formula (largest difference {(result - expected).abs().max():.3g}); check the frequency of pair i")


@_check("Exercise 08.3 (attention with a padding mask)")
def check_masked_attention(exercise, masked_attention) -> None:
    generator = torch.Generator().manual_seed(8)
    q, k, v = (torch.randn(3, 6, 8, generator=generator, dtype=torch.float64) for _ in range(3))
    padding = torch.arange(6)[None, :] >= torch.tensor([6, 4, 2])[:, None]  # True at padding
    result = masked_attention(q, k, v, padding)
    _require(isinstance(result, torch.Tensor) and result.shape == q.shape, exercise,
             f"return the output only, a tensor of shape {tuple(q.shape)} (batch, length, size of a value)")
    result = result.double()

    def sdpa(mask, scale=None):
        return torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)

    def close(candidate):
        return torch.allclose(result, candidate, rtol=0, atol=1e-9, equal_nan=True)

    keys = ~padding[:, None, :]
    flipped = (q @ k.transpose(-2, -1) / 8**0.5).masked_fill(~padding[:, None, :], float("-inf")).softmax(-1) @ v
    if close(flipped):
        _fail(exercise, "the mask is flipped: padding_mask is True at padding, and those are the keys to hide")
    _require(not torch.isnan(result).any(), exercise,
             "the output holds NaN: a row whose every score is -inf has no softmax. Hide keys (columns of the score matrix), not queries")
    if close(sdpa(keys)):
        _verdict(True, exercise, "")
        return
    if close(sdpa(None)):
        _fail(exercise, "the padded keys still receive weight: the padding mask is not applied")
    if close(sdpa(keys, scale=1.0)) or close(sdpa(keys, scale=1 / 8)):
        _fail(exercise, "the scores are scaled wrongly: look again at what section 5 divides them by, and why")
    scores = (q @ k.transpose(-2, -1) / 8**0.5).masked_fill(~keys, 0.0)
    if close(scores.softmax(-1) @ v):
        _fail(exercise, "a score set to 0 is not ignored: softmax still gives it weight. A hidden key needs a weight of exactly 0")
    _fail(exercise, "the output differs from F.scaled_dot_product_attention with the padded keys hidden")


# --- Lessons 09 and 10 -------------------------------------------------------------------------


@_check("Exercise 10.1 (warm-up then linear decay)")
def check_warmup_then_linear(exercise, warmup_then_linear) -> None:
    from transformers import get_linear_schedule_with_warmup

    for warmup, total in ((10, 100), (0, 20), (3, 7)):
        optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
        schedule = get_linear_schedule_with_warmup(optimizer, warmup, total)
        for step in range(total + 4):  # past the last step too: the factor stays at 0
            expected, got = schedule.lr_lambdas[0](step), warmup_then_linear(step, warmup, total)
            _require(isinstance(got, (int, float)) and not isinstance(got, bool), exercise, f"return a number, not {type(got).__name__}")
            if abs(got - expected) < 1e-9:
                continue
            if step < warmup and abs(got - (step + 1) / warmup) < 1e-9:
                _fail(exercise, f"at step {step} of a {warmup}-step warm-up the factor is {expected:.3g}: step 0 starts from 0, not 1/{warmup}")
            if step >= total and got < 0:
                _fail(exercise, f"the factor went negative ({got:.3g}) after the last step: it stops at 0")
            phase = "warm-up" if step < warmup else "decay"
            _fail(exercise, f"warmup_steps={warmup}, total_steps={total}: at step {step} ({phase}) the factor is {expected:.4g}, yours {got:.4g}")
    _verdict(True, exercise, "")


@_check("Exercise 09.1 (the 80/10/10 rule)")
def check_apply_80_10_10(exercise, apply_80_10_10) -> None:
    generator = torch.Generator().manual_seed(9)
    ids = torch.randint(5, 100, (6, 20), generator=generator)
    chosen = torch.rand(6, 20, generator=generator) < 0.3
    draws = torch.rand(6, 20, generator=generator)
    draws[0, :4] = torch.tensor([0.8, 0.9, 0.7999, 0.8999])  # the edges of the three ranges
    chosen[0, :4] = True
    random_ids = torch.randint(5, 100, (6, 20), generator=generator)
    original = ids.clone()
    result = apply_80_10_10(ids, chosen, draws, random_ids, 4)
    _require(torch.equal(ids, original), exercise, "ids was changed in place: work on a copy (ids.clone())")
    _require(isinstance(result, torch.Tensor) and result.shape == ids.shape, exercise, f"return a tensor of shape {tuple(ids.shape)}")
    expected = ids.clone()
    expected[chosen & (draws < 0.8)] = 4
    swap = chosen & (draws >= 0.8) & (draws < 0.9)
    expected[swap] = random_ids[swap]
    if torch.equal(result, expected):
        _verdict(True, exercise, "")
        return
    _require(torch.equal(result[~chosen], ids[~chosen]), exercise, "a position that was not chosen changed: the rule applies to chosen positions only")
    wrong = (result != expected).nonzero()[0].tolist()
    _fail(exercise, f"at position {wrong} (draw {draws[tuple(wrong)]:.4f}, chosen) expected {expected[tuple(wrong)].item()}, "
          f"got {result[tuple(wrong)].item()}: below 0.8 -> mask_id, 0.8 up to 0.9 -> the random id, else unchanged")


@_check("Exercise 09.2 (the frequency-only guess)")
def check_frequency_cross_entropy(exercise, frequency_cross_entropy) -> None:
    generator = torch.Generator().manual_seed(3)
    vocab_size = 40

    def rows(n):  # [CLS]=2 first and [SEP]=3 last, as lm.encode gives them; tokens 5..39, skewed towards small ids
        return [[2] + (torch.rand(int(torch.randint(3, 12, (1,), generator=generator)), generator=generator) ** 2 * 35 + 5).long().tolist() + [3]
                for _ in range(n)]

    train_rows, held_rows = rows(200), rows(50)
    held_rows[0][1] = 4  # a token that never occurs in train_rows: only smoothing gives it a probability
    counts = Counter(t for r in train_rows for t in r[1:-1])
    total = sum(counts.values())
    held = [t for r in held_rows for t in r[1:-1]]
    expected = -sum(math.log((counts[t] + 1) / (total + vocab_size)) for t in held) / len(held)
    got = frequency_cross_entropy(train_rows, held_rows, vocab_size)
    _require(isinstance(got, (int, float)) and not isinstance(got, bool), exercise, f"return a number, not {type(got).__name__}")
    if abs(got - expected) < 1e-6:
        _verdict(True, exercise, "")
        return
    _require(math.isfinite(got), exercise, "a held-out token never seen in training got probability 0: add one to every count (and the "
             "vocabulary size to the total)")
    _require(abs(got * math.log(2) - expected) > 1e-6, exercise, "that is in bits (log2): use the natural logarithm, as cross_entropy does")
    with_special = Counter(t for r in train_rows for t in r)
    special_total = sum(with_special.values())
    held_all = [t for r in held_rows for t in r]
    counted_special = -sum(math.log((with_special[t] + 1) / (special_total + vocab_size)) for t in held_all) / len(held_all)
    _require(abs(got - counted_special) > 1e-6, exercise, "[CLS] and [SEP] were counted: leave out the first and last id of every row")
    _fail(exercise, f"the cross-entropy should be {expected:.4f} nats per held-out token, yours {got:.4f}")


@_check("Exercise 10.2 (AdamW's state in bytes)")
def check_adamw_state_bytes(exercise, adamw_state_bytes) -> None:
    def measured(model):
        trained = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(trained, lr=1e-3)
        sum(p.sum() for p in trained).backward()
        optimizer.step()
        return sum(v.numel() * v.element_size() for s in optimizer.state.values() for v in s.values() if torch.is_tensor(v))

    torch.manual_seed(0)
    cases = {"a linear layer": torch.nn.Linear(10, 3), "a float64 network": torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 2)).double()}
    frozen = torch.nn.Sequential(torch.nn.Embedding(50, 8), torch.nn.Linear(8, 2))
    frozen[0].weight.requires_grad_(False)
    cases["a network with a frozen embedding"] = frozen
    for name, model in cases.items():
        expected, got = measured(model), adamw_state_bytes(model)
        if got == expected:
            continue
        everything = sum(2 * p.numel() * p.element_size() + 4 for p in model.parameters())
        if got == everything:
            _fail(exercise, f"{name}: frozen parameters (requires_grad False) get no optimiser state")
        if got == expected - 4 * len([p for p in model.parameters() if p.requires_grad]):
            _fail(exercise, f"{name}: nearly: AdamW also keeps a 'step' counter per parameter tensor, a float32 scalar")
        _fail(exercise, f"{name}: optimizer.state holds {expected:,} bytes, you computed {got:,}")
    _verdict(True, exercise, "")
