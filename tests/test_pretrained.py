"""Lesson 05's pretrained ResNet-18: the weights API when possible, else the course's own, cached."""

import os
import re
import subprocess
import sys
import urllib.error
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from helpers import pretrained


def test_to_inputs_pads_normalises_and_repeats():
    images = torch.full((2, 28, 28), 255, dtype=torch.uint8)
    x = pretrained.to_inputs(images, mean=0.5, std=0.25)
    assert x.shape == (2, 3, 32, 32)
    assert torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 1], x[:, 2])
    assert x[0, 0, 0, 0] == (0 - 0.5) / 0.25 and x[0, 0, 2, 2] == (1 - 0.5) / 0.25


@pytest.fixture
def empty_torch_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    return tmp_path / "hub" / "checkpoints"


def test_imagenet_weights_in_the_cache_need_no_network(empty_torch_cache, monkeypatch):
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    assert "COURSE_OFFLINE=1" in pretrained._why_no_imagenet()
    empty_torch_cache.mkdir(parents=True)
    (empty_torch_cache / Path(pretrained.IMAGENET.url).name).write_bytes(b"")
    assert pretrained._why_no_imagenet() is None


def test_an_unreachable_server_is_named(empty_torch_cache, monkeypatch):
    monkeypatch.setenv("COURSE_OFFLINE", "0")
    asked = []

    class Refusing:
        def open(self, request, timeout):
            asked.append((request.full_url, timeout))
            raise urllib.error.URLError(OSError(101, "Network is unreachable"))

    monkeypatch.setattr(pretrained.data, "url_opener", Refusing)
    assert pretrained._why_no_imagenet() == "cannot reach download.pytorch.org: Network is unreachable"
    assert asked == [(pretrained.IMAGENET.url, pretrained.NETWORK_TIMEOUT_S)]


def fake_fashion_mnist(monkeypatch, n_images):
    """A Fashion-MNIST training set of n_images (classes 0-9 in turn), so no test depends on which data a machine has."""
    fake = SimpleNamespace(data=torch.zeros(n_images, 28, 28, dtype=torch.uint8), targets=torch.arange(n_images) % 10)
    monkeypatch.setattr(pretrained.data, "load_fashion_mnist", lambda train=True: fake)
    return fake


def test_offline_it_pretrains_once_then_loads_and_never_says_imagenet(empty_torch_cache, data_root, monkeypatch, capsys):
    calls = []

    def quick_pretraining(model, n_images, epochs, progress, classes, train_set):
        calls.append((n_images, epochs, classes))
        with torch.no_grad():
            model.fc.bias.fill_(0.5)
        return {"images": n_images, "epochs": epochs, "fashion_test_accuracy": 0.5, "mean": 0.3, "std": 0.4}

    monkeypatch.setattr(pretrained, "_pretrain_on_fashion_mnist", quick_pretraining)
    monkeypatch.setenv("COURSE_FAST", "1")
    fake_fashion_mnist(monkeypatch, 60_000)
    first = pretrained.load_pretrained_resnet18(progress=False)
    second = pretrained.load_pretrained_resnet18(progress=False)
    assert calls == [(12_000, 1, tuple(range(10)))]
    assert (data_root / "checkpoints" / "resnet18-fashion-mnist-12000x1.pt").is_file()
    for result in (first, second):
        assert not result.imagenet and "not ImageNet" in result.source and "Fashion-MNIST" in result.source
        assert (result.mean, result.std) == (0.3, 0.4)
        assert torch.equal(result.model.fc.bias, torch.full((10,), 0.5))
    out = capsys.readouterr().out
    assert out.count("No ImageNet weights (COURSE_OFFLINE=1") == 2 and "from " + str(data_root / "checkpoints") in out


