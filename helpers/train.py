"""Training, evaluation, metrics and checkpoints: lesson 02's loop, made reusable.

`fit` is the loop that lesson 02 writes out in full (zero_grad, forward, loss, backward, step),
plus what every later lesson wants around it: a progress bar, a history of the loss and accuracy,
an optional validation set, learning-rate scheduler and TensorBoard writer, and a clear stop when
the loss or a weight stops being a number.

Checkpoints are written for a classroom: under a unique temporary name in the same folder, flushed
to disk, then renamed (two processes saving the same file, or Ctrl-C mid-save, never leave a
broken one); each tensor's SHA-256 is stored and checked on load; a file of another format or
architecture is refused, naming the file and the first differing key, before anything is copied.
Call `check_writable(path, needed_bytes=checkpoint_bytes(model))` before a long training whose result
is to be saved there: a read-only folder or a full disk then costs a second, not the training. A disk
that fills anyway gives a DiskFullError naming the folder and the bytes needed; the model in memory
is untouched, so it can be saved elsewhere.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import pickle
import re
import socket
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler, TensorDataset
from filelock import FileLock, Timeout
from tqdm.auto import tqdm

from helpers import config
from helpers.config import DiskFullError, disk_full, free_bytes, is_disk_full  # noqa: F401 (part of this module's interface)


def tensor_loader(x: torch.Tensor, y: torch.Tensor, batch_size: int, shuffle: bool = False, generator: torch.Generator | None = None) -> DataLoader:
    """Batches of in-memory tensors, each batch gathered with one indexing operation.

    A plain `DataLoader(TensorDataset(x, y), batch_size)` calls `__getitem__` once per example and
    stacks the results; sampling whole batches of indices (`BatchSampler`) and `batch_size=None`
    lets `TensorDataset` index all of a batch at once, which is many times faster for small images.
    With the same seeded generator it yields the same batches as `DataLoader(..., shuffle=True)`.
    """
    dataset = TensorDataset(x, y)
    order = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
    return DataLoader(dataset, sampler=BatchSampler(order, batch_size, drop_last=False), batch_size=None, generator=generator)


def fit(
    model: nn.Module,
    train_loader,
    optimizer: torch.optim.Optimizer,
    *,
    epochs: int,
    loss_fn=F.cross_entropy,
    val_loader=None,
    scheduler=None,
    scheduler_per: str = "batch",
    device: torch.device | str | None = None,
    writer=None,
    histograms: bool = False,
    progress: bool = True,
) -> dict[str, list[float]]:
    """Train `model` for `epochs` passes over `train_loader`; returns the history.

    scheduler_per: "batch" steps the scheduler after every optimiser step (OneCycleLR, warm-up),
    "epoch" after every epoch (StepLR, CosineAnnealingLR counted in epochs).
    writer: a `torch.utils.tensorboard.SummaryWriter`; losses, accuracies and the learning rate
    are logged per epoch under "loss/...", "accuracy/..." and "lr"; with histograms=True, also the
    values of every parameter under "weights/<name>", before training (step 0) and after each epoch.
    The history has one entry per epoch for train_loss, train_accuracy (measured during the epoch,
    with dropout active), val_loss, val_accuracy, lr and seconds, and one per step for step_loss.
    """
    if scheduler_per not in ("batch", "epoch"):
        raise ValueError(f"scheduler_per must be 'batch' or 'epoch', not {scheduler_per!r}")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    history = {key: [] for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "seconds", "step_loss")}
    if histograms and writer is None:
        raise ValueError("histograms=True needs a writer (a torch.utils.tensorboard.SummaryWriter) to log them to")
    if histograms:
        _log_weights(writer, model, 0)
    step = 0
    for epoch in range(1, epochs + 1):
        started = time.perf_counter()
        model.train()
        loss_sum, correct, seen = 0.0, 0, 0
        # The bar is updated by hand rather than wrapped around the loader: tqdm.auto's wrapper calls
        # iter() on the loader once more, which draws from its generator and changes the batch order.
        bar = tqdm(total=len(train_loader), desc=f"epoch {epoch}/{epochs}", disable=not progress, leave=False)
        for batch_index, (x, y) in enumerate(train_loader):
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            optimizer.zero_grad()
            logits = model(x)
            loss = loss_fn(logits, y)
            if not torch.isfinite(loss):
                bar.close()
                broken = first_non_finite(model)
                cause = (f"the weight {broken} is already not finite, so the optimiser step before blew it up: lower the learning rate"
                         if broken else "the weights are finite: check this batch's inputs and targets for NaN or inf, or lower the learning rate")
                raise FloatingPointError(
                    f"the loss is {loss.item()} at epoch {epoch}, batch {batch_index} (optimiser step {step}); training stopped. {cause}."
                )
            loss.backward()
            optimizer.step()
            if scheduler is not None and scheduler_per == "batch":
                scheduler.step()
            step += 1
            history["step_loss"].append(loss.item())
            loss_sum += loss.item() * len(y)
            correct += (logits.argmax(dim=1) == y).sum().item()
            seen += len(y)
            bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
            bar.update()
        bar.close()
        broken = first_non_finite(model)
        if broken:  # the last step's update is seen by no loss of this epoch: check the weights it left
            raise FloatingPointError(
                f"the weight {broken} is not finite after epoch {epoch} (optimiser step {step}, the epoch's last); "
                "training stopped. Lower the learning rate, or clip the gradients."
            )
        history["lr"].append(optimizer.param_groups[0]["lr"])
        if scheduler is not None and scheduler_per == "epoch":
            scheduler.step()
        history["train_loss"].append(loss_sum / seen)
        history["train_accuracy"].append(correct / seen)
        line = f"epoch {epoch}/{epochs}: train loss {loss_sum / seen:.4f}, accuracy {correct / seen:.2%}"
        if val_loader is not None:
            try:
                val = evaluate(model, val_loader, loss_fn, device)
            except FloatingPointError as error:
                raise FloatingPointError(f"validation after epoch {epoch} (optimiser step {step}): {error}") from error
            history["val_loss"].append(val["loss"])
            history["val_accuracy"].append(val["accuracy"])
            line += f" | validation loss {val['loss']:.4f}, accuracy {val['accuracy']:.2%}"
        history["seconds"].append(time.perf_counter() - started)
        if writer is not None:
            for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy"):
                if history[key]:
                    kind, split = key.split("_")[1], key.split("_")[0]
                    writer.add_scalar(f"{kind}/{split}", history[key][-1], epoch)
            writer.add_scalar("lr", history["lr"][-1], epoch)
            if histograms:
                _log_weights(writer, model, epoch)
        if progress:
            print(f"{line} | {history['seconds'][-1]:.1f} s")
    return history


def first_non_finite(model: nn.Module) -> str | None:
    """The name of the first parameter or floating-point buffer holding a NaN or an infinity, with its bad value; None if none."""
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        if tensor.is_floating_point() or tensor.is_complex():
            bad = ~torch.isfinite(tensor.detach())
            if bad.any():
                return f"{name!r} ({bad.sum().item():,} of {tensor.numel():,} values, e.g. {tensor.detach()[bad].flatten()[0].item()})"
    return None


def _log_weights(writer, model: nn.Module, step: int) -> None:
    for name, p in model.named_parameters():
        writer.add_histogram(f"weights/{name}", p.detach().cpu(), step)


@torch.no_grad()
def predict(model: nn.Module, loader, device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """All logits and targets of `loader`, in eval mode and without gradients, on the CPU."""
    device = torch.device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.eval()
    logits, targets = [], []
    for x, y in loader:
        logits.append(model(x.to(device)).cpu())
        targets.append(y)
    model.train(was_training)
    return torch.cat(logits), torch.cat(targets)


def evaluate(model: nn.Module, loader, loss_fn=F.cross_entropy, device=None) -> dict[str, float]:
    """Mean loss and accuracy of `model` over `loader`; a FloatingPointError names a non-finite output or loss."""
    logits, targets = predict(model, loader, device)
    bad = ~torch.isfinite(logits.reshape(len(logits), -1)).all(dim=1)
    if bad.any():
        broken = first_non_finite(model)
        cause = f"the weight {broken} is not finite" if broken else "the weights are finite: check that example's input for NaN or inf"
        raise FloatingPointError(
            f"evaluate: the model's output is not finite for {bad.sum().item():,} of {len(logits):,} examples "
            f"(the first is example {bad.nonzero()[0].item()} of the loader); {cause}"
        )
    loss = loss_fn(logits, targets).item()
    if not math.isfinite(loss):
        raise FloatingPointError(f"evaluate: the loss is {loss} over {len(logits):,} examples although every output is finite; check the targets and the loss function")
    return {"loss": loss, "accuracy": accuracy(logits.argmax(dim=1), targets)}


# --- Metrics (computed by hand in lesson 02) -----------------------------------------------------


def accuracy(predictions: torch.Tensor, targets: torch.Tensor) -> float:
    return (predictions == targets).float().mean().item()


def confusion_matrix(predictions: torch.Tensor, targets: torch.Tensor, num_classes: int) -> torch.Tensor:
    """counts[t, p] = how many examples of true class t were predicted as class p."""
    return torch.bincount(targets * num_classes + predictions, minlength=num_classes**2).reshape(num_classes, num_classes)


def precision_recall_f1(confusion: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-class precision, recall and F1 from a confusion matrix (0 where a ratio is 0/0)."""
    confusion = confusion.double()
    hits = confusion.diag()
    precision = hits / confusion.sum(dim=0).clamp(min=1)  # column sums: how often each class was predicted
    recall = hits / confusion.sum(dim=1).clamp(min=1)  # row sums: how many examples each class has
    f1 = torch.where(precision + recall > 0, 2 * precision * recall / (precision + recall), torch.zeros_like(hits))
    return {"precision": precision, "recall": recall, "f1": f1}


