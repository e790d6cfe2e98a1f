"""Each exercise check accepts a right answer and names the typical mistakes."""

import math
import inspect
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from PIL import Image
from torch.utils.data import Dataset

from helpers import exercises

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples"


@pytest.fixture(scope="module")
def images():
    generator = torch.Generator().manual_seed(0)
    data = (torch.rand(50, 28, 28, generator=generator) ** 3 * 255).to(torch.uint8)
    data[:, :5] = 0
    targets = torch.arange(50) % 10
    data[targets == 3] = data[targets == 3] // 2 + 120  # class 3 is the brightest
    data[targets == 6] = data[targets == 6] // 8  # class 6 the darkest
    return SimpleNamespace(data=data, targets=targets, classes=[f"class {c}" for c in range(10)])


def test_zero_fraction(images, capsys):
    right = (images.data == 0).sum().item() / images.data.numel()
    exercises.check_zero_fraction(images, right)
    assert "correct" in capsys.readouterr().out
    for wrong, hint in [(100 * right, "percentage"), (1 - right, "not"), (torch.tensor(right), "Python float"), (right + 0.01, "which pixels in `dataset.data` count")]:
        with pytest.raises(AssertionError, match=hint):
            exercises.check_zero_fraction(images, wrong)


def test_brightest_class(images, capsys):
    exercises.check_brightest_class(images, "class 3")
    assert "correct" in capsys.readouterr().out
    for wrong, hint in [("class 6", "darkest"), (3, "class name"), ("class 0", "one mean pixel value per class")]:
        with pytest.raises(AssertionError, match=hint):
            exercises.check_brightest_class(images, wrong)


def test_normalisation(images, capsys):
    pixels = images.data.double() / 255
    exercises.check_normalisation(images, pixels.mean().item(), pixels.std().item())
    assert "correct" in capsys.readouterr().out
    per_image = pixels.flatten(1).std(dim=1).mean().item()
    for mean, std, hint in [
        (pixels.mean().item() * 255, pixels.std().item() * 255, "divide by 255"),
        (pixels.mean().item(), per_image, "per-image"),
        (pixels.mean(), pixels.std(), "Python float"),
        (pixels.mean().item() + 0.01, pixels.std().item(), "every training pixel"),
    ]:
        with pytest.raises(AssertionError, match=hint):
            exercises.check_normalisation(images, mean, std)


@pytest.fixture(scope="module")
def class_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("by-class")
    for line in (SAMPLES / "digits-png" / "labels.csv").read_text(encoding="utf-8").splitlines()[1:15]:
        name, label = line.split(",")
        (root / label).mkdir(exist_ok=True)
        shutil.copy(SAMPLES / "digits-png" / name, root / label / Path(name).name)
    return root


class RightFolders(Dataset):
    def __init__(self, root, transform=None):
        self.transform = transform
        self.samples = sorted((p, int(p.parent.name)) for p in Path(root).glob("*/*.png"))

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, index):
        path, label = self.samples[index]
        image = Image.open(path).convert("L")
        return (self.transform(image) if self.transform else image), label


class StringLabels(RightFolders):
    def __getitem__(self, index):
        image, label = super().__getitem__(index)
        return image, str(label)


class Unsorted(RightFolders):
    def __init__(self, root, transform=None):
        super().__init__(root, transform)
        self.samples = self.samples[::-1]


class IgnoresTransform(RightFolders):
    def __init__(self, root, transform=None):
        super().__init__(root, None)


def test_class_folders(class_root, capsys):
    exercises.check_class_folders(RightFolders, class_root)
    assert "correct" in capsys.readouterr().out
    for wrong, hint in [(StringLabels, "int"), (Unsorted, "sort"), (IgnoresTransform, "transform")]:
        with pytest.raises(AssertionError, match=hint):
            exercises.check_class_folders(wrong, class_root)


def right_split(labels, fraction, generator):
    train, val = [], []
    for c in labels.unique().tolist():
        members = (labels == c).nonzero().flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        n = round(fraction * len(members))
        val += members[:n].tolist()
        train += members[n:].tolist()
    return train, val


