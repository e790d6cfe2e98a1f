import gzip
import os
import shutil
import socket
import time
from pathlib import Path

import pytest
import torch
from torchvision import datasets

from helpers import data

COURSE = Path(__file__).resolve().parents[1]
SAMPLES = COURSE / "data" / "samples"
DIRTY = SAMPLES / "digits-png-dirty"


def idx_bytes(values: torch.Tensor, type_code: int) -> bytes:
    header = bytes([0, 0, type_code, values.dim()]) + b"".join(n.to_bytes(4, "big") for n in values.shape)
    big_endian = values.contiguous().view(torch.uint8).view(-1, values.element_size()).flip(1)
    return header + big_endian.numpy().tobytes()


# --- read_idx ---------------------------------------------------------------------------------


def test_read_idx_equals_torchvision_on_the_sample():
    reference = datasets.MNIST(SAMPLES, train=False)
    assert torch.equal(data.read_idx(SAMPLES / "MNIST/raw/t10k-images-idx3-ubyte"), reference.data)
    assert torch.equal(data.read_idx(SAMPLES / "MNIST/raw/t10k-labels-idx1-ubyte").long(), reference.targets)


def test_read_idx_reads_gzip_and_big_endian_multibyte_values(tmp_path):
    values = torch.tensor([[1, -2, 70000], [3, 2**31 - 1, -(2**31)]], dtype=torch.int32)
    path = tmp_path / "values.idx.gz"
    path.write_bytes(gzip.compress(idx_bytes(values, 0x0C)))
    assert torch.equal(data.read_idx(path), values)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x01\x00\x08\x01\x00\x00\x00\x01\x07", "not an IDX file"),
        (b"\x00\x00\x42\x01\x00\x00\x00\x01\x07", "unknown IDX element type 0x42"),
        (b"\x00\x00\x08\x02\x00\x00\x00\x02\x00\x00\x00\x02\x07", "promises shape \\[2, 2\\]"),
    ],
)
def test_read_idx_names_the_file_and_the_fault(tmp_path, content, message):
    path = tmp_path / "bad-idx"
    path.write_bytes(content)
    for read in (data.read_idx, data.idx_shape):  # idx_shape: the same checks from the header and the size alone
        with pytest.raises(data.DataError, match=message) as error:
            read(path)
        assert str(path) in str(error.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "the file is empty"), (b"\x00\x00\x08\x03\x00\x00", "the file ends inside its header"),
     (b"\x00\x00\x08\x01\x00\x00\x00\x05\x01\x02", "header promises shape \\[5\\] \\(13 bytes\\) but the file has 10 bytes \\(it was cut short\\)")],
)
def test_an_empty_or_cut_short_idx_file_is_named(tmp_path, content, message):
    path = tmp_path / "t10k-labels-idx1-ubyte"
    path.write_bytes(content)
    with pytest.raises(data.DataError, match=f"{path}: {message}"):
        data.idx_shape(path)
    gz = tmp_path / "cut.gz"
    gz.write_bytes(gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x05\x01\x02")[:-6])
    with pytest.raises(data.DataError, match="cut.gz: not a readable gzip file"):
        data.read_idx(gz)


def test_damaged_files_checks_shapes_counts_and_labels(data_root):
    raw = data_root / "MNIST" / "raw"
    shutil.copytree(SAMPLES / "MNIST" / "raw", raw)
    assert data.damaged_files(datasets.MNIST, data_root) == []
    (raw / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(torch.zeros(999, dtype=torch.uint8), 0x08))
    (raw / "train-labels-idx1-ubyte").write_bytes(idx_bytes(torch.full((4000,), 11, dtype=torch.uint8), 0x08))
    found = {path.name: problem for path, problem in data.damaged_files(datasets.MNIST, data_root)}
    assert found == {
        "train-labels-idx1-ubyte": "holds the label 11, outside 0..9",
        "t10k-images-idx3-ubyte": "1,000 images but 999 labels",
        "t10k-labels-idx1-ubyte": "1,000 images but 999 labels",
    }


# --- checksums --------------------------------------------------------------------------------


def test_every_sample_file_matches_its_checksum():
    assert data.verify_samples() == len((SAMPLES / "SHA256SUMS").read_text(encoding="utf-8").splitlines())


def test_a_changed_sample_file_is_named(course_copy):
    victim = course_copy / "data/samples/MNIST/raw/t10k-labels-idx1-ubyte"
    victim.write_bytes(victim.read_bytes()[:-1] + b"\x00")
    with pytest.raises(data.DataError, match="t10k-labels-idx1-ubyte: checksum mismatch"):
        data.verify_samples("MNIST")
    assert data.verify_samples("FashionMNIST") == 4  # the other samples are still fine


def test_a_missing_sample_file_is_named(course_copy):
    (course_copy / "data/samples/FashionMNIST/raw/train-images-idx3-ubyte").unlink()
    with pytest.raises(data.DataError, match="train-images-idx3-ubyte: missing"):
        data.verify_samples("FashionMNIST")


# --- loading MNIST and Fashion-MNIST ----------------------------------------------------------


def test_offline_mnist_falls_back_to_the_sample_and_writes_nothing(data_root, capsys):
    train, test = data.load_mnist(train=True), data.load_mnist(train=False)
    assert (len(train), len(test)) == (4000, 1000)
    assert train.targets.bincount().tolist() == [400] * 10
    out = capsys.readouterr().out
    assert "MNIST train: 4,000 images from the embedded sample" in out and "COURSE_OFFLINE=1" in out
    assert list(data_root.iterdir()) == []  # the sample never goes where the full dataset belongs


def test_a_damaged_sample_stops_the_fallback(data_root, course_copy):
    victim = course_copy / "data/samples/MNIST/raw/train-images-idx3-ubyte"
    victim.write_bytes(victim.read_bytes()[:-10])
    with pytest.raises(data.DataError, match="train-images-idx3-ubyte: checksum mismatch"):
        data.load_mnist()


def test_an_unreachable_server_is_reported_at_once(monkeypatch):
    with socket.socket() as s:  # a port nobody listens on: the connection is refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert data.why_unreachable(f"http://127.0.0.1:{port}/mnist/x.gz", timeout=2) == "cannot reach 127.0.0.1: Connection refused"


def test_offline_no_network_is_tried(monkeypatch, data_root, capsys):
    def no_network(*args, **kwargs):
        raise AssertionError("COURSE_OFFLINE=1 must not touch the network")

    monkeypatch.setattr(data, "download", no_network)
    assert "COURSE_OFFLINE=1" in data.load_mnist(train=False).source


def test_fashion_mnist_without_debian_files_uses_the_sample(monkeypatch, data_root, tmp_path, capsys):
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", tmp_path / "not-installed")
    assert len(data.load_fashion_mnist(train=False)) == 1000
    assert "embedded sample" in capsys.readouterr().out


@pytest.mark.skipif(not data.DEBIAN_FASHION_MNIST.is_dir(), reason="Debian's dataset-fashion-mnist is not installed")
def test_fashion_mnist_from_the_debian_package(data_root, capsys):
    test = data.load_fashion_mnist(train=False)
    assert len(test) == 10_000 and test.targets.bincount().tolist() == [1000] * 10
    assert "Debian's dataset-fashion-mnist" in capsys.readouterr().out
    again = data.load_fashion_mnist(train=True)  # now read from the data root, origin still named
    assert len(again) == 60_000
    assert "in " + str(data_root / "FashionMNIST") in again.source and "Debian" in again.source


def test_a_wrong_debian_file_is_refused_and_the_sample_used(monkeypatch, data_root, tmp_path, capsys):
    fake = tmp_path / "fashion-mnist"
    fake.mkdir()
    for prefix, n in (("train", 100), ("t10k", 10)):
        (fake / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(torch.zeros(n, 28, 28, dtype=torch.uint8), 0x08)))
        (fake / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(torch.arange(n, dtype=torch.uint8) % 10, 0x08)))
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", fake)
    dataset = data.load_fashion_mnist()
    assert len(dataset) == 4_000 and "embedded sample" in dataset.source and "Debian's copy is damaged" in dataset.source
    assert "not the official Fashion-MNIST train split" in capsys.readouterr().out
    assert not (data_root / "FashionMNIST" / "raw" / "train-images-idx3-ubyte").exists()


