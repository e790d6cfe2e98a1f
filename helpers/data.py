"""Datasets of the course, built by hand in lesson 01 and imported by the later lessons.

- `load_mnist` / `load_fashion_mnist`: the full dataset in the data root when it is there and
  intact; else a download from the mirrors torchvision lists, checked against torchvision's MD5s;
  without a network, Fashion-MNIST from the Debian package `dataset-fashion-mnist` when it is
  installed, else the small samples committed in data/samples. Every call prints one line naming
  the source and the number of images, and every fallback says why.
- `read_idx`: the IDX file format of (Fashion-)MNIST, parsed by hand.
- `ImageCSVDataset` and `audit_image_folder`: a folder of image files with a `labels.csv`, and
  the checks that name each bad file instead of failing somewhere later.

The network, as a classroom's Wi-Fi has it: every access goes through urllib, which honours
HTTP_PROXY / HTTPS_PROXY / NO_PROXY; connecting and every read time out after NETWORK_TIMEOUT_S
(10 s), a whole file after DOWNLOAD_DEADLINE_S (10 minutes); a web page instead of the file (a
Wi-Fi login page), a connection dropped mid-file or a wrong checksum is a failed download, whose
partial file is removed. (Name resolution is the system's and has no timeout of ours.) torchvision's
own `download=True` has no read timeout, so the course fetches the files itself and lets
torchvision's dataset class read them.
"""

from __future__ import annotations

import csv
import errno
import gzip
import hashlib
import http.client
import os
import re
import shutil
import socket
import ssl
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zlib
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset
from torchvision import datasets
from torchvision.datasets.vision import VisionDataset

from helpers import config

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
NETWORK_TIMEOUT_S = 10.0  # connecting, and each read: a server that stops answering is given up after this
DOWNLOAD_DEADLINE_S = 600.0  # a whole file: a server that answers a byte at a time is given up after this
PROGRESS_EVERY_S = 10.0  # a slow download prints how far it got this often
REMEMBER_FAILURE_S = 120.0  # a host that just failed is not tried again for this long (one wait per lesson, not one per call)
ORIGIN_NOTE = "ORIGIN.txt"  # written beside a dataset that did not come from the official download
USER_AGENT = "pytorch-course (https://github.com/pytorch-course/pytorch-course)"


class DataError(ValueError):
    """Bad input data: the message names the file, the row or the value at fault."""


class DownloadError(OSError):
    """A download that did not give the expected file; the message says why in words."""


# --- The IDX format (lesson 01, part 3) -------------------------------------------------------

IDX_DTYPES = {0x08: torch.uint8, 0x09: torch.int8, 0x0B: torch.int16, 0x0C: torch.int32, 0x0D: torch.float32, 0x0E: torch.float64}