def test_stratified_split(capsys):
    labels = torch.tensor([0] * 40 + [1] * 25 + [2] * 11)
    exercises.check_stratified_split(right_split, labels)
    assert "correct" in capsys.readouterr().out

    def unstratified(labels, fraction, generator):
        order = torch.randperm(len(labels), generator=generator).tolist()
        n = round(fraction * len(labels))
        return order[n:], order[:n]

    def not_random(labels, fraction, generator):
        return right_split(labels, fraction, torch.Generator().manual_seed(0))

    def overlapping(labels, fraction, generator):
        train, val = right_split(labels, fraction, generator)
        return train + val[:1], val

    for wrong, hint in [(unstratified, "class"), (not_random, "different seed"), (overlapping, "both parts")]:
        with pytest.raises(AssertionError, match=hint):
            exercises.check_stratified_split(wrong, labels)


def test_conv_arithmetic(capsys):
    exercises.check_conv_arithmetic(14, 16 * 25 + 16)
    assert "correct" in capsys.readouterr().out
    for (size, params), hint in [((12, 416), "padding"), ((15, 416), "floor"), ((14, 400), "bias")]:
        with pytest.raises(AssertionError, match=hint):
            exercises.check_conv_arithmetic(size, params)


def test_top_k_accuracy(capsys):
    def right(logits, targets, k):
        return (logits.topk(k, dim=1).indices == targets.unsqueeze(1)).any(dim=1).float().mean().item()

    exercises.check_top_k_accuracy(right)
    assert "correct" in capsys.readouterr().out
    for wrong, hint in [
        (lambda logits, targets, k: torch.tensor(right(logits, targets, k)), "Python float"),
        (lambda logits, targets, k: right(logits, targets, 1), "k=3"),
        (lambda logits, targets, k: right(-logits, targets, k), "k = 1"),
    ]:
        with pytest.raises(AssertionError, match=hint):
            exercises.check_top_k_accuracy(wrong)


def test_most_confused(capsys):
    confusion = torch.diag(torch.full((10,), 50))
    confusion[4, 9], confusion[9, 4] = 6, 5  # 11 both ways
    confusion[3, 5] = 8  # the largest one way
    exercises.check_most_confused(confusion, (4, 9))
    assert "correct" in capsys.readouterr().out
    for wrong, hint in [((3, 5), "one direction"), ([4, 9], "tuple"), ((0, 0), "diagonal")]:
        with pytest.raises(AssertionError, match=hint):
            exercises.check_most_confused(confusion, wrong)


def test_bce_with_logits_grad(capsys):
    exercises.check_bce_with_logits_grad(lambda z, y: (torch.sigmoid(z) - y) / len(z))
    assert "correct" in capsys.readouterr().out
    sigma = torch.sigmoid
    for wrong, hint in [
        (lambda z, y: sigma(z) - y, "divide by N"),
        (lambda z, y: (y - sigma(z)) / len(z), "sign"),
        (lambda z, y: (sigma(z) - y) * sigma(z) * (1 - sigma(z)) / len(z), "cancels"),
        (lambda z, y: (sigma(z) - y).mean(), "shape"),
        (lambda z, y: (z - y) / len(z), "differentiate"),
    ]:
        with pytest.raises(AssertionError, match=hint):
            exercises.check_bce_with_logits_grad(wrong)


def test_tanh_layer_backward(capsys):
    def right(X, W, b, G):
        delta = G * (1 - torch.tanh(X @ W.T + b) ** 2)
        return delta @ W, delta.T @ X, delta.sum(dim=0)

    exercises.check_tanh_layer_backward(right)
    assert "correct" in capsys.readouterr().out
    for wrong, hint in [
        (lambda X, W, b, G: (G @ W, G.T @ X, G.sum(0)), "derivative"),
        (lambda X, W, b, G: right(X, W, b, G)[:2], "tuple of three"),
        (lambda X, W, b, G: (right(X, W, b, G)[0], right(X, W, b, G)[1].T, right(X, W, b, G)[2]), "shape"),
        (lambda X, W, b, G: (right(X, W, b, G)[0], right(X, W, b, G)[1], 2 * right(X, W, b, G)[2]), "dL/db differs"),
    ]:
        with pytest.raises(AssertionError, match=hint):
            exercises.check_tanh_layer_backward(wrong)


