"""Datasets of the course, built by hand in lesson 01 and imported by the later lessons.

- `load_mnist` / `load_fashion_mnist`: the standard `torchvision.datasets` path with
  `download=True`; without a network, Fashion-MNIST from the Debian package
  `dataset-fashion-mnist` when it is installed, else the small samples committed in data/samples.
  Every call prints one line naming the source and the number of images.
- `read_idx`: the IDX file format of (Fashion-)MNIST, parsed by hand.
- `ImageCSVDataset` and `audit_image_folder`: a folder of image files with a `labels.csv`, and
  the checks that name each bad file instead of failing somewhere later.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset
from torchvision import datasets

from helpers import config

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
NETWORK_TIMEOUT_S = 5
ORIGIN_NOTE = "ORIGIN.txt"  # written beside a dataset that did not come from the official download


class DataError(ValueError):
    """Bad input data: the message names the file, the row or the value at fault."""


# --- The IDX format (lesson 01, part 3) -------------------------------------------------------

IDX_DTYPES = {0x08: torch.uint8, 0x09: torch.int8, 0x0B: torch.int16, 0x0C: torch.int32, 0x0D: torch.float32, 0x0E: torch.float64}


def read_idx(path: str | Path) -> torch.Tensor:
    """Read an IDX file (optionally gzipped) into a tensor of its stored type and shape.

    Layout: two zero bytes, one byte for the element type (0x08 = unsigned byte), one byte for the
    number of dimensions, one big-endian 32-bit size per dimension, then the values, big-endian.
    """
    path = Path(path)
    raw = path.read_bytes()
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{path}: not an IDX file (it should start with two zero bytes, found {raw[:4].hex(' ')})")
    if raw[2] not in IDX_DTYPES:
        raise DataError(f"{path}: unknown IDX element type 0x{raw[2]:02x}")
    dtype, ndim = IDX_DTYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    shape = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    itemsize = torch.empty(0, dtype=dtype).element_size()
    expected = header + itemsize * _product(shape)
    if len(raw) != expected:
        raise DataError(f"{path}: header promises shape {shape} ({expected:,} bytes) but the file has {len(raw):,} bytes")
    data = torch.frombuffer(bytearray(raw), dtype=torch.uint8, offset=header)
    if itemsize > 1 and sys.byteorder == "little":  # IDX stores values big-endian: reverse each one's bytes
        data = data.view(-1, itemsize).flip(1).contiguous()
    return data.view(dtype).reshape(shape)


def _product(shape: list[int]) -> int:
    total = 1
    for n in shape:
        total *= n
    return total


# --- Checksums of the embedded samples -------------------------------------------------------


def sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def verify_samples(subfolder: str = "") -> int:
    """Check the embedded samples (those under `subfolder`) against data/samples/SHA256SUMS.

    Returns the number of files checked; raises DataError naming the first damaged or missing file.
    """
    root = config.samples_root()
    listing = root / "SHA256SUMS"
    checked = 0
    for line_no, line in enumerate(listing.read_text().splitlines(), start=1):
        digest, _, name = line.partition("  ")
        if not name:
            raise DataError(f"{listing} line {line_no}: expected '<sha256>  <file>', found {line!r}")
        if not name.startswith(subfolder):
            continue
        path = root / name
        if not path.is_file():
            raise DataError(f"{path}: missing from the embedded samples (restore it with `git checkout -- data/samples`)")
        actual = sha256(path)
        if actual != digest:
            raise DataError(
                f"{path}: checksum mismatch (expected sha256 {digest}, got {actual}); "
                "the file was changed: restore it with `git checkout -- data/samples`"
            )
        checked += 1
    if checked == 0:
        raise DataError(f"{listing}: lists no file under {subfolder!r}")
    return checked


# --- MNIST and Fashion-MNIST: the standard path first, an embedded default always -------------


def load_mnist(train: bool = True, transform: Callable | None = None) -> datasets.MNIST:
    """MNIST's training (60,000) or test (10,000) digits, or the embedded sample (4,000 / 1,000)."""
    return _load(datasets.MNIST, train, transform)


def load_fashion_mnist(train: bool = True, transform: Callable | None = None) -> datasets.FashionMNIST:
    """Fashion-MNIST (60,000 / 10,000 images), from the network, Debian's package or the sample."""
    return _load(datasets.FashionMNIST, train, transform)


def _load(cls: type[datasets.MNIST], train: bool, transform: Callable | None) -> datasets.MNIST:
    name, split, root = cls.__name__, "train" if train else "test", config.data_root()
    dataset, source = _from_folder(cls, root, train, transform), f"the full dataset in {root / name}"
    origin = root / name / ORIGIN_NOTE
    if dataset is not None and origin.is_file():
        source += f" ({origin.read_text().strip()})"
    if dataset is None:
        why = _why_no_download(cls)
        if why is None:
            dataset, source = cls(root, train=train, transform=transform, download=True), "the full dataset, downloaded"
        elif cls is datasets.FashionMNIST and _copy_debian_fashion_mnist(root):
            dataset = cls(root, train=train, transform=transform)
            source = f"the full dataset of Debian's dataset-fashion-mnist (no download: {why})"
        else:
            verify_samples(name)
            dataset = cls(config.samples_root(), train=train, transform=transform)
            source = f"the embedded sample in data/samples (no download: {why}; `make prefetch` gets the full data)"
    print(f"{name} {split}: {len(dataset):,} images from {source}")
    dataset.source = source
    return dataset


