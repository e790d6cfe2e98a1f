from types import SimpleNamespace

from helpers import data, prefetch


def fake_loader(source):
    return lambda train: SimpleNamespace(source=source)


def test_prefetch_fails_when_only_samples_could_be_had(monkeypatch, data_root, capsys):
    monkeypatch.setattr(data, "load_mnist", fake_loader("the embedded sample in data/samples (no download: ...)"))
    monkeypatch.setattr(data, "load_fashion_mnist", fake_loader("the full dataset, downloaded"))
    assert prefetch.main() == 1
    assert "Only the embedded sample is available for: MNIST train, MNIST test." in capsys.readouterr().out


def test_prefetch_succeeds_when_everything_is_full(monkeypatch, data_root, capsys):
    monkeypatch.setattr(data, "load_mnist", fake_loader("the full dataset, downloaded"))
    monkeypatch.setattr(data, "load_fashion_mnist", fake_loader("the full dataset in /x/FashionMNIST"))
    assert prefetch.main() == 0
    assert "runs without a network" in capsys.readouterr().out