def test_avg_pool_backward(capsys):
    def right(G, k):
        return G.repeat_interleave(k, dim=2).repeat_interleave(k, dim=3) / k**2

    def corner_only(G, k):  # routes everything to one pixel per window, as max pooling would
        grad = torch.zeros(*G.shape[:2], G.shape[2] * k, G.shape[3] * k, dtype=G.dtype)
        grad[..., ::k, ::k] = G
        return grad

    exercises.check_avg_pool_backward(right)
    assert "correct" in capsys.readouterr().out
    for wrong, hint in [
        (lambda G, k: right(G, k) * k**2, "divide by k"),
        (lambda G, k: G / k**2, "shape"),
        (corner_only, "repeat_interleave"),
    ]:
        with pytest.raises(AssertionError, match=hint):
            exercises.check_avg_pool_backward(wrong)


def test_nesterov_step(capsys):
    def right(p, g, buffer, lr, momentum):
        buffer = g.clone() if buffer is None else momentum * buffer + g
        return p - lr * (g + momentum * buffer), buffer

    def plain_momentum(p, g, buffer, lr, momentum):
        buffer = g.clone() if buffer is None else momentum * buffer + g
        return p - lr * buffer, buffer

    def zero_start(p, g, buffer, lr, momentum):  # momentum * 0 + g = g: the same as starting at g
        return right(p, g, torch.zeros_like(g) if buffer is None else buffer, lr, momentum)

    def dampened(p, g, buffer, lr, momentum):
        buffer = (1 - momentum) * g if buffer is None else momentum * buffer + (1 - momentum) * g
        return p - lr * (g + momentum * buffer), buffer

    exercises.check_nesterov_step(right)
    assert "correct" in capsys.readouterr().out
    for wrong, hint in [(plain_momentum, "plain momentum"), (dampened, "first step"), (lambda *args: right(*args)[0], "tuple")]:
        with pytest.raises(AssertionError, match=hint):
            exercises.check_nesterov_step(wrong)
    exercises.check_nesterov_step(zero_start)
    assert "correct" in capsys.readouterr().out


def test_warmup_cosine(capsys):
    import math

    def right(t, base_lr, warmup, total):
        if t < warmup:
            return base_lr * (0.1 + 0.9 * t / warmup)
        return base_lr * 0.5 * (1 + math.cos(math.pi * (t - warmup) / (total - warmup)))

    exercises.check_warmup_cosine(right)
    assert "correct" in capsys.readouterr().out
    for wrong, hint in [
        (lambda t, b, w, T: b * t / w if t < w else right(t, b, w, T), "during the warm-up"),
        (lambda t, b, w, T: right(t, b, w, T) if t < w else b * 0.5 * (1 + math.cos(math.pi * t / T)), "after the warm-up"),
        (lambda t, b, w, T: torch.tensor(right(t, b, w, T)), "finite number"),
    ]:
        with pytest.raises(AssertionError, match=hint):
            exercises.check_warmup_cosine(wrong)


def test_kaiming_conv(capsys):
    import math

    exercises.check_kaiming_conv(144, math.sqrt(2 / 144))
    assert "correct" in capsys.readouterr().out
    for (fan_in, std), hint in [
        ((16, math.sqrt(2 / 16)), "in_channels x kernel"),
        ((288, math.sqrt(2 / 288)), "fan-out"),
        ((144, 2 / 144), "square root"),
        ((144, math.sqrt(1 / 144)), "half of its inputs"),
        ((144, torch.tensor(math.sqrt(2 / 144))), "Python float"),
    ]:
        with pytest.raises(AssertionError, match=hint):
            exercises.check_kaiming_conv(fan_in, std)


def test_freeze_all_but_last_stage(capsys):
    def right(model):
        for name, p in model.named_parameters():
            p.requires_grad_(name.startswith(("layer4.", "fc.")))
        return sum(p.numel() for p in model.parameters() if p.requires_grad)

    def head_only(model):
        for name, p in model.named_parameters():
            p.requires_grad_(name.startswith("fc."))
        return sum(p.numel() for p in model.parameters() if p.requires_grad)

    def forgot_head(model):
        for name, p in model.named_parameters():
            p.requires_grad_(name.startswith("layer4."))
        return 0

    def counts_all(model):
        right(model)
        return sum(p.numel() for p in model.parameters())

    exercises.check_freeze_all_but_last_stage(right)
    assert "correct" in capsys.readouterr().out
    for wrong, hint in [(head_only, "keep `layer4`"), (forgot_head, "head `fc`"), (counts_all, "counts all"), (lambda m: right(m) - 1, "numbers, not tensors")]:
        with pytest.raises(AssertionError, match=hint):
            exercises.check_freeze_all_but_last_stage(wrong)


