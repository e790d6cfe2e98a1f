"""Course-wide settings: fast or full mode, paths, seeding and device choice.

Every setting comes from an environment variable, read when a function is called, so a test
or a notebook can change it on the fly:

    COURSE_FAST=1              fast mode: small data and few epochs (CI and `make test` use it)
    COURSE_DATA_ROOT=PATH      where datasets are downloaded to (default: <course>/data)
    COURSE_CHECKPOINT_ROOT=PATH  where trained models are saved (default: <data root>/checkpoints);
                               in a room sharing one read-only data root, give each student their own
    COURSE_OFFLINE=1           never try the network: use local copies or the embedded samples
    COURSE_STRICT=1            DeprecationWarning and FutureWarning raised by course code
                               (the helpers and notebook cells) become errors (`make test` sets it)
"""

from __future__ import annotations

import errno
import os
import platform
import random
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"", "0", "false", "no", "off"}


def env_flag(name: str) -> bool:
    """Read an on/off environment variable; anything unrecognised is an error, not a guess."""
    value = os.environ.get(name, "").strip().lower()
    if value in TRUE_WORDS:
        return True
    if value in FALSE_WORDS:
        return False
    raise ValueError(f"{name}={os.environ[name]!r} is not understood: use 1 (on) or 0 (off)")


def fast_mode() -> bool:
    """True when COURSE_FAST is set: lessons shrink their data and epochs."""
    return env_flag("COURSE_FAST")


def offline() -> bool:
    """True when COURSE_OFFLINE is set: no download is attempted."""
    return env_flag("COURSE_OFFLINE")


def pick(*, fast, full):
    """Return `fast` in fast mode and `full` otherwise: `epochs = pick(fast=1, full=5)`."""
    return fast if fast_mode() else full


def course_root() -> Path:
    """The folder holding the course (the one with `data/samples/`).

    Found, in order: the COURSE_ROOT variable; the folder above this package (a clone installed
    with `pip install -e .`); the current folder or one of its parents (a notebook run inside a
    clone while `helpers` is installed elsewhere, as in Colab).
    """
    if os.environ.get("COURSE_ROOT"):
        return Path(os.environ["COURSE_ROOT"]).expanduser().resolve()
    candidates = [Path(__file__).resolve().parents[1], Path.cwd(), *Path.cwd().parents]
    for folder in candidates:
        if (folder / "data" / "samples").is_dir():
            return folder
    raise FileNotFoundError(
        "Cannot find the course folder (the one that contains data/samples/). "
        "Run the notebook inside a clone of the course, or set COURSE_ROOT to the clone's path."
    )


def samples_root() -> Path:
    """The embedded data samples committed with the course (read-only)."""
    return course_root() / "data" / "samples"


def data_root() -> Path:
    """Where full datasets are downloaded to: COURSE_DATA_ROOT, or <course>/data."""
    if os.environ.get("COURSE_DATA_ROOT"):
        return _absolute(os.environ["COURSE_DATA_ROOT"])
    return course_root() / "data"


def checkpoint_root() -> Path:
    """Where trained models are saved: COURSE_CHECKPOINT_ROOT, or <data root>/checkpoints."""
    if os.environ.get("COURSE_CHECKPOINT_ROOT"):
        return _absolute(os.environ["COURSE_CHECKPOINT_ROOT"])
    return data_root() / "checkpoints"


def _absolute(setting: str) -> Path:
    """The setting as an absolute path, links resolved; but a link to nothing is kept as it is, so that it can be named
    (resolving it would give its target's path, and creating folders there would fill the local disk instead of a share)."""
    path = Path(setting).expanduser().absolute()
    return path if broken_link(path) else path.resolve()


def broken_link(path: str | Path) -> str | None:
    """When `path` or a folder above it is a symbolic link to something that does not exist, that in words; else None."""
    for part in [Path(path), *Path(path).parents]:
        if part.is_symlink() and not part.exists():
            return f"{part} is a link to {os.readlink(part)}, which does not exist (a network share that is not mounted?)"
    return None


def why_not_writable(folder: str | Path) -> str | None:
    """None when files can be created in `folder` (made later if missing); otherwise the reason, naming the path.

    Checked by really creating (and removing) a temporary file in the nearest folder that exists,
    after asking `os.access`: that catches a missing permission, a read-only disk or share, and a
    path that is a file, before minutes of work are spent on something that cannot be saved.
    """
    folder = Path(folder)
    link = broken_link(folder)
    if link is not None:
        return f"{link}; nothing is created there"
    existing = folder
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is a file, not a folder" + ("" if existing == folder else f" (it is on the way to {folder})")
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is read-only for this user"
    try:
        with tempfile.TemporaryFile(dir=existing, prefix=".course-write-test-"):
            pass
    except OSError as error:
        return f"cannot create a file in {existing} ({error.strerror or error})"
    return None