def test_the_checkpoint_is_named_after_the_images_actually_used(data_root, monkeypatch):
    """With the 4,000-image sample, fast mode's 12,000 (and full mode's 60,000) cannot be had: the name says 4,000."""
    calls = []

    def quick_pretraining(model, n_images, epochs, progress, classes, train_set):
        calls.append(n_images)
        return {"images": n_images, "epochs": epochs, "fashion_test_accuracy": 0.5, "mean": 0.3, "std": 0.4}

    monkeypatch.setattr(pretrained, "_pretrain_on_fashion_mnist", quick_pretraining)
    fake_fashion_mnist(monkeypatch, 4_000)
    for fast, epochs in (("1", 1), ("0", 2)):
        monkeypatch.setenv("COURSE_FAST", fast)
        pretrained.course_pretrained_resnet18(progress=False)
        assert (data_root / "checkpoints" / f"resnet18-fashion-mnist-4000x{epochs}.pt").is_file()
    assert calls == [4_000, 4_000]
    checkpoints = sorted(path.name for path in (data_root / "checkpoints").iterdir() if path.suffix != ".lock")  # the lock files stay
    assert checkpoints == ["resnet18-fashion-mnist-4000x1.pt", "resnet18-fashion-mnist-4000x2.pt"]


def test_a_subset_of_classes_gets_its_own_head_checkpoint_and_name(data_root, monkeypatch):
    monkeypatch.setattr(
        pretrained, "_pretrain_on_fashion_mnist",
        lambda model, n_images, epochs, progress, classes, train_set: {"images": n_images, "epochs": epochs, "fashion_test_accuracy": 0.9, "mean": 0.3, "std": 0.4},
    )
    monkeypatch.setenv("COURSE_FAST", "1")
    fake_fashion_mnist(monkeypatch, 60_000)
    result = pretrained.course_pretrained_resnet18(progress=False, classes=(0, 1, 2, 3, 4))
    assert result.model.fc.out_features == 5 and result.classes == (0, 1, 2, 3, 4)
    assert (data_root / "checkpoints" / "resnet18-fashion-mnist-classes01234-12000x1.pt").is_file()
    assert "T-shirt/top, Trouser, Pullover, Dress, Coat" in result.source and "Sandal" not in result.source
    for wrong in ((), (3, 3), (9, 10)):
        with pytest.raises(ValueError, match="distinct Fashion-MNIST class numbers"):
            pretrained.course_pretrained_resnet18(progress=False, classes=wrong)


def test_pretraining_on_some_classes_sees_only_them_relabelled(monkeypatch):
    fake = fake_fashion_mnist(monkeypatch, 1_000)
    fake.data[:] = (fake.targets * 20).to(torch.uint8)[:, None, None]  # each class its own grey level
    seen = {}

    def record(model, loader, optimizer, **kwargs):
        seen["x"], seen["y"] = loader.dataset.tensors

    monkeypatch.setattr(pretrained.train, "fit", record)
    monkeypatch.setattr(pretrained.train, "evaluate", lambda model, loader: {"accuracy": 0.5})
    model = pretrained.resnet18(weights=None, num_classes=3)
    meta = pretrained._pretrain_on_fashion_mnist(model, 150, 1, False, classes=(7, 2, 9))
    assert meta["images"] == 150 and len(seen["y"]) == 150
    assert sorted(seen["y"].unique().tolist()) == [0, 1, 2]  # class 7 -> 0, 2 -> 1, 9 -> 2
    grey = ((seen["x"][:, 0, 16, 16] * meta["std"] + meta["mean"]) * 255).round()
    assert torch.equal(grey, torch.tensor([140.0, 40.0, 180.0])[seen["y"]])  # each image's label is its own class's


def test_pretraining_learns_the_source_task(data_root, monkeypatch):
    """A real, small pretraining run (500 images, one epoch) ends well above chance on Fashion-MNIST."""
    model = pretrained.resnet18(weights=None, num_classes=10)
    meta = pretrained._pretrain_on_fashion_mnist(model, 500, 1, progress=False)
    assert meta["images"] == 500 and meta["epochs"] == 1
    assert 0.2 < meta["mean"] < 0.4 and 0.25 < meta["std"] < 0.45
    assert meta["fashion_test_accuracy"] > 0.3