def test_layerwise_groups(capsys):
    order = [("fc",), ("layer4",), ("layer3",), ("layer2",), ("layer1",), ("conv1", "bn1")]

    def right(model, head_lr, decay):
        return [{"params": [p for n, p in model.named_parameters() if n.split(".")[0] in prefixes], "lr": head_lr * decay**depth}
                for depth, prefixes in enumerate(order)]

    def no_stem(model, head_lr, decay):
        return right(model, head_lr, decay)[:-1]

    def twice(model, head_lr, decay):
        groups = right(model, head_lr, decay)
        groups[0]["params"] = groups[0]["params"] + groups[1]["params"]
        return groups

    def flat(model, head_lr, decay):
        return [{"params": list(model.parameters()), "lr": head_lr}]

    exercises.check_layerwise_groups(right)
    assert "correct" in capsys.readouterr().out
    for wrong, hint in [(no_stem, "in no group"), (twice, "two groups"), (flat, "stages conv1 lies below the head"), (lambda *a: {"lr": 1}, "list of dicts")]:
        with pytest.raises(AssertionError, match=hint):
            exercises.check_layerwise_groups(wrong)


def _occlusion(model, x, target, patch, fill, *, evaluate=True, sign=1.0, transpose=False):
    if evaluate:
        model.eval()
    rows, columns = x.shape[-2] // patch, x.shape[-1] // patch
    drops = torch.empty(rows, columns, dtype=x.dtype)
    with torch.no_grad():
        original = model(x).softmax(dim=1)[0, target]
        for i in range(rows):
            for j in range(columns):
                covered = x.clone()
                covered[..., i * patch : (i + 1) * patch, j * patch : (j + 1) * patch] = fill
                drops[i, j] = sign * (original - model(covered).softmax(dim=1)[0, target])
    return drops.T if transpose else drops


def test_occlusion(capsys):
    exercises.check_occlusion(_occlusion)
    assert "correct" in capsys.readouterr().out

    def covered_only(model, x, target, patch, fill):  # the covered probability instead of its drop
        with torch.no_grad():
            original = model.eval()(x).softmax(dim=1)[0, target]
        return original - _occlusion(model, x, target, patch, fill)

    cases = [
        (lambda *a: _occlusion(*a, sign=-1.0), "sign is reversed"),
        (lambda *a: _occlusion(*a, transpose=True), "swapped"),
        (covered_only, "probability with the square covered"),
        (lambda *a: _occlusion(*a, evaluate=False), "evaluation mode"),
        (lambda *a: _occlusion(*a)[:1], "one value per position"),
    ]
    for wrong, hint in cases:
        with pytest.raises(AssertionError, match=hint):
            exercises.check_occlusion(wrong)


def _integrated_gradients(model, x, target, steps, *, ks=None, multiply=True, average=True):
    model.eval()
    ks = range(1, steps + 1) if ks is None else ks
    path = torch.stack([k / steps * x[0] for k in ks]).requires_grad_(True)
    (gradients,) = torch.autograd.grad(model(path)[:, target].sum(), path)
    gradient = gradients.mean(dim=0, keepdim=True) if average else gradients.sum(dim=0, keepdim=True)
    return x * gradient if multiply else gradient