def _idx_header(path: Path, head: bytes, size: int) -> tuple[torch.dtype, list[int], int]:
    """Check an IDX header against the file's size; returns (element type, shape, header length)."""
    if size == 0:
        raise DataError(f"{path}: the file is empty (0 bytes), as an interrupted download or copy leaves it")
    if len(head) < 4 or head[0] != 0 or head[1] != 0:
        raise DataError(f"{path}: not an IDX file (it should start with two zero bytes, found {head[:4].hex(' ')})")
    if head[2] not in IDX_DTYPES:
        raise DataError(f"{path}: unknown IDX element type 0x{head[2]:02x}")
    dtype, ndim = IDX_DTYPES[head[2]], head[3]
    header = 4 + 4 * ndim
    if len(head) < header:
        raise DataError(f"{path}: the file ends inside its header ({size:,} bytes, the header alone needs {header})")
    shape = [int.from_bytes(head[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    expected = header + torch.empty(0, dtype=dtype).element_size() * _product(shape)
    if size != expected:
        cut = " (it was cut short)" if size < expected else ""
        raise DataError(f"{path}: header promises shape {shape} ({expected:,} bytes) but the file has {size:,} bytes{cut}")
    return dtype, shape, header


def idx_shape(path: str | Path) -> tuple[torch.dtype, list[int]]:
    """The element type and shape of an uncompressed IDX file, checked against its size without reading the values."""
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(4)
        if len(head) == 4:
            head += f.read(4 * head[3])
    dtype, shape, _ = _idx_header(path, head, path.stat().st_size)
    return dtype, shape


def read_idx(path: str | Path) -> torch.Tensor:
    """Read an IDX file (optionally gzipped) into a tensor of its stored type and shape.

    Layout: two zero bytes, one byte for the element type (0x08 = unsigned byte), one byte for the
    number of dimensions, one big-endian 32-bit size per dimension, then the values, big-endian.
    """
    path = Path(path)
    raw = path.read_bytes()
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as error:
            raise DataError(f"{path}: not a readable gzip file ({error})") from error
    dtype, shape, header = _idx_header(path, raw[: 4 + 4 * raw[3]] if len(raw) >= 4 else raw, len(raw))
    itemsize = torch.empty(0, dtype=dtype).element_size()
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
    for line_no, line in enumerate(listing.read_text(encoding="utf-8").splitlines(), start=1):
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
                "the file was changed (or its line endings converted, as Git for Windows did before the course's .gitattributes): "
                "delete the data/samples folder, then restore it with `git checkout -- data/samples`"
            )
        checked += 1
    if checked == 0:
        raise DataError(f"{listing}: lists no file under {subfolder!r}")
    return checked


# --- The network: proxies honoured, every wait bounded -----------------------------------------

_failed_hosts: dict[str, tuple[float, str]] = {}  # mirror -> (when it failed, why), see REMEMBER_FAILURE_S


def url_opener() -> urllib.request.OpenerDirector:
    """urllib's opener; its ProxyHandler reads HTTP_PROXY, HTTPS_PROXY and NO_PROXY (a raw socket would not)."""
    return urllib.request.build_opener()


def _in_words(error: BaseException, timeout: float) -> str:
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    if isinstance(error, urllib.error.URLError):
        error = error.reason if isinstance(error.reason, BaseException) else error
    if isinstance(error, ssl.SSLError):  # a portal or a school filter that intercepts secure connections shows as this
        return f"the secure connection failed ({getattr(error, 'verify_message', None) or error.reason or error}; a Wi-Fi login " \
               "page or a network filter in the way? sign in with a browser, then run again)"
    if isinstance(error, TimeoutError):
        return f"no answer within {timeout:g} s"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__


def proxy_for(url: str) -> str | None:
    """The proxy urllib will go through for `url` (from HTTP_PROXY, HTTPS_PROXY and NO_PROXY), or None."""
    parts = urlparse(url)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy is None or urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return proxy


def _cannot_reach(url: str, error: BaseException, timeout: float) -> str:
    """Why `url` could not be opened, blaming the proxy, by name, when one was in the way and never answered."""
    host = urlparse(url).hostname
    proxy = proxy_for(url)
    reason = error.reason if isinstance(error, urllib.error.URLError) and isinstance(error.reason, BaseException) else error
    if proxy is not None and isinstance(reason, (ConnectionRefusedError, ConnectionResetError, socket.gaierror)) or \
            proxy is not None and isinstance(reason, OSError) and reason.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        variable = f"{urlparse(url).scheme.upper()}_PROXY"
        return f"cannot reach the proxy {proxy} (set by {variable}) on the way to {host}: {_in_words(error, timeout)}; check {variable}, or unset it"
    if proxy is not None and isinstance(reason, TimeoutError):
        return f"no answer within {timeout:g} s from the proxy {proxy} or from {host} behind it"
    return f"cannot reach {host}: {_in_words(error, timeout)}"


def _looks_like_a_web_page(content_type: str, first_bytes: bytes) -> bool:
    return "html" in content_type.lower() or first_bytes.lstrip()[:1] == b"<"


WEB_PAGE = "answered with a web page instead of the file (a Wi-Fi login page? sign in with a browser, then run again)"


def why_unreachable(url: str, timeout: float | None = None) -> str | None:
    """None when `url` answers a HEAD request with the file (not a web page) in time; else the reason in words."""
    timeout = NETWORK_TIMEOUT_S if timeout is None else timeout
    host = urlparse(url).hostname
    request = urllib.request.Request(url, method="HEAD", headers={"User-Agent": USER_AGENT})
    try:
        with url_opener().open(request, timeout=timeout) as response:
            content_type = response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as error:
        if error.code in (405, 501):  # a server that refuses HEAD still answers
            return None
        return f"{host} answered {_in_words(error, timeout)}"
    except (OSError, http.client.HTTPException) as error:  # URLError, timeouts and resets are OSErrors
        return _cannot_reach(url, error, timeout)
    if _looks_like_a_web_page(content_type, b""):
        return f"{host} {WEB_PAGE}"
    return None


def download(url: str, target: str | Path, md5: str | None = None, *, timeout: float | None = None, deadline: float | None = None) -> Path:
    """Fetch `url` into `target` (gunzipped when the URL ends in .gz); raise DownloadError saying why.

    The file is written under a unique temporary name in the target's folder and renamed only when
    it is complete and its MD5 (of the bytes as served) matches: a stalled, lying or dropped
    download leaves nothing behind.
    """
    timeout = NETWORK_TIMEOUT_S if timeout is None else timeout
    deadline = DOWNLOAD_DEADLINE_S if deadline is None else deadline
    target = Path(target)
    host = urlparse(url).hostname
    started = time.monotonic()
    temporaries = []

    def temporary(suffix: str):
        f = tempfile.NamedTemporaryFile(dir=target.parent, prefix=f".{target.name}.", suffix=suffix, delete=False)
        temporaries.append(Path(f.name))
        return f

    try:
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
        try:
            response = url_opener().open(request, timeout=timeout)
        except urllib.error.HTTPError as error:
            raise DownloadError(f"{host} answered {_in_words(error, timeout)}") from error
        except (OSError, http.client.HTTPException) as error:
            raise DownloadError(_cannot_reach(url, error, timeout)) from error
        with response, temporary(".download") as packed:
            content_type = response.headers.get("Content-Type", "")
            length = response.headers.get("Content-Length")
            expected = int(length) if length and length.isdigit() else None
            digest, received, first, reported = hashlib.md5(usedforsecurity=False), 0, b"", started
            while True:
                # read1: at most one wait on the socket, so a server that trickles a byte at a time cannot hold one
                # read for longer than the read timeout, and the deadline is checked at least that often.
                if time.monotonic() - started > deadline:
                    raise DownloadError(f"{host} was still sending after {deadline:g} s ({received:,} bytes so far)")
                try:
                    chunk = response.read1(1 << 16)
                except (OSError, http.client.HTTPException) as error:
                    raise DownloadError(f"{host} stopped after {received:,} bytes: {_in_words(error, timeout)}") from error
                if not chunk:
                    break
                if not first:
                    first = chunk[:64]
                    if _looks_like_a_web_page(content_type, first):
                        raise DownloadError(f"{host} {WEB_PAGE}")
                try:
                    packed.write(chunk)
                except OSError as error:
                    if config.is_disk_full(error):
                        raise config.disk_full(target.parent, expected, f"downloading {url}") from error
                    raise
                digest.update(chunk)
                received += len(chunk)
                if time.monotonic() - reported > PROGRESS_EVERY_S:
                    reported = time.monotonic()
                    share = f" of {expected:,}" if expected else ""
                    print(f"  {host}: {received:,}{share} bytes of {Path(urlparse(url).path).name} after {reported - started:.0f} s", flush=True)
            if expected is not None and received != expected:
                raise DownloadError(f"the connection to {host} closed after {received:,} of {expected:,} bytes")
            if md5 is not None and digest.hexdigest() != md5:
                raise DownloadError(f"{url} has MD5 {digest.hexdigest()}, not the expected {md5}: cut short or changed on the way")
        with temporary(".tmp") as unpacked:
            try:
                if url.endswith(".gz"):
                    with gzip.open(temporaries[0], "rb") as source:
                        _copy_unpacked(source, unpacked, url)
                else:
                    with open(temporaries[0], "rb") as source:
                        shutil.copyfileobj(source, unpacked)
                unpacked.flush()
                os.fsync(unpacked.fileno())
            except OSError as error:
                if config.is_disk_full(error):  # the disk, not the mirror's file: say so (and keep the mirror)
                    raise config.disk_full(target.parent, None, f"unpacking {Path(urlparse(url).path).name}") from error
                raise
        os.replace(temporaries[1], target)
        return target
    finally:
        for path in temporaries:
            path.unlink(missing_ok=True)


def _copy_unpacked(source, destination, url: str) -> None:
    """Copy a gzip stream: a read error blames the file, a write error (a full disk) is left for the caller."""
    while True:
        try:
            block = source.read(1 << 20)
        except (OSError, EOFError, zlib.error) as error:
            raise DownloadError(f"{url} is not a readable gzip file ({error})") from error
        if not block:
            return
        destination.write(block)


# --- MNIST and Fashion-MNIST: the standard path first, an embedded default always -------------


def load_mnist(train: bool = True, transform: Callable | None = None) -> datasets.MNIST:
    """MNIST's training (60,000) or test (10,000) digits, or the embedded sample (4,000 / 1,000)."""
    return _load(datasets.MNIST, train, transform)


def load_fashion_mnist(train: bool = True, transform: Callable | None = None) -> datasets.FashionMNIST:
    """Fashion-MNIST (60,000 / 10,000 images), from the network, Debian's package or the sample."""
    return _load(datasets.FashionMNIST, train, transform)


def _load(cls: type[datasets.MNIST], train: bool, transform: Callable | None) -> datasets.MNIST:
    name, split, root = cls.__name__, "train" if train else "test", config.data_root()
    dataset, source, why = None, "", None
    if config.broken_link(root):
        why = f"the data root {config.broken_link(root)}"
    elif root.exists() and not root.is_dir():
        why = f"the data root {root} is a file, not a folder"
    else:
        damaged = damaged_files(cls, root)
        if damaged:
            why = _set_aside(cls, damaged)
        elif all(path.is_file() for path in _raw_files(cls, root)):
            dataset, source = _from_folder(cls, root, train, transform), f"the full dataset in {root / name}"
            origin = root / name / ORIGIN_NOTE
            if origin.is_file():
                source += f" ({origin.read_text(encoding='utf-8').strip()})"
        if dataset is None:
            failure = _why_no_download(cls, root) or _download(cls, root)
            if failure is None:
                dataset, source = _from_folder(cls, root, train, transform), "the full dataset, downloaded"
            else:
                why = f"{why}; {failure}" if why else failure
    if dataset is None and cls is datasets.FashionMNIST and DEBIAN_FASHION_MNIST.is_dir():
        try:
            dataset, source = _from_debian(root, train, transform, why)
        except DataError as error:  # damaged files in Debian's package: on to the sample, saying why
            print(f"{name}: Debian's copy cannot be used: {error}")
            why = f"{why}; Debian's copy is damaged"
    if dataset is None:
        verify_samples(name)
        dataset = cls(config.samples_root(), train=train, transform=transform)
        source = f"the embedded sample in data/samples (no download: {why}; `make prefetch` gets the full data)"
    print(f"{name} {split}: {len(dataset):,} images from {source}")
    dataset.source = source
    return dataset


def _raw_files(cls, root: Path) -> list[Path]:
    """The four uncompressed files torchvision's class reads (train and test images and labels)."""
    return [root / cls.__name__ / "raw" / filename.removesuffix(".gz") for filename, _ in cls.resources]


def damaged_files(cls, root: Path) -> list[tuple[Path, str]]:
    """Each file of `cls` in the data root that is there but damaged, with what is wrong; [] when none is.

    Checked on every load, cheaply: each IDX header against its file's size (an empty or cut-short
    file), the shapes (N x 28 x 28 images, N labels), the same N in a split's two files, and labels
    in 0..9. A file that is simply absent is not damaged: it is downloaded.
    """
    found = []
    shapes = {}
    for path in _raw_files(cls, root):
        if not path.is_file():
            continue
        try:
            dtype, shape = idx_shape(path)
        except (DataError, OSError) as error:
            found.append((path, str(error).removeprefix(f"{path}: ")))
            continue
        images = "images" in path.name
        if dtype != torch.uint8 or (images and (len(shape) != 3 or shape[1:] != [28, 28])) or (not images and len(shape) != 1):
            found.append((path, f"holds {dtype} values of shape {shape}, not {'N x 28 x 28 images' if images else 'N labels'} of bytes"))
            continue
        shapes[path] = shape
        if not images and shape[0] and int(read_idx(path).max()) > 9:
            found.append((path, f"holds the label {int(read_idx(path).max())}, outside 0..9"))
    for prefix in ("train", "t10k"):
        images, labels = (p for p in _raw_files(cls, root) if p.name.startswith(prefix))
        if images in shapes and labels in shapes and shapes[images][0] != shapes[labels][0]:
            counts = f"{shapes[images][0]:,} images but {shapes[labels][0]:,} labels"
            found += [(images, counts), (labels, counts)]
    return found


def _set_aside(cls, damaged: list[tuple[Path, str]]) -> str:
    """Rename each damaged file to <name>.damaged-<time> (never delete it) and say so; returns the reason in short."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for path, problem in damaged:
        blocked = config.why_not_writable(path.parent)
        if blocked is None:
            aside = path.with_name(f"{path.name}.damaged-{stamp}")
            try:
                path.replace(aside)
            except FileNotFoundError:  # another process sharing the data root moved it first
                continue
            print(f"{cls.__name__}: {path} is damaged ({problem}); moved aside to {aside.name}, to be fetched again")
        else:
            print(f"{cls.__name__}: {path} is damaged ({problem}); left in place ({blocked})")
    names = sorted({path.name for path, _ in damaged})
    return f"{', '.join(names)} in the data root {'is' if len(names) == 1 else 'are'} damaged"


def _from_folder(cls, root: Path, train: bool, transform) -> datasets.MNIST:
    try:
        return cls(root, train=train, transform=transform)
    except (RuntimeError, ValueError, OSError) as error:  # checked above, so this is unexpected: name the folder
        raise DataError(f"{root / cls.__name__ / 'raw'}: torchvision could not read {cls.__name__} from it ({error})") from error


def _why_no_download(cls, root: Path) -> str | None:
    """None when a download can be tried; otherwise the reason, found at once."""
    if config.offline():
        return "COURSE_OFFLINE=1"
    blocked = config.why_not_writable(root / cls.__name__ / "raw")
    if blocked is not None:
        return f"the data root cannot be written to: {blocked}"
    return None


def _download(cls, root: Path) -> str | None:
    """Fetch the files of `cls` missing from the data root, trying each mirror in turn; None on success, else why not."""
    raw = root / cls.__name__ / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    config.remove_stale([*raw.glob(".*.download"), *raw.glob(".*.tmp"), *raw.glob("*.partial")], "an interrupted download or copy")
    for filename, md5 in cls.resources:
        target = raw / filename.removesuffix(".gz")
        if target.is_file():
            continue
        reasons = []
        for number, mirror in enumerate(cls.mirrors, start=1):
            url = f"{mirror}{filename}"
            failed = _failed_hosts.get(mirror)
            if failed is not None and time.monotonic() - failed[0] < REMEMBER_FAILURE_S:
                reasons.append(f"{failed[1]} (a moment ago)")
                continue
            try:
                download(url, target, md5)
            except config.DiskFullError as error:  # the disk, not the mirror: no other mirror would do better
                print(f"{cls.__name__}: {error}")
                return f"no room to download: {error}"
            except DownloadError as error:
                _failed_hosts[mirror] = (time.monotonic(), str(error))
                reasons.append(str(error))
                nxt = "trying the next mirror" if number < len(cls.mirrors) else "no mirror left"
                print(f"{cls.__name__}: downloading {url} failed ({error}); {nxt}")
                continue
            break
        else:
            return f"the download failed: {reasons[-1]}"
    problems = damaged_files(cls, root)
    if problems:  # the MD5s matched, so this would be a wrong entry in torchvision's list
        return _set_aside(cls, problems)
    return None


def _debian_split(prefix: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Debian's Fashion-MNIST files of one split, checked by content.

    Debian recompressed the official files (their gzip MD5s differ from torchvision's), so each
    file is checked by content instead: the IDX header, 60,000 / 10,000 images of 28x28 pixels,
    and exactly 6,000 / 1,000 of each of the 10 classes.
    """
    count = 60_000 if prefix == "train" else 10_000
    try:
        images = read_idx(DEBIAN_FASHION_MNIST / f"{prefix}-images-idx3-ubyte.gz")
        labels = read_idx(DEBIAN_FASHION_MNIST / f"{prefix}-labels-idx1-ubyte.gz")
    except OSError as error:
        raise DataError(f"{DEBIAN_FASHION_MNIST}: cannot read its {prefix} files ({error})") from error
    if images.shape != (count, 28, 28) or labels.bincount(minlength=10).tolist() != [count // 10] * 10:
        raise DataError(f"{DEBIAN_FASHION_MNIST}/{prefix}-*: not the official Fashion-MNIST {prefix} split")
    return images, labels


def _from_debian(root: Path, train: bool, transform, why: str | None) -> tuple[datasets.FashionMNIST, str]:
    """Debian's Fashion-MNIST, copied into the data root when it can be written to and has room, else read in place."""
    if root.is_dir() and config.why_not_writable(root / "FashionMNIST" / "raw") is None:
        try:
            _copy_debian_fashion_mnist(root)
            return _from_folder(datasets.FashionMNIST, root, train, transform), f"the full dataset of Debian's dataset-fashion-mnist (no download: {why})"
        except config.DiskFullError as error:
            print(f"FashionMNIST: not copied: {error}; reading Debian's files in place instead")
    in_place = f"the full dataset of Debian's dataset-fashion-mnist, read in place from {DEBIAN_FASHION_MNIST} (no download: {why})"
    return _debian_in_place(train, transform), in_place


def _copy_debian_fashion_mnist(root: Path) -> None:
    """Unpack Debian's Fashion-MNIST files into the data root, where a download would put them.

    Both splits are checked before anything is written, so a damaged package leaves nothing behind; a disk
    that fills raises DiskFullError (each file is written whole or not at all).
    """
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    config.remove_stale([*raw.glob(".*.download"), *raw.glob(".*.tmp"), *raw.glob("*.partial")], "an interrupted download or copy")
    for prefix in ("train", "t10k"):
        _debian_split(prefix)
    for prefix in ("train", "t10k"):
        for kind in ("images-idx3", "labels-idx1"):
            target = raw / f"{prefix}-{kind}-ubyte"
            if not target.exists():
                _write_atomically(target, gzip.decompress((DEBIAN_FASHION_MNIST / f"{target.name}.gz").read_bytes()))
    (root / "FashionMNIST" / ORIGIN_NOTE).write_text(f"copied from Debian's dataset-fashion-mnist, {DEBIAN_FASHION_MNIST}\n", encoding="utf-8")


def _debian_in_place(train: bool, transform) -> datasets.FashionMNIST:
    """Debian's Fashion-MNIST as a torchvision dataset, read straight from /usr/share (nothing written)."""
    images, labels = _debian_split("train" if train else "t10k")
    dataset = datasets.FashionMNIST.__new__(datasets.FashionMNIST)
    VisionDataset.__init__(dataset, str(DEBIAN_FASHION_MNIST), transform=transform)
    dataset.train, dataset.data, dataset.targets = train, images, labels.long()
    return dataset


def _write_atomically(target: Path, content: bytes) -> None:
    """Write under a unique temporary name, flush it to disk, then rename: an interrupted copy never looks complete."""
    with tempfile.NamedTemporaryFile(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp", delete=False) as f:
        temporary = Path(f.name)
        try:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        except BaseException as error:
            f.close()
            temporary.unlink(missing_ok=True)
            if config.is_disk_full(error):
                raise config.disk_full(target.parent, len(content), target.name) from error
            raise
    try:
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


# --- A folder of images with a labels file (lesson 01, parts 2 and 6) --------------------------

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}
BIT_DEPTH = {"1": "1-bit", "L": "8-bit grey", "P": "8-bit palette", "RGB": "8-bit RGB", "RGBA": "8-bit RGBA", "LA": "8-bit grey+alpha",
             "PA": "8-bit palette+alpha", "I;16": "16-bit grey", "I;16B": "16-bit grey", "I;16L": "16-bit grey", "I": "32-bit integer",
             "F": "32-bit float", "CMYK": "8-bit CMYK"}
LABEL = re.compile(r"[0-9]+")  # ASCII digits only: '²'.isdigit() is True, yet int('²') fails


def describe_image(image: Image.Image) -> str:
    """Mode, bit depth and size in words: 'mode L (8-bit grey), 28x28'."""
    return f"mode {image.mode} ({BIT_DEPTH.get(image.mode, 'unusual')}), {image.width}x{image.height}"


def image_problem(image: Image.Image) -> str | None:
    """Why converting `image` to 8-bit grey (as ImageCSVDataset does) would lose it; None when it is safe."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        return (f"is {describe_image(image)}: converting it to 8-bit grey clips every value to 0..255; "
                "rescale it to 8 bits first")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        alpha = image.convert("RGBA").getchannel("A")
        if alpha.getextrema()[0] < 255:
            return (f"is {describe_image(image)} with transparent pixels: converting it to grey drops the alpha channel, "
                    "and a drawing made in it disappears; flatten it onto a background first")
    if image.mode not in BIT_DEPTH:
        return f"is {describe_image(image)}, a mode the course does not convert to grey"
    return None


def audit_image_folder(folder: str | Path, num_classes: int = 10, open_images: bool = True) -> list[str]:
    """Every problem in `folder/labels.csv` and the images it lists, one line each.

    Finds rows that are malformed, repeat a file, carry a label outside 0..num_classes-1 or name a
    missing file, and image files in the folder that no row names; with `open_images`, also images
    that do not decode, would not survive conversion to 8-bit grey (16-bit, transparency), differ
    in size from the others, or have the same bytes under two names. Changes nothing on disk.
    """
    return _audit(Path(folder), num_classes, open_images)[0]


def _audit(folder: Path, num_classes: int, open_images: bool) -> tuple[list[str], tuple[int, int] | None]:
    """The problems, and the size most of the images have (None without `open_images`)."""
    labels_csv = folder / "labels.csv"
    if not labels_csv.is_file():
        return [f"{labels_csv}: no such file"], None
    problems, first_line_of, first_file_of_digest, sizes = [], {}, {}, {}
    try:
        with open(labels_csv, newline="", encoding="utf-8-sig") as f:  # utf-8-sig: also what Excel saves as "CSV UTF-8" (with a BOM)
            rows = list(csv.reader(f))
    except UnicodeDecodeError as error:
        return [f"{labels_csv}: not UTF-8 text ({error})"], None
    header = rows[0] if rows else None
    if header != ["filename", "label"]:
        return [f"{labels_csv} line 1: expected the header 'filename,label', found {header}"], None
    for line_no, row in enumerate(rows[1:], start=2):
        where = f"{labels_csv.name} line {line_no}"
        if len(row) != 2:
            problems.append(f"{where}: expected 2 fields, found {len(row)}: {row}")
            continue
        name, label = row
        if name in first_line_of:
            problems.append(f"{where}: {name} is listed again (first on line {first_line_of[name]})")
            continue
        first_line_of[name] = line_no
        if not LABEL.fullmatch(label.strip()) or int(label) >= num_classes:
            problems.append(f"{where}: {name} has label {label!r}, not an integer in 0..{num_classes - 1}")
        path = folder / name
        if not path.is_file():
            problems.append(f"{where}: {name} does not exist")
            continue
        if open_images:
            try:
                with Image.open(path) as image:
                    image.load()
                    trouble = image_problem(image)
                    sizes[name] = (line_no, image.size)
            except (UnidentifiedImageError, OSError, ValueError) as error:
                problems.append(f"{where}: {name} is not a readable image ({error})")
                continue
            if trouble:
                problems.append(f"{where}: {name} {trouble}")
            digest = sha256(path)
            if digest in first_file_of_digest:
                problems.append(f"{where}: {name} has the same bytes as {first_file_of_digest[digest]}")
            else:
                first_file_of_digest[digest] = name
    common = None
    if sizes:
        (common, count), = Counter(size for _, size in sizes.values()).most_common(1)
        for name, (line_no, size) in sizes.items():
            if size != common:
                problems.append(f"{labels_csv.name} line {line_no}: {name} is {size[0]}x{size[1]} while "
                                f"{count} of the {len(sizes)} images are {common[0]}x{common[1]}")
    listed = {Path(name).as_posix() for name in first_line_of}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if (path.suffix.lower() in IMAGE_SUFFIXES and path.is_file() and relative.as_posix() not in listed
                and not any(part.startswith(".") for part in relative.parts)):
            problems.append(f"{relative.as_posix()} is in the folder but no row of {labels_csv.name} names it")
    return problems, common


class ImageCSVDataset(Dataset):
    """Images listed in `folder/labels.csv` (columns `filename,label`), loaded one at a time.

    The folder is audited when the dataset is made: any problem raises a DataError that lists them
    all, so that a bad file is found now, by name, and not in the middle of training. An image that
    changes after the audit is named when it is read.
    """

    def __init__(self, folder: str | Path, transform: Callable | None = None, num_classes: int = 10, open_images: bool = True):
        self.folder, self.transform = Path(folder), transform
        problems, self.size = _audit(self.folder, num_classes, open_images)
        if problems:
            raise DataError(f"{self.folder}: {len(problems)} problem(s) to fix first:\n  " + "\n  ".join(problems))
        with open(self.folder / "labels.csv", newline="", encoding="utf-8-sig") as f:
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
                file.load()
                trouble = image_problem(file)
                if trouble is None and self.size is not None and file.size != self.size:
                    trouble = f"is {file.width}x{file.height}, not {self.size[0]}x{self.size[1]} like the others"
                image = file.convert("L")
        except (UnidentifiedImageError, OSError, ValueError) as error:
            raise DataError(f"{path}: cannot read image {index} ({error})") from error
        if trouble:
            raise DataError(f"{path}: image {index} {trouble}")
        return (self.transform(image) if self.transform else image), self.labels[index]