# --- Checkpoints ---------------------------------------------------------------------------------

CHECKSUMS = "course_checkpoint"  # the key under which save_checkpoint stores its format version and checksums
FORMAT_VERSION = 2


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded into this model: the message names the file and what differs."""


def checkpoint_bytes(model: nn.Module, optimizer_copies: int = 0) -> int:
    """About how many bytes save_checkpoint will write for `model` (plus `optimizer_copies` tensors the size
    of its parameters, e.g. 2 for Adam's two moments)."""
    weights = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    parameters = sum(p.numel() * p.element_size() for p in model.parameters())
    return weights + optimizer_copies * parameters + (64 << 10)  # + names, checksums and the zip's headers


def check_writable(path: str | Path, needed_bytes: int | None = None) -> Path:
    """Raise PermissionError, naming the folder, when a checkpoint could not be saved at `path`; returns its folder.

    With `needed_bytes` (see `checkpoint_bytes`), also raise a DiskFullError when the disk has less free.
    Call it before a long training run whose result is to be saved, not after: a read-only or full
    checkpoint root should cost a second, not the minutes of training.
    """
    folder = Path(path).parent
    why = config.why_not_writable(folder)
    if why is not None:
        raise PermissionError(
            f"cannot save a checkpoint in {folder}: {why}. Set COURSE_CHECKPOINT_ROOT to a folder of your own "
            "(a shared, read-only data root needs one per student) and run again."
        )
    if needed_bytes is not None and free_bytes(folder) < needed_bytes:
        raise disk_full(folder, needed_bytes, f"the checkpoint {Path(path).name}")
    return folder


def _tensors(value, where: str):
    """Every tensor in a nested checkpoint value, with its path ('model/fc.weight'), in a fixed order."""
    if isinstance(value, torch.Tensor):
        yield where, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _tensors(item, f"{where}/{key}")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _tensors(item, f"{where}/{i}")


def _others(value):
    """The same nested value with every tensor replaced by its dtype and shape: what the tensor checksums do not cover."""
    if isinstance(value, torch.Tensor):
        return f"tensor {value.dtype} {tuple(value.shape)}"
    if isinstance(value, dict):
        return [(repr(key), _others(item)) for key, item in value.items()]
    if isinstance(value, (list, tuple)):
        return [_others(item) for item in value]
    return repr(value)


def _sha256(tensor: torch.Tensor) -> str:
    flat = tensor.detach().cpu().contiguous().reshape(-1)
    return hashlib.sha256(flat.view(torch.uint8).numpy() if flat.numel() else b"").hexdigest()


def _checksums(state: dict) -> dict[str, str]:
    sums = {where: _sha256(t) for where, t in _tensors(state, "")}
    sums["<everything else>"] = hashlib.sha256(repr(_others(state)).encode("utf-8")).hexdigest()
    return sums


SAFE_TYPES = "numbers, strings, bools, None, tensors, and lists, tuples and dicts of them"


def _plain(value, where: str):
    """`value` with NumPy scalars made Python numbers and paths made strings; anything else that a safe load
    (`torch.load(..., weights_only=True)`) would refuse raises a TypeError naming `where` and the type."""
    if isinstance(value, np.generic):  # before the plain types: NumPy's float64 is also a float
        return value.item()
    if value is None or type(value) in (str, bytes, bool, int, float) or isinstance(value, torch.Tensor):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if type(value) in (list, tuple):
        return type(value)(_plain(item, f"{where}[{i}]") for i, item in enumerate(value))
    if type(value) is dict:
        return {_plain(key, f"{where} (a key)"): _plain(item, f"{where}[{key!r}]") for key, item in value.items()}
    buffer = io.BytesIO()
    torch.save(value, buffer)
    buffer.seek(0)
    try:
        torch.load(buffer, weights_only=True)
    except pickle.UnpicklingError:
        raise TypeError(
            f"{where} is a {type(value).__module__}.{type(value).__qualname__}, which a safe load (weights_only=True) "
            f"refuses, so the checkpoint could not be read back: give {SAFE_TYPES}"
        ) from None
    return value


def save_checkpoint(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer | None = None, **extra) -> Path:
    """Save the model (and optimiser) state plus `extra` values (epoch, metrics, ...) atomically, with checksums.

    The file is written under a unique temporary name in the same folder, flushed to disk and then
    renamed over `path`: an interrupted save keeps the previous checkpoint, and two processes
    saving the same path at once each write a whole file (the last rename wins). Extras must load
    back safely: NumPy scalars become numbers and paths strings; other objects are refused here, by
    name, rather than when loading. A full disk raises DiskFullError; the model is left as it was.
    """
    path = Path(path)
    if CHECKSUMS in extra:
        raise ValueError(f"{CHECKSUMS!r} is reserved for the checkpoint's checksums: give that extra another name")
    extra = {key: _plain(value, f"{path}: the extra {key!r}") for key, value in extra.items()}
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict() if optimizer is not None else None, **extra}
    needed = sum(t.numel() * t.element_size() for _, t in _tensors(state, "")) + (64 << 10)
    check_writable(path, needed)
    path.parent.mkdir(parents=True, exist_ok=True)
    config.remove_stale([*path.parent.glob(f".{path.name}.*.tmp"), path.with_name(path.name + ".partial")], "an interrupted save")
    state[CHECKSUMS] = {"version": FORMAT_VERSION, "sha256": _checksums(state)}
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False) as f:
        temporary = Path(f.name)
    try:
        with open(temporary, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())  # on disk before the rename, so a power cut cannot leave an empty "complete" file
        os.replace(temporary, path)
    except (OSError, RuntimeError) as error:  # a full disk inside torch.save is a RuntimeError ("unexpected pos ...")
        temporary.unlink(missing_ok=True)
        if is_disk_full(error) or free_bytes(path.parent) < needed:
            raise disk_full(path.parent, needed, f"the checkpoint {path.name}",
                            " Nothing was lost: the model in memory is unchanged; to keep it, save it elsewhere with "
                            "helpers.train.save_checkpoint('<a folder on another disk>/" + path.name + "', model).") from error
        if isinstance(error, OSError):
            raise OSError(f"{path}: the checkpoint could not be saved ({error}); the previous one, if any, is unchanged") from error
        raise
    finally:
        temporary.unlink(missing_ok=True)
    return path