def test_integrated_gradients(capsys):
    exercises.check_integrated_gradients(_integrated_gradients)
    out = capsys.readouterr().out
    assert "correct" in out and "add up to" in out

    def probability_score(model, x, target, steps):
        model.eval()
        path = torch.stack([k / steps * x[0] for k in range(1, steps + 1)]).requires_grad_(True)
        (gradients,) = torch.autograd.grad(model(path).softmax(dim=1)[:, target].sum(), path)
        return x * gradients.mean(dim=0, keepdim=True)

    cases = [
        (lambda *a: _integrated_gradients(*a, multiply=False), "multiply it by"),
        (lambda *a: _integrated_gradients(*a, average=False), "times too large"),
        (lambda m, x, t, s: _integrated_gradients(m, x, t, s, ks=range(0, s)), "right Riemann sum"),
        (probability_score, "logit"),
        (lambda m, x, t, s: x[0], "image's shape"),
    ]
    for wrong, hint in cases:
        with pytest.raises(AssertionError, match=hint):
            exercises.check_integrated_gradients(wrong)


def test_linear_scaling(capsys):
    exercises.check_linear_scaling(512, 0.2)
    assert "correct" in capsys.readouterr().out
    for (batch, lr), hint in [((128, 0.05), "all 4 GPUs"), ((512, 0.4), "scales by the number of GPUs"), ((512, 0.1), "grow by the same factor"),
                               ((256, 0.1), "count the images")]:
        with pytest.raises(AssertionError, match=hint):
            exercises.check_linear_scaling(batch, lr)


def test_accumulated_step(capsys):
    import torch.nn.functional as F

    def right(model, optimizer, x, y, k):
        optimizer.zero_grad()
        for xm, ym in zip(x.chunk(k), y.chunk(k)):
            (F.cross_entropy(model(xm), ym) / k).backward()
        optimizer.step()

    def not_divided(model, optimizer, x, y, k):
        optimizer.zero_grad()
        for xm, ym in zip(x.chunk(k), y.chunk(k)):
            F.cross_entropy(model(xm), ym).backward()
        optimizer.step()

    def stale(model, optimizer, x, y, k):
        for xm, ym in zip(x.chunk(k), y.chunk(k)):
            (F.cross_entropy(model(xm), ym) / k).backward()
        optimizer.step()

    def step_each(model, optimizer, x, y, k):
        for xm, ym in zip(x.chunk(k), y.chunk(k)):
            optimizer.zero_grad()
            F.cross_entropy(model(xm), ym).backward()
            optimizer.step()

    exercises.check_accumulated_step(right)
    assert "correct" in capsys.readouterr().out
    for wrong, hint in [(not_divided, "times too large"), (stale, "zero_grad"), (step_each, "differs from one step")]:
        with pytest.raises(AssertionError, match=hint):
            exercises.check_accumulated_step(wrong)


def test_a_check_says_not_done_yet_to_a_todo_or_an_unwritten_function(capsys):
    def unwritten(z, y):
        raise NotImplementedError("Exercise 03.1: write bce_with_logits_grad() here")

    exercises.check_kaiming_conv(exercises.TODO, exercises.TODO)
    exercises.check_bce_with_logits_grad(unwritten)
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        f"{exercises.check_kaiming_conv.title}: not done yet. Replace the TODO in the cell above with your answer and run the cell again.",
        f"{exercises.check_bce_with_logits_grad.title}: not done yet. Replace the TODO in the cell above with your answer and run the cell again.",
    ]
    with pytest.raises(AssertionError, match="not yet"):  # a real wrong answer still fails
        exercises.check_kaiming_conv(16, 0.1)
    assert list(inspect.signature(exercises.check_kaiming_conv).parameters) == ["fan_in", "kaiming_std"]


# --- Lesson 08 --------------------------------------------------------------------------------


def test_causal_mask(capsys):
    exercises.check_causal_mask(lambda n: torch.ones(n, n, dtype=torch.bool).tril())
    assert "correct" in capsys.readouterr().out
    for wrong, hint in [
        (lambda n: ~torch.ones(n, n, dtype=torch.bool).tril(), "blocked positions"),
        (lambda n: torch.ones(n, n, dtype=torch.bool).triu(), "after it"),
        (lambda n: torch.ones(n, n, dtype=torch.bool).tril(diagonal=-1), "see itself"),
        (lambda n: torch.ones(n, n).tril(), "torch.bool"),
        (lambda n: torch.ones(n, n + 1, dtype=torch.bool).tril(), "shape"),
    ]:
        with pytest.raises(AssertionError, match=hint):
            exercises.check_causal_mask(wrong)