def test_the_standard_download_path_is_used_when_the_network_answers(monkeypatch, data_root, local_mirror, capsys):
    """A local web server plays the MNIST mirror: torchvision's own download code fetches from it."""
    monkeypatch.setenv("COURSE_OFFLINE", "0")
    local_mirror(datasets.MNIST)
    test = data.load_mnist(train=False)
    assert len(test) == 1000 and test.source == "the full dataset, downloaded"
    assert (data_root / "MNIST" / "raw" / "t10k-images-idx3-ubyte").is_file()
    assert "MNIST test: 1,000 images from the full dataset, downloaded" in capsys.readouterr().out


# --- the image folder and its audit -----------------------------------------------------------


def folder_fingerprint(folder: Path) -> dict:
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_the_clean_folder_has_no_problem_and_loads():
    dataset = data.ImageCSVDataset(SAMPLES / "digits-png")
    assert len(dataset) == 60 and sorted(set(dataset.labels)) == list(range(10))
    image, label = dataset[0]
    assert image.size == (28, 28) and image.mode == "L" and isinstance(label, int)
    assert dataset[-1][1] == dataset.labels[-1]
    with pytest.raises(IndexError, match="index 60 is out of range for 60 images"):
        dataset[60]


def test_the_audit_names_each_defect_and_changes_nothing():
    before = folder_fingerprint(DIRTY)
    problems = data.audit_image_folder(DIRTY)
    assert folder_fingerprint(DIRTY) == before
    expected = [
        "line 14: images/missing.png does not exist",
        "line 15: images/corrupt.png is not a readable image",
        "line 16: images/digit_002.png is listed again (first on line 4)",
        "line 17: images/digit_012.png has label '12', not an integer in 0..9",
        "line 18: images/copy_of_digit_001.png has the same bytes as images/digit_001.png",
    ]
    assert len(problems) == len(expected)
    for problem, text in zip(problems, expected):
        assert text in problem