def set_aside(path: str | Path, problem: str) -> Path:
    """Rename a damaged file or folder to <name>.damaged-<date>-<time> (never delete it), say so, and return the new path."""
    path = Path(path)
    aside = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
    path.replace(aside)
    print(f"{path} is damaged ({problem}); moved aside to {aside.name} (delete it once you no longer need it); making it again")
    return aside


WAIT_REPORT_S = 60  # while another process holds a lock, say every minute that this one still waits


@contextmanager
def exclusive(lock_path: str | Path, what: str):
    """Hold a file lock on `lock_path` while doing `what` (e.g. "pretraining the course's BERT").

    A process that finds it held says who holds it (process, machine, since when: the holder writes
    that beside the lock) and that it waits, then says so again every WAIT_REPORT_S seconds.
    """
    lock_path = Path(lock_path)
    lock_path.parent.mkdir(parents=True, exist_ok=True)  # older filelock releases do not create it
    holder_file = lock_path.with_name(lock_path.name + ".holder")
    lock = FileLock(lock_path)
    started = time.monotonic()
    try:
        lock.acquire(timeout=0)
    except Timeout:
        try:
            holder = holder_file.read_text(encoding="utf-8").strip()
        except OSError:
            holder = "a process that did not say who it is"
        print(f"Waiting: {holder} is {what} ({lock_path} is locked); this one loads the result when it is done.", flush=True)
        while True:
            try:
                lock.acquire(timeout=WAIT_REPORT_S)
                break
            except Timeout:
                print(f"  still waiting for {holder} ({time.monotonic() - started:.0f} s so far)", flush=True)
    try:
        try:
            holder_file.write_text(f"process {os.getpid()} on {socket.gethostname()} (since {time.strftime('%H:%M:%S')})", encoding="utf-8")
        except OSError:
            pass  # the note is a courtesy; the lock is what matters
        yield
    finally:
        holder_file.unlink(missing_ok=True)
        lock.release()


