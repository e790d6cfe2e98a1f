"""Training, evaluation, metrics and checkpoints: lesson 02's loop, made reusable.

`fit` is the loop that lesson 02 writes out in full (zero_grad, forward, loss, backward, step),
plus what every later lesson wants around it: a progress bar, a history of the loss and accuracy,
an optional validation set, learning-rate scheduler and TensorBoard writer, and a clear stop when
the loss stops being a number.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler, TensorDataset
from tqdm.auto import tqdm


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
                raise FloatingPointError(
                    f"the loss is {loss.item()} at epoch {epoch}, batch {batch_index} (optimiser step {step}); "
                    "training stopped. Lower the learning rate, or check the inputs of this batch for NaN or inf."
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
        history["lr"].append(optimizer.param_groups[0]["lr"])
        if scheduler is not None and scheduler_per == "epoch":
            scheduler.step()
        history["train_loss"].append(loss_sum / seen)
        history["train_accuracy"].append(correct / seen)
        line = f"epoch {epoch}/{epochs}: train loss {loss_sum / seen:.4f}, accuracy {correct / seen:.2%}"
        if val_loader is not None:
            val = evaluate(model, val_loader, loss_fn, device)
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
    """Mean loss and accuracy of `model` over `loader`."""
    logits, targets = predict(model, loader, device)
    return {"loss": loss_fn(logits, targets).item(), "accuracy": accuracy(logits.argmax(dim=1), targets)}


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


def save_checkpoint(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer | None = None, **extra) -> Path:
    """Save the model (and optimiser) state plus `extra` values (epoch, metrics, ...) atomically.

    The file is written under a temporary name and renamed at the end, so an interrupted save
    leaves the previous checkpoint intact instead of a corrupt one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict() if optimizer is not None else None, **extra}
    partial = path.with_name(path.name + ".partial")
    try:
        torch.save(state, partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def load_checkpoint(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer | None = None, map_location="cpu") -> dict:
    """Load a checkpoint written by `save_checkpoint` into `model` (and `optimizer`); returns the extras.

    Uses `torch.load(..., weights_only=True)`, which refuses to run code stored in the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:
        raise ValueError(f"{path}: not a readable checkpoint ({type(error).__name__}: {error})") from error
    model.load_state_dict(state.pop("model"))
    optimizer_state = state.pop("optimizer", None)
    if optimizer is not None:
        if optimizer_state is None:
            raise ValueError(f"{path}: holds no optimiser state")
        optimizer.load_state_dict(optimizer_state)
    return state