def test_with_imagenet_weights_the_weights_api_is_used_and_named(empty_torch_cache, monkeypatch, capsys):
    empty_torch_cache.mkdir(parents=True)
    (empty_torch_cache / Path(pretrained.IMAGENET.url).name).write_bytes(b"")  # "in the torch cache"
    calls = []

    def fake_resnet18(weights=None, progress=True, **kwargs):
        calls.append(weights)
        return torch.nn.Linear(1, 1)

    monkeypatch.setattr(pretrained, "resnet18", fake_resnet18)
    result = pretrained.load_pretrained_resnet18(progress=False)
    assert calls == [pretrained.IMAGENET] and result.imagenet and result.source.startswith("ImageNet")
    assert abs(result.mean - (0.485 + 0.456 + 0.406) / 3) < 1e-9 and abs(result.std - (0.229 + 0.224 + 0.225) / 3) < 1e-9
    out = capsys.readouterr().out
    assert "through torchvision's weights API" in out and "average of its RGB mean [0.485, 0.456, 0.406]" in out


def test_a_failed_imagenet_download_falls_back_and_says_why(empty_torch_cache, monkeypatch, capsys):
    monkeypatch.setattr(pretrained, "_why_no_imagenet", lambda: None)  # the server seemed to answer

    def failing_resnet18(weights=None, progress=True, **kwargs):
        if weights is not None:
            raise OSError("connection reset by peer")
        return torch.nn.Linear(1, 1)

    monkeypatch.setattr(pretrained, "resnet18", failing_resnet18)
    monkeypatch.setattr(pretrained, "course_pretrained_resnet18", lambda progress, classes: "the course's own")
    assert pretrained.load_pretrained_resnet18(progress=False) == "the course's own"
    assert "No ImageNet weights (the download failed: connection reset by peer)" in capsys.readouterr().out


PRETRAIN_IN_A_PROCESS = """
import sys, time
from pathlib import Path
from types import SimpleNamespace
import torch
from helpers import pretrained
log, ready = Path(sys.argv[1]), Path(sys.argv[2])

def slow_pretraining(model, n_images, epochs, progress, classes, train_set):
    with log.open("a", encoding="utf-8") as f:
        f.write("pretrained\\n")
    time.sleep(3)  # long enough for the other process to find the lock taken
    with torch.no_grad():
        model.fc.bias.fill_(0.25)
    return {"images": n_images, "epochs": epochs, "fashion_test_accuracy": 0.5, "mean": 0.3, "std": 0.4}

fake = SimpleNamespace(data=torch.zeros(100, 28, 28, dtype=torch.uint8), targets=torch.arange(100) % 10)
pretrained.data.load_fashion_mnist = lambda train=True: fake
pretrained._pretrain_on_fashion_mnist = slow_pretraining
with ready.open("a", encoding="utf-8") as f:  # a barrier: both processes imported torch and now start together
    f.write("ready\\n")
deadline = time.monotonic() + 120
while len(ready.read_text(encoding="utf-8").splitlines()) < 2 and time.monotonic() < deadline:
    time.sleep(0.05)
result = pretrained.course_pretrained_resnet18(progress=False)
assert torch.equal(result.model.fc.bias, torch.full((10,), 0.25)), "loaded another network than the one pretrained"
"""


def test_two_processes_at_once_pretrain_once_and_both_get_the_network(data_root, tmp_path):
    """The cache is locked: without the lock both processes pretrain (the log would hold two lines)."""
    log = tmp_path / "pretrainings.txt"
    env = {**os.environ, "COURSE_FAST": "1", "COURSE_CHECKPOINT_ROOT": str(data_root / "checkpoints")}
    runs = [subprocess.Popen([sys.executable, "-c", PRETRAIN_IN_A_PROCESS, str(log), str(tmp_path / "ready.txt")], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, encoding="utf-8") for _ in range(2)]
    outputs = [run.communicate(timeout=300)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    assert log.read_text(encoding="utf-8").splitlines() == ["pretrained"], outputs
    together = "".join(outputs)
    assert together.count("Saved the pretrained ResNet-18") == 1 and together.count("from " + str(data_root / "checkpoints")) == 1
    assert re.search(r"Waiting: process \d+ on \S+ \(since [\d:]+\) is pretraining the ResNet-18", together), \
        "the waiting process should say for whom it waits"
