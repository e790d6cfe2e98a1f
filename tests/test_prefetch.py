import socket
import urllib.request
from types import SimpleNamespace

import pytest
from torchvision import datasets

from helpers import data, lm, prefetch, pretrained


def fake_loader(source):
    return lambda train: SimpleNamespace(source=source)


@pytest.fixture(autouse=True)
def built(monkeypatch):
    """Prefetch also fetches or builds the pretrained ResNets of lessons 05 and 06; test_pretrained.py covers how."""
    calls = []
    monkeypatch.setattr(pretrained, "load_pretrained_resnet18", lambda: calls.append("imagenet") or SimpleNamespace(source="a stand-in"))
    monkeypatch.setattr(pretrained, "course_pretrained_resnet18", lambda classes=tuple(range(10)): calls.append(classes) or SimpleNamespace(source="a stand-in"))
    # lesson 09's BERT: tests/test_lm.py covers how it is pretrained, cached and loaded
    monkeypatch.setattr(lm, "course_language_model", lambda budget=None, progress=True: calls.append("course bert") or "a stand-in")
    monkeypatch.setattr(lm, "load_language_model", lambda *a, **k: calls.append("hub bert") or SimpleNamespace(source="a stand-in"))
    return calls


def test_prefetch_fails_when_only_samples_could_be_had(monkeypatch, data_root, capsys):
    monkeypatch.setattr(data, "load_mnist", fake_loader("the embedded sample in data/samples (no download: ...)"))
    monkeypatch.setattr(data, "load_fashion_mnist", fake_loader("the full dataset, downloaded"))
    assert prefetch.main() == 1
    assert "Only the embedded sample is available for: MNIST train, MNIST test." in capsys.readouterr().out


def test_prefetch_succeeds_when_everything_is_full(monkeypatch, data_root, capsys, built):
    monkeypatch.setattr(data, "load_mnist", fake_loader("the full dataset, downloaded"))
    monkeypatch.setattr(data, "load_fashion_mnist", fake_loader("the full dataset in /x/FashionMNIST"))
    assert prefetch.main() == 0
    assert "runs without a network" in capsys.readouterr().out
    assert built == ["imagenet", (0, 1, 2, 3, 4), tuple(range(10)), "course bert", "hub bert"], "lessons 05, 06 and 09's networks should all be built"


def test_after_prefetch_the_course_runs_with_the_network_off(monkeypatch, data_root, local_mirror, tmp_path, capsys):
    """Prefetch while a (local) mirror answers; then make every connection fail: the full data is still there."""
    monkeypatch.setenv("COURSE_OFFLINE", "0")
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", tmp_path / "not-installed")
    local_mirror(datasets.MNIST)
    local_mirror(datasets.FashionMNIST)
    assert prefetch.main() == 0

    def no_network(*args, **kwargs):
        raise OSError(101, "Network is unreachable")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    capsys.readouterr()
    for load, name in ((data.load_mnist, "MNIST"), (data.load_fashion_mnist, "FashionMNIST")):
        for train in (True, False):
            dataset = load(train=train)
            assert dataset.source == f"the full dataset in {data_root / name}", dataset.source
            assert len(dataset) == (4000 if train else 1000)  # the local mirror served the sample files
    assert "embedded sample" not in capsys.readouterr().out