def test_the_dataset_refuses_a_dirty_folder_listing_every_problem():
    with pytest.raises(data.DataError, match="5 problem") as error:
        data.ImageCSVDataset(DIRTY)
    for name in ("missing.png", "corrupt.png", "digit_002.png", "digit_012.png", "copy_of_digit_001.png"):
        assert name in str(error.value)


def test_a_file_that_breaks_after_the_audit_is_named_when_read(tmp_path):
    folder = tmp_path / "digits"
    shutil.copytree(SAMPLES / "digits-png", folder)
    dataset = data.ImageCSVDataset(folder)
    (folder / dataset.files[3]).write_bytes(b"not a png")
    with pytest.raises(data.DataError, match=f"{dataset.files[3]}: cannot read image 3"):
        dataset[3]


@pytest.mark.parametrize(
    ("csv_text", "message"),
    [
        ("file,label\n", "expected the header 'filename,label'"),
        ("filename,label\nimages/digit_000.png\n", "line 2: expected 2 fields"),
        ("filename,label\nimages/digit_000.png,seven\n", "label 'seven'"),
    ],
)
def test_a_malformed_labels_file_is_reported_by_line(tmp_path, csv_text, message):
    folder = tmp_path / "digits"
    shutil.copytree(SAMPLES / "digits-png", folder)
    (folder / "labels.csv").write_text(csv_text, encoding="utf-8")
    assert any(message in problem for problem in data.audit_image_folder(folder))


def test_the_data_readme_lists_every_checksum():
    readme = (COURSE / "data" / "README.md").read_text(encoding="utf-8")
    block = readme.split("<!-- checksums: written by tools/make_samples.py -->\n```\n", 1)[1].split("```\n<!-- end of checksums -->", 1)[0]
    assert block == (SAMPLES / "SHA256SUMS").read_text(encoding="utf-8")


def test_a_killed_download_leaves_nothing_that_survives_the_next_one(monkeypatch, data_root, local_mirror, capsys):
    monkeypatch.setenv("COURSE_OFFLINE", "0")
    local_mirror(datasets.MNIST)
    raw = data_root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    stale, recent = raw / ".t10k-images-idx3-ubyte.k2j4.download", raw / ".t10k-labels-idx1-ubyte.x7y8.tmp"
    for path in (stale, recent):
        path.write_bytes(b"half")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    assert data.load_mnist(train=False).source == "the full dataset, downloaded"
    assert not stale.exists() and recent.exists(), "only an old temporary is removed: a recent one may be another process's"
    assert f"removed {stale}" in capsys.readouterr().out