# --- A full disk: one error, naming the folder and the bytes ------------------------------------


class DiskFullError(OSError):
    """No room on the disk for a file the course writes: the message names the folder, the bytes needed and free."""

    def __init__(self, message: str):
        super().__init__(errno.ENOSPC, message)

    def __str__(self) -> str:
        return self.strerror


def free_bytes(folder: str | Path) -> int:
    """Free bytes on the disk that holds `folder` (or its nearest existing parent)."""
    existing = Path(folder)
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    return shutil.disk_usage(existing).free


def is_disk_full(error: BaseException) -> bool:
    """True for 'no space left on device' or 'disk quota exceeded', however deep in the exception's causes."""
    while error is not None:
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            return True
        error = error.__cause__ or error.__context__
    return False


def disk_full(folder: str | Path, needed: int | None, what: str, then: str = "") -> DiskFullError:
    """The course's error for a disk without room for `what` (needing `needed` bytes, when known) in `folder`; `then` is appended."""
    need = f"{what} needs about {needed / 2**20:,.1f} MiB, " if needed else f"no room for {what}: "
    return DiskFullError(
        f"the disk holding {folder} is full: {need}{free_bytes(folder) / 2**20:,.1f} MiB are free. Free some space, or set "
        f"COURSE_CHECKPOINT_ROOT (checkpoints) or COURSE_DATA_ROOT (datasets) to a folder on another disk, and run again.{then}"
    )


STALE_AFTER_S = 3600  # a temporary file older than this was left by an interrupted download, copy or save


def remove_stale(candidates, why: str) -> None:
    """Remove the files among `candidates` that are older than STALE_AFTER_S (never a recent one: another
    process may still be writing it), saying so; `why` names what left them ("an interrupted save")."""
    for stray in candidates:
        try:
            if time.time() - stray.stat().st_mtime > STALE_AFTER_S:
                stray.unlink()
                print(f"removed {stray}, left by {why}")
        except FileNotFoundError:  # gone already: another process cleaned it
            pass


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python, NumPy and PyTorch (CPU and every GPU) so that a run can be repeated.

    Returns a fresh `torch.Generator` seeded the same way, for DataLoaders and `random_split`.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA and MPS device
    return torch.Generator().manual_seed(seed)


def choose_device(verbose: bool = True) -> torch.device:
    """CUDA if there is an NVIDIA GPU, else Apple's MPS, else the CPU; says which and why."""
    if torch.cuda.is_available():
        device, why = torch.device("cuda"), f"CUDA GPU: {torch.cuda.get_device_name(0)}"
    elif torch.backends.mps.is_available():
        device, why = torch.device("mps"), "Apple GPU through MPS"
    else:
        device, why = torch.device("cpu"), "CPU (no CUDA or Apple MPS GPU found; every lesson runs on it)"
    if verbose:
        print(f"Device: {why}")
    return device


def report() -> dict:
    """Print and return what a lesson runs on: versions, device, mode and paths."""
    import torchvision

    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "device": str(choose_device(verbose=False)),
        "mode": "fast" if fast_mode() else "full",
        "offline": offline(),
        "data_root": str(data_root()),
        "checkpoint_root": str(checkpoint_root()),
    }
    print(f"Python {info['python']} | torch {info['torch']} | torchvision {info['torchvision']}")
    choose_device(verbose=True)
    mode_line = "fast (COURSE_FAST=1: small data, few epochs)" if fast_mode() else "full (the real lesson)"
    print(f"Mode: {mode_line}{' | offline (COURSE_OFFLINE=1)' if offline() else ''}")
    print(f"Data root: {info['data_root']}")
    return info


# Which modules count as "course code" for strict warnings: the helpers and notebook cells.
COURSE_MODULES = r"(helpers(\..*)?|__main__)"


def strict_warnings() -> None:
    """Make DeprecationWarning and FutureWarning raised from course code into errors."""
    for category in (DeprecationWarning, FutureWarning):
        warnings.filterwarnings("error", category=category, module=COURSE_MODULES)


if env_flag("COURSE_STRICT"):
    strict_warnings()

__all__ = [
    "checkpoint_root",
    "choose_device",
    "course_root",
    "data_root",
    "fast_mode",
    "offline",
    "pick",
    "report",
    "samples_root",
    "seed_everything",
    "strict_warnings",
    "why_not_writable",
]