def test_sinusoidal(capsys):
    from helpers.transformer import sinusoidal_positions

    exercises.check_sinusoidal(sinusoidal_positions)
    assert "correct" in capsys.readouterr().out

    def pairs(length, d):
        return sinusoidal_positions(length, d).view(length, d // 2, 2)

    def own_frequency(length, d):
        angle = torch.arange(length)[:, None] / 10000 ** (torch.arange(d) / d)
        return torch.where(torch.arange(d) % 2 == 0, angle.sin(), angle.cos())

    def slow_exponent(length, d):
        angle = torch.arange(length)[:, None] / 10000 ** (torch.arange(d // 2) / d)
        return torch.stack([angle.sin(), angle.cos()], dim=-1).reshape(length, d)

    def fixed_size(length, d):
        return sinusoidal_positions(length, 16)[:, :d] if d <= 16 else torch.zeros(length, d)

    for wrong, hint in [
        (lambda n, d: pairs(n, d).flip(-1).reshape(n, d), "swapped"),
        (lambda n, d: torch.cat([pairs(n, d)[..., 0], pairs(n, d)[..., 1]], dim=1), "two halves"),
        (own_frequency, "share one frequency"),
        (slow_exponent, "fall too slowly"),
        (lambda n, d: sinusoidal_positions(n, d).T, "shape"),
        (fixed_size, "d_model = 64"),
    ]:
        with pytest.raises(AssertionError, match=hint):
            exercises.check_sinusoidal(wrong)


def test_masked_attention(capsys):
    import math

    def attend(q, k, v, hide, scale=None, fill=float("-inf")):
        scores = q @ k.transpose(-2, -1) / (math.sqrt(q.shape[-1]) if scale is None else scale)
        if hide is not None:
            scores = scores.masked_fill(hide, fill)
        return scores.softmax(dim=-1) @ v

    exercises.check_masked_attention(lambda q, k, v, pad: attend(q, k, v, pad[:, None, :]))
    assert "correct" in capsys.readouterr().out
    for wrong, hint in [
        (lambda q, k, v, pad: attend(q, k, v, None), "still receive weight"),
        (lambda q, k, v, pad: attend(q, k, v, ~pad[:, None, :]), "flipped"),
        (lambda q, k, v, pad: attend(q, k, v, pad[:, None, :], scale=1.0), "scaled wrongly"),
        (lambda q, k, v, pad: attend(q, k, v, pad[:, None, :], scale=q.shape[-1]), "scaled wrongly"),
        (lambda q, k, v, pad: attend(q, k, v, pad[:, None, :], fill=0.0), "not ignored"),
        (lambda q, k, v, pad: attend(q, k, v, pad[:, :, None]), "NaN"),
        (lambda q, k, v, pad: (attend(q, k, v, pad[:, None, :]), None), "output only"),
    ]:
        with pytest.raises(AssertionError, match=hint):
            exercises.check_masked_attention(wrong)


def test_warmup_then_linear(capsys):
    def right(step, warmup, total):
        return step / warmup if step < warmup else max(0.0, (total - step) / max(1, total - warmup))

    exercises.check_warmup_then_linear(right)
    assert "correct" in capsys.readouterr().out
    for wrong, hint in [
        (lambda s, w, t: (s + 1) / w if s < w else max(0.0, (t - s) / max(1, t - w)), "starts from 0"),
        (lambda s, w, t: s / w if s < w else (t - s) / max(1, t - w) - 0.01, "at step"),
        (lambda s, w, t: min(1.0, s / w) if w else 1.0, "decay"),
        (lambda s, w, t: s / w if s < w else (t - s) / max(1, t - w), "went negative"),  # no max(0, ...) after the last step
        (lambda s, w, t: torch.tensor(right(s, w, t)), "return a number"),
    ]:
        with pytest.raises(AssertionError, match=hint):
            exercises.check_warmup_then_linear(wrong)


def test_apply_80_10_10(capsys):
    def right(ids, chosen, draws, random_ids, mask_id):
        out = ids.clone()
        out[chosen & (draws < 0.8)] = mask_id
        swap = chosen & (draws >= 0.8) & (draws < 0.9)
        out[swap] = random_ids[swap]
        return out

    exercises.check_apply_80_10_10(right)
    assert "correct" in capsys.readouterr().out

    def in_place(ids, chosen, draws, random_ids, mask_id):
        ids[chosen & (draws < 0.8)] = mask_id
        return ids

    for wrong, hint in [
        (in_place, "in place"),
        (lambda i, c, d, r, m: torch.where(d < 0.8, m, i), "not chosen"),
        (lambda i, c, d, r, m: torch.where(c & (d < 0.8), m, i), "0.8 up to 0.9"),
        (lambda i, c, d, r, m: torch.where(c & (d <= 0.8), m, torch.where(c & (d > 0.8) & (d <= 0.9), r, i)), "position"),
    ]:
        with pytest.raises(AssertionError, match=hint):
            exercises.check_apply_80_10_10(wrong)


def test_adamw_state_bytes(capsys):
    exercises.check_adamw_state_bytes(lambda m: sum(2 * p.numel() * p.element_size() + 4 for p in m.parameters() if p.requires_grad))
    assert "correct" in capsys.readouterr().out
    for wrong, hint in [
        (lambda m: sum(2 * p.numel() * p.element_size() + 4 for p in m.parameters()), "frozen"),
        (lambda m: sum(2 * p.numel() * p.element_size() for p in m.parameters() if p.requires_grad), "step"),
        (lambda m: sum(2 * p.numel() * 4 + 4 for p in m.parameters() if p.requires_grad), "float64 network"),
    ]:
        with pytest.raises(AssertionError, match=hint):
            exercises.check_adamw_state_bytes(wrong)


def test_frequency_cross_entropy(capsys):
    from collections import Counter

    def right(train_rows, held_rows, vocab_size):
        counts = Counter(t for r in train_rows for t in r[1:-1])
        total = sum(counts.values())
        held = [t for r in held_rows for t in r[1:-1]]
        return -sum(math.log((counts[t] + 1) / (total + vocab_size)) for t in held) / len(held)

    exercises.check_frequency_cross_entropy(right)
    assert "correct" in capsys.readouterr().out

    def unsmoothed(train_rows, held_rows, vocab_size):
        counts = Counter(t for r in train_rows for t in r[1:-1])
        total = sum(counts.values())
        held = [t for r in held_rows for t in r[1:-1]]
        return -sum(math.log(counts[t] / total) if counts[t] else -math.inf for t in held) / len(held)

    def with_special(train_rows, held_rows, vocab_size):
        return right([[0] + r + [0] for r in train_rows], [[0] + r + [0] for r in held_rows], vocab_size)

    for wrong, hint in [
        (unsmoothed, "add one"),
        (lambda t, h, v: right(t, h, v) / math.log(2), "bits"),
        (with_special, r"\[CLS\] and \[SEP\]"),
        (lambda t, h, v: right(t, h, v) + 0.1, "nats per held-out token"),
        (lambda t, h, v: torch.tensor(right(t, h, v)), "return a number"),
    ]:
        with pytest.raises(AssertionError, match=hint):
            exercises.check_frequency_cross_entropy(wrong)


def test_top_p_keep(capsys):
    def right(probabilities, p):
        ranked, order = probabilities.sort(descending=True)
        return torch.zeros_like(probabilities, dtype=torch.bool).scatter(0, order, ranked.cumsum(0) - ranked < p)

    exercises.check_top_p_keep(right)
    assert "correct" in capsys.readouterr().out

    def one_too_few(probabilities, p):  # only the tokens before the mass reaches p
        ranked, order = probabilities.sort(descending=True)
        keep = ranked.cumsum(0) < p
        keep[0] = True
        return torch.zeros_like(probabilities, dtype=torch.bool).scatter(0, order, keep)

    def unsorted(probabilities, p):  # adds them up in index order
        return (probabilities.cumsum(0) - probabilities) < p

    def argmax_only(probabilities, p):
        return torch.zeros_like(probabilities, dtype=torch.bool).scatter(0, probabilities.argmax()[None], True)

    for wrong, hint in [(one_too_few, "one token too few"), (unsorted, "most likely"), (argmax_only, "keep")]:
        with pytest.raises(AssertionError, match=hint):
            exercises.check_top_p_keep(wrong)


def test_trigram_held_out_loss(capsys):
    def counted(train_ids, V, smooth=1.0):
        counts = torch.full((V, V, V), smooth)
        counts.index_put_((train_ids[:-2], train_ids[1:-1], train_ids[2:]), torch.ones(len(train_ids) - 2), accumulate=True)
        return counts

    def right(train_ids, held_ids, V):
        counts = counted(train_ids, V)
        return -(counts / counts.sum(2, keepdim=True))[held_ids[:-2], held_ids[1:-1], held_ids[2:]].log().mean().item()

    exercises.check_trigram_held_out_loss(right)
    assert "correct" in capsys.readouterr().out

    def unsmoothed(train_ids, held_ids, V):
        counts = counted(train_ids, V, smooth=0.0)
        return -(counts / counts.sum(2, keepdim=True).clamp_min(1))[held_ids[:-2], held_ids[1:-1], held_ids[2:]].log().mean().item()

    def bigram(train_ids, held_ids, V):
        counts = torch.ones(V, V)
        counts.index_put_((train_ids[:-1], train_ids[1:]), torch.ones(len(train_ids) - 1), accumulate=True)
        return -(counts / counts.sum(1, keepdim=True))[held_ids[:-1], held_ids[1:]].log().mean().item()

    def wrong_axis(train_ids, held_ids, V):
        counts = counted(train_ids, V)
        return -(counts / counts.sum(0, keepdim=True))[held_ids[:-2], held_ids[1:-1], held_ids[2:]].log().mean().item()

    def summed(train_ids, held_ids, V):
        counts = counted(train_ids, V)
        return -(counts / counts.sum(2, keepdim=True))[held_ids[:-2], held_ids[1:-1], held_ids[2:]].log().sum().item()

    for wrong, hint in [(unsmoothed, "Add one"), (bigram, "bigram"), (wrong_axis, "next character"), (summed, "mean")]:
        with pytest.raises(AssertionError, match=hint):
            exercises.check_trigram_held_out_loss(wrong)


def test_attend_with_cache(capsys):
    def right(q, k, v, cache):
        cache["k"] = k if "k" not in cache else torch.cat([cache["k"], k])
        cache["v"] = v if "v" not in cache else torch.cat([cache["v"], v])
        return (q @ cache["k"].T / math.sqrt(q.shape[-1])).softmax(-1) @ cache["v"]

    exercises.check_attend_with_cache(right)
    assert "correct" in capsys.readouterr().out

    def unscaled(q, k, v, cache):
        cache["k"] = k if "k" not in cache else torch.cat([cache["k"], k])
        cache["v"] = v if "v" not in cache else torch.cat([cache["v"], v])
        return (q @ cache["k"].T).softmax(-1) @ cache["v"]

    def no_cache(q, k, v, cache):  # keeps only the newest key and value
        cache["k"], cache["v"] = k, v
        return (q @ k.T / math.sqrt(q.shape[-1])).softmax(-1) @ v

    def own_value(q, k, v, cache):
        cache["k"] = k if "k" not in cache else torch.cat([cache["k"], k])
        cache["v"] = v if "v" not in cache else torch.cat([cache["v"], v])
        return v

    for wrong, hint in [(unscaled, "not scaled"), (no_cache, "should hold"), (own_value, "new value alone")]:
        with pytest.raises(AssertionError, match=hint):
            exercises.check_attend_with_cache(wrong)


def test_top_p_keep_rejects_one_too_many_when_the_mass_reaches_p_exactly():
    def inclusive(probabilities, p):  # keeps a token whose predecessors' mass already equals p
        ranked, order = probabilities.sort(descending=True)
        return torch.zeros_like(probabilities, dtype=torch.bool).scatter(0, order, ranked.cumsum(0) - ranked <= p)

    with pytest.raises(AssertionError, match="one token too many"):
        exercises.check_top_p_keep(inclusive)


def test_attend_with_cache_names_a_cache_kept_as_a_list():
    def as_list(q, k, v, cache):
        cache.setdefault("k", []).append(k)
        cache.setdefault("v", []).append(v)
        keys, values = torch.cat(cache["k"]), torch.cat(cache["v"])
        return (q @ keys.T / math.sqrt(q.shape[-1])).softmax(-1) @ values

    with pytest.raises(AssertionError, match="as tensors"):
        exercises.check_attend_with_cache(as_list)