def _from_folder(cls, root: Path, train: bool, transform) -> datasets.MNIST | None:
    try:
        return cls(root, train=train, transform=transform)
    except RuntimeError:  # torchvision: "Dataset not found"
        return None


def _why_no_download(cls) -> str | None:
    """None when a download can be tried; otherwise the reason, found within seconds."""
    if config.offline():
        return "COURSE_OFFLINE=1"
    url = urlparse(cls.mirrors[0])
    host, port = url.hostname, url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=NETWORK_TIMEOUT_S).close()
    except OSError as error:
        return f"cannot reach {host}: {error.strerror or error}"
    return None


def _copy_debian_fashion_mnist(root: Path) -> bool:
    """Unpack Debian's Fashion-MNIST files into the data root, where a download would put them.

    Debian recompressed the official files (their gzip MD5s differ from torchvision's), so each
    file is checked by content instead: the IDX header, 60,000 / 10,000 images of 28x28 pixels,
    and exactly 6,000 / 1,000 of each of the 10 classes.
    """
    if not DEBIAN_FASHION_MNIST.is_dir():
        return False
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, count in (("train", 60_000), ("t10k", 10_000)):
        images = read_idx(DEBIAN_FASHION_MNIST / f"{prefix}-images-idx3-ubyte.gz")
        labels = read_idx(DEBIAN_FASHION_MNIST / f"{prefix}-labels-idx1-ubyte.gz")
        if images.shape != (count, 28, 28) or labels.bincount(minlength=10).tolist() != [count // 10] * 10:
            raise DataError(f"{DEBIAN_FASHION_MNIST}/{prefix}-*: not the official Fashion-MNIST {prefix} split")
        for kind in ("images-idx3", "labels-idx1"):
            target = raw / f"{prefix}-{kind}-ubyte"
            if not target.exists():
                partial = target.with_suffix(".partial")
                partial.write_bytes(gzip.decompress((DEBIAN_FASHION_MNIST / f"{target.name}.gz").read_bytes()))
                partial.replace(target)  # atomic: an interrupted copy never looks complete
    (root / "FashionMNIST" / ORIGIN_NOTE).write_text(f"copied from Debian's dataset-fashion-mnist, {DEBIAN_FASHION_MNIST}\n")
    return True


# --- A folder of images with a labels file (lesson 01, parts 2 and 6) --------------------------


def audit_image_folder(folder: str | Path, num_classes: int = 10, open_images: bool = True) -> list[str]:
    """Every problem in `folder/labels.csv` and the images it lists, one line each.

    Finds rows that are malformed, repeat a file, carry a label outside 0..num_classes-1 or name a
    missing file; with `open_images`, also images that do not decode and images with the same bytes
    under two names. Changes nothing on disk.
    """
    folder = Path(folder)
    labels_csv = folder / "labels.csv"
    if not labels_csv.is_file():
        return [f"{labels_csv}: no such file"]
    problems, first_line_of, first_file_of_digest = [], {}, {}
    with open(labels_csv, newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header != ["filename", "label"]:
            return [f"{labels_csv} line 1: expected the header 'filename,label', found {header}"]
        for line_no, row in enumerate(reader, start=2):
            where = f"{labels_csv.name} line {line_no}"
            if len(row) != 2:
                problems.append(f"{where}: expected 2 fields, found {len(row)}: {row}")
                continue
            name, label = row
            if name in first_line_of:
                problems.append(f"{where}: {name} is listed again (first on line {first_line_of[name]})")
                continue
            first_line_of[name] = line_no
            if not label.strip().isdigit() or int(label) >= num_classes:
                problems.append(f"{where}: {name} has label {label!r}, not an integer in 0..{num_classes - 1}")
            path = folder / name
            if not path.is_file():
                problems.append(f"{where}: {name} does not exist")
                continue
            if open_images:
                try:
                    with Image.open(path) as image:
                        image.load()
                except (UnidentifiedImageError, OSError) as error:
                    problems.append(f"{where}: {name} is not a readable image ({error})")
                    continue
                digest = sha256(path)
                if digest in first_file_of_digest:
                    problems.append(f"{where}: {name} has the same bytes as {first_file_of_digest[digest]}")
                else:
                    first_file_of_digest[digest] = name
    return problems


class ImageCSVDataset(Dataset):
    """Images listed in `folder/labels.csv` (columns `filename,label`), loaded one at a time.

    The folder is audited when the dataset is made: any problem raises a DataError that lists them
    all, so that a bad file is found now, by name, and not in the middle of training.
    """

    def __init__(self, folder: str | Path, transform: Callable | None = None, num_classes: int = 10, open_images: bool = True):
        self.folder, self.transform = Path(folder), transform
        problems = audit_image_folder(self.folder, num_classes, open_images)
        if problems:
            raise DataError(f"{self.folder}: {len(problems)} problem(s) to fix first:\n  " + "\n  ".join(problems))
        with open(self.folder / "labels.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        self.files = [row["filename"] for row in rows]
        self.labels = [int(row["label"]) for row in rows]

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int):
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} is out of range for {len(self)} images in {self.folder}")
        path = self.folder / self.files[index]
        try:
            with Image.open(path) as file:
                image = file.convert("L")
        except (UnidentifiedImageError, OSError) as error:
            raise DataError(f"{path}: cannot read image {index} ({error})") from error
        return (self.transform(image) if self.transform else image), self.labels[index]