def load_checkpoint(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer | None = None, map_location="cpu") -> dict:
    """Load a checkpoint written by `save_checkpoint` into `model` (and `optimizer`); returns the extras.

    Uses `torch.load(..., weights_only=True)`, which refuses to run code stored in the file. Before
    anything is copied, checks the file's format, every tensor's SHA-256, and that its names and
    shapes are the model's (and its parameter groups the optimiser's): a mismatch raises a
    CheckpointError naming the file and the first differing key, and leaves the model untouched.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(error))
        if found is None:
            raise CheckpointError(f"{path}: not a readable checkpoint (UnpicklingError: {str(error).splitlines()[0]})") from None
        raise CheckpointError(  # torch's own message goes on to suggest weights_only=False: never ours to give
            f"{path}: holds a Python object of type {found.group(1)}, which a safe load (weights_only=True) refuses because "
            f"loading it could run code. helpers.train.save_checkpoint stores only {SAFE_TYPES}: save the model again "
            "with it, or load the file with the tool that wrote it"
        ) from None
    except Exception as error:
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(error).__name__}: {error})") from error
    _check_format(path, state)
    _check_integrity(path, state)
    _check_architecture(path, model, state["model"])
    optimizer_state = state.get("optimizer")
    if optimizer is not None:
        if optimizer_state is None:
            raise CheckpointError(f"{path}: holds no optimiser state (it was saved without one)")
        _check_optimizer(path, optimizer, optimizer_state)
    model.load_state_dict(state["model"])
    if optimizer is not None:
        optimizer.load_state_dict(optimizer_state)
    return {key: value for key, value in state.items() if key not in ("model", "optimizer", CHECKSUMS)}


def _check_format(path: Path, state) -> None:
    if isinstance(state, dict) and state and all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(
            f"{path}: a plain state_dict ({len(state)} tensors, the first {next(iter(state))!r}), not a checkpoint of "
            "helpers.train.save_checkpoint; load it with model.load_state_dict(torch.load(path, weights_only=True))"
        )
    if not isinstance(state, dict) or not isinstance(state.get("model"), dict):
        found = f"a dict with keys {list(state)[:8]}" if isinstance(state, dict) else f"a {type(state).__name__}"
        raise CheckpointError(f"{path}: not a checkpoint of helpers.train.save_checkpoint (it holds {found}, no 'model' state)")


def _check_integrity(path: Path, state: dict) -> None:
    record = state.get(CHECKSUMS)
    if record is None:
        print(f"{path}: written by an older version of the course, without checksums: loaded unverified (save it again to add them)")
        return
    if isinstance(record.get("version"), int) and record["version"] > FORMAT_VERSION:
        print(f"{path}: written by a newer version of the course (checkpoint format {record['version']}; this copy knows "
              f"formats up to {FORMAT_VERSION}): its tensors are checked and loaded; update the course (git pull) to use all of it")
    stored = dict(record.get("sha256", {}))
    actual = _checksums({key: value for key, value in state.items() if key != CHECKSUMS})
    for where in [*stored, *actual]:
        if stored.get(where) != actual.get(where):
            what = "is missing from the file" if where not in actual else "has no stored checksum" if where not in stored else "does not match its SHA-256"
            raise CheckpointError(
                f"{path}: damaged: {where.lstrip('/')} {what} (a changed bit on disk or in a copy); "
                "nothing was loaded. Save or copy the checkpoint again."
            )


def _check_architecture(path: Path, model: nn.Module, saved: dict) -> None:
    expected = model.state_dict()
    for key in [*expected, *saved]:
        if key not in saved:
            raise CheckpointError(f"{path}: made for another architecture: the model has {key!r} {tuple(expected[key].shape)}, the file does not; the model was left unchanged")
        if key not in expected:
            raise CheckpointError(f"{path}: made for another architecture: the file has {key!r} {tuple(saved[key].shape)}, the model does not; the model was left unchanged")
        if tuple(saved[key].shape) != tuple(expected[key].shape):
            raise CheckpointError(
                f"{path}: made for another architecture: {key!r} is {tuple(saved[key].shape)} in the file but "
                f"{tuple(expected[key].shape)} in the model; the model was left unchanged"
            )


def _check_optimizer(path: Path, optimizer: torch.optim.Optimizer, saved: dict) -> None:
    ours = [len(group["params"]) for group in optimizer.param_groups]
    theirs = [len(group["params"]) for group in saved.get("param_groups", [])]
    if ours != theirs:
        raise CheckpointError(
            f"{path}: its optimiser state has parameter groups of sizes {theirs}, this optimiser {ours}; nothing was loaded"
        )
