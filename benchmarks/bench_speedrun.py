"""How fast can a CPU train a network to 99 % test accuracy on full MNIST? A speed recipe and its ablation.

The recipe (`RECIPE` below, every ingredient an argument) trains `helpers.models.SpeedNet`, the
network lesson 07 builds: the image cropped to its central 24x24, three narrow 3x3 convolution
blocks (8/16/48 channels; the first at stride 2, the others pooling before batch norm and ReLU)
and one linear layer, in channels-last memory, on the whole of MNIST held in memory as one
normalised tensor, with Nesterov SGD, label smoothing 0.1 and a triangular (one-cycle)
learning-rate schedule planned for 1.5 epochs; it usually reaches 99 % at about one epoch. The race
stops the clock while it measures the test accuracy (every quarter epoch, then every eighth once
past half an epoch) and records the training time at which the accuracy first reaches the target.

`--examples` first races pytorch/examples' MNIST recipe (up to its own 14 epochs) and lesson 02's
recipe (its 5 epochs), seed 0 each, in the same process and with the same threads: the speed-ups
over pytorch/examples are ratios from this one run. Then the ablation: the recipe again with ONE
ingredient removed or changed at a time, each over several seeds (the median time to the target,
and how many seeds reached it); a variant is stopped once its training time passes `--cap` times
the recipe's median, so slow rows cost little. Last, the floor: the recipe's multiply-adds per
epoch divided by the rate this machine achieves on the same convolutions and on a 512x512 matrix
product, against the measured seconds per epoch.

    COURSE_DATA_ROOT=build/full-data python -m benchmarks.bench_speedrun [--threads 2] [--seeds 3]
        [--examples] [--only 0,4,16] [--cap 3] [--write] [--skip-without-data]

`--only` picks rows by number (0 is the recipe, which the caps and ratios need); `--write` writes
the tables into benchmarks/README.md (between its `speedrun` markers); `--skip-without-data` says so
and exits 0 when the data root holds only the embedded sample (what `make bench` uses).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import statistics
import time

import torch
from torch import nn
from torch.nn import functional as F

from helpers import config, data
from helpers.models import SpeedNet

MEAN, STD = 0.1307, 0.3081  # MNIST's pixel mean and standard deviation (of x / 255)


# --- The recipe ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Recipe:
    """Every ingredient of a training run; `dataclasses.replace(RECIPE, ...)` changes one."""

    widths: tuple[int, ...] = (8, 16, 48)  # channels of each 3x3 convolution block
    first_stride: int = 2  # 2: the first convolution itself halves the resolution (and skips its pool)
    crop: int = 2  # pixels of empty border cut from each side: 28x28 -> 24x24
    pool_before_norm: bool = True  # conv, pool, batch norm, ReLU: batch norm and ReLU see a quarter of the values
    batch_norm: bool = True
    batch_size: int = 128
    optimizer: str = "sgd"  # "sgd" (Nesterov, momentum 0.9) or "adamw"
    peak_lr: float = 0.2
    schedule: str = "triangular"  # or "constant" (the peak rate throughout, no warm-up and no decay)
    warmup: float = 0.2  # fraction of the planned steps spent rising to the peak
    epochs: float = 1.5  # length of the planned schedule (the race may stop earlier)
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    ema: float = 0.0  # 0: no averaging of weights; else the decay of an exponential moving average
    channels_last: bool = True
    bfloat16: bool = False  # autocast the forward pass to bfloat16
    compile: bool = False
    in_memory: bool = True  # False: torchvision's dataset with per-image ToTensor/Normalize in a DataLoader


RECIPE = Recipe()


def speed_net(recipe: Recipe) -> nn.Module:
    return SpeedNet(recipe.widths, recipe.first_stride, recipe.batch_norm, recipe.crop, recipe.pool_before_norm)


def multiply_adds(model: nn.Module, image_shape=(1, 28, 28)) -> tuple[int, list[tuple[nn.Module, tuple]]]:
    """Multiply-adds of one forward pass for one image (convolutions and linears only), and their input shapes."""
    total, shapes, hooks = [0], [], []

    def count(module, inputs, output):
        if isinstance(module, nn.Conv2d):
            total[0] += output[0].numel() * (module.in_channels // module.groups) * math.prod(module.kernel_size)
        else:
            total[0] += module.in_features * module.out_features
        shapes.append((module, tuple(inputs[0].shape[1:])))

    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            hooks.append(module.register_forward_hook(count))
    with torch.no_grad():
        model.eval()(torch.zeros(1, *image_shape))
    for hook in hooks:
        hook.remove()
    return total[0], shapes


# --- Data ---------------------------------------------------------------------------------------


def load_full_mnist():
    """Full MNIST as normalised float tensors (N, 1, 28, 28) and labels; refuses the embedded sample."""
    train_set, test_set = data.load_mnist(train=True), data.load_mnist(train=False)
    if len(train_set) != 60_000 or len(test_set) != 10_000:
        raise SystemExit(
            f"bench_speedrun needs the full MNIST (60,000 + 10,000 images), found {len(train_set):,} + {len(test_set):,} "
            f"from {train_set.source}; set COURSE_DATA_ROOT to a folder holding MNIST/raw (see benchmarks/README.md)"
        )

    def normalise(images):
        return ((images.unsqueeze(1).float() / 255) - MEAN) / STD

    return normalise(train_set.data), train_set.targets, normalise(test_set.data), test_set.targets


def per_image_batches(generator, batch_size):
    """The slow way, for the ablation: torchvision's dataset, per-image PIL -> tensor transforms, a DataLoader."""
    from torch.utils.data import DataLoader
    from torchvision import transforms

    dataset = data.load_mnist(train=True, transform=transforms.Compose([transforms.ToTensor(), transforms.Normalize((MEAN,), (STD,))]))
    return DataLoader(dataset, batch_size=batch_size, shuffle=True, generator=generator, drop_last=True)


# --- The race -----------------------------------------------------------------------------------


@torch.inference_mode()
def test_accuracy(model, test_x, test_y, channels_last, bfloat16):
    model.eval()
    correct = 0
    for start in range(0, len(test_x), 2000):
        x = test_x[start : start + 2000]
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bfloat16):
            correct += (model(x).argmax(1) == test_y[start : start + 2000]).sum().item()
    model.train()
    return correct / len(test_x)


def race(recipe: Recipe, seed: int, tensors, target=0.99, max_epochs=3.0, max_seconds=math.inf, verbose=False) -> dict:
    """Train `recipe` until the test accuracy reaches `target`; training seconds (clock stopped while testing)."""
    train_x, train_y, test_x, test_y = tensors
    generator = config.seed_everything(seed)
    model = speed_net(recipe)
    if recipe.channels_last:
        model = model.to(memory_format=torch.channels_last)
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        (no_decay if parameter.ndim == 1 else decay).append(parameter)
    groups = [{"params": decay, "weight_decay": recipe.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if recipe.optimizer == "sgd":
        optimizer = torch.optim.SGD(groups, lr=0.0, momentum=0.9, nesterov=True)
    elif recipe.optimizer == "adamw":
        optimizer = torch.optim.AdamW(groups, lr=0.0)
    else:
        raise ValueError(f"Recipe.optimizer must be 'sgd' or 'adamw', not {recipe.optimizer!r}")
    averaged = torch.optim.swa_utils.AveragedModel(model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(recipe.ema), use_buffers=True) if recipe.ema else None
    step_fn = model
    compile_s = 0.0
    if recipe.compile:
        started = time.perf_counter()
        step_fn = torch.compile(model)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=recipe.bfloat16):  # compile outside the clock
            F.cross_entropy(step_fn(train_x[: recipe.batch_size]), train_y[: recipe.batch_size]).backward()
        optimizer.zero_grad(set_to_none=True)
        compile_s = time.perf_counter() - started
    steps_per_epoch = len(train_x) // recipe.batch_size
    planned = round(recipe.epochs * steps_per_epoch)
    rise = max(1, round(recipe.warmup * planned))

    def lr_at(step):  # triangular: 0 -> peak over `rise` steps, then linearly down to 0 at `planned`
        if recipe.schedule == "constant":
            return recipe.peak_lr
        return recipe.peak_lr * (step / rise if step < rise else max(0.0, (planned - step) / (planned - rise)))

    checks = {round(steps_per_epoch * k / 8) for k in range(2, 9, 2)} | {round(steps_per_epoch * k / 8) for k in range(4, 9)}
    elapsed, step, accuracy, best = 0.0, 0, 0.0, 0.0
    total_steps = min(planned, round(max_epochs * steps_per_epoch))  # nothing is learnt once the rate is 0
    loader = per_image_batches(generator, recipe.batch_size) if not recipe.in_memory else None
    started = time.perf_counter()
    while step < total_steps:
        batches = iter(loader) if loader is not None else (
            (train_x[idx], train_y[idx]) for idx in torch.randperm(len(train_x), generator=generator)[: steps_per_epoch * recipe.batch_size].view(steps_per_epoch, -1)
        )
        for in_epoch, (x, y) in enumerate(batches, start=1):
            if recipe.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=recipe.bfloat16):
                loss = F.cross_entropy(step_fn(x), y, label_smoothing=recipe.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if averaged is not None:
                averaged.update_parameters(model)
            step += 1
            if in_epoch in checks or step == total_steps:
                elapsed += time.perf_counter() - started
                accuracy = test_accuracy(averaged.module if averaged is not None else model, test_x, test_y, recipe.channels_last, recipe.bfloat16)
                best = max(best, accuracy)
                if verbose:
                    print(f"    epoch {step / steps_per_epoch:.3f}: {elapsed:6.2f} s, test accuracy {accuracy:.2%}", flush=True)
                if accuracy >= target:
                    return {"seconds": elapsed, "epochs": step / steps_per_epoch, "accuracy": accuracy, "reached": True, "compile_s": compile_s}
                if elapsed > max_seconds:
                    break
                started = time.perf_counter()
            if step >= total_steps or elapsed > max_seconds:
                break
        if elapsed > max_seconds:
            break
    return {"seconds": elapsed, "epochs": step / steps_per_epoch, "accuracy": best, "reached": False, "compile_s": compile_s}


# --- The floor ----------------------------------------------------------------------------------


def _seconds(fn, repeats=20):
    for _ in range(3):
        fn()
    started = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - started) / repeats


def floor(recipe: Recipe) -> dict:
    """Multiply-adds per epoch (forward + backward = 3x forward) and the seconds they need at two measured rates."""
    model = speed_net(recipe)
    per_image, shapes = multiply_adds(model)
    per_epoch = 3 * per_image * 60_000
    size = 512
    a, b = torch.randn(size, size), torch.randn(size, size)
    matmul_rate = size**3 / _seconds(lambda: a @ b, 50)  # multiply-adds per second
    layers_s = 0.0  # the convolutions and linears alone, forward and backward, at the recipe's batch size
    for module, shape in shapes:
        layer = type(module)(**_constructor_args(module))
        x = torch.randn(recipe.batch_size, *shape, requires_grad=True)
        if recipe.channels_last and x.ndim == 4:
            layer, x = layer.to(memory_format=torch.channels_last), x.detach().contiguous(memory_format=torch.channels_last).requires_grad_()
        out = layer(x)
        grad = torch.randn_like(out)
        layers_s += _seconds(lambda layer=layer, x=x, grad=grad: layer(x).backward(grad))
    steps = 60_000 // recipe.batch_size
    return {"mac_per_image": per_image, "mac_per_epoch": per_epoch, "matmul_rate": matmul_rate,
            "matmul_floor_s": per_epoch / matmul_rate, "layers_s": layers_s * steps, "layers_rate": per_epoch / (layers_s * steps)}


def _constructor_args(module):
    if isinstance(module, nn.Conv2d):
        return {"in_channels": module.in_channels, "out_channels": module.out_channels, "kernel_size": module.kernel_size,
                "stride": module.stride, "padding": module.padding, "bias": module.bias is not None}
    return {"in_features": module.in_features, "out_features": module.out_features}


# --- The ablation -------------------------------------------------------------------------------


def ablation_rows(threads: int) -> list[tuple[str, Recipe, int]]:
    """(what changed, the recipe with that one change, threads) for every row of the table."""
    r, replace = RECIPE, dataclasses.replace
    other = 1 if threads > 1 else 2
    return [
        ("the recipe", r, threads),
        ("widths 8/16/32 (narrower last block)", replace(r, widths=(8, 16, 32)), threads),
        ("widths 8/16/64 (wider last block)", replace(r, widths=(8, 16, 64)), threads),
        ("widths 12/24/48 (wider first blocks)", replace(r, widths=(12, 24, 48)), threads),
        ("widths 8/16, two blocks (shallower)", replace(r, widths=(8, 16)), threads),
        ("first convolution stride 1, then max-pool", replace(r, first_stride=1), threads),
        ("no crop (28x28 input)", replace(r, crop=0), threads),
        ("pool after batch norm and ReLU", replace(r, pool_before_norm=False), threads),
        ("no batch norm", replace(r, batch_norm=False), threads),
        ("no batch norm, peak rate x0.5", replace(r, batch_norm=False, peak_lr=r.peak_lr / 2), threads),
        ("batch 64", replace(r, batch_size=64), threads),
        ("batch 256", replace(r, batch_size=256), threads),
        ("batch 256, peak rate x2", replace(r, batch_size=256, peak_lr=2 * r.peak_lr), threads),
        ("constant rate (no one-cycle)", replace(r, schedule="constant"), threads),
        ("one-cycle peak x0.5", replace(r, peak_lr=r.peak_lr / 2), threads),
        ("one-cycle peak x2", replace(r, peak_lr=2 * r.peak_lr), threads),
        ("one-cycle over 1 epoch", replace(r, epochs=1.0), threads),
        ("one-cycle over 2 epochs", replace(r, epochs=2.0), threads),
        ("no label smoothing", replace(r, label_smoothing=0.0), threads),
        ("AdamW, peak 0.01", replace(r, optimizer="adamw", peak_lr=0.01), threads),
        ("EMA of the weights (decay 0.99)", replace(r, ema=0.99), threads),
        ("channels-first memory", replace(r, channels_last=False), threads),
        ("bfloat16 autocast", replace(r, bfloat16=True), threads),
        ("torch.compile (compile time excluded)", replace(r, compile=True), threads),
        (f"{other} thread{'s' if other > 1 else ''}", r, other),
        ("per-image transforms in a DataLoader", replace(r, in_memory=False), threads),
    ]


def describe(recipe: Recipe) -> str:
    changed = [f"{f.name}={getattr(recipe, f.name)!r}" for f in dataclasses.fields(recipe)]
    return ", ".join(changed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--target", type=float, default=0.99)
    parser.add_argument("--cap", type=float, default=3.0, help="stop a run after this many times the recipe's median seconds")
    parser.add_argument("--only", default="", help="comma-separated row numbers (0 is the recipe) to run")
    parser.add_argument("--examples", action="store_true", help="also race pytorch/examples' recipe and lesson 02's (minutes)")
    parser.add_argument("--write", action="store_true", help="write the table into benchmarks/README.md")
    parser.add_argument("--skip-without-data", action="store_true", help="without the full MNIST, say so and exit 0 (make bench)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    try:
        tensors = load_full_mnist()
    except SystemExit as missing:
        if not args.skip_without_data:
            raise
        print(f"bench_speedrun skipped: {missing}")
        return
    print(f"recipe: {describe(RECIPE)}; load average before the run {load:.2f}", flush=True)
    references = race_references(tensors, args.target) if args.examples else []

    rows = ablation_rows(args.threads)
    chosen = [int(i) for i in args.only.split(",")] if args.only else list(range(len(rows)))
    results, cap = [], math.inf
    for index in chosen:
        name, recipe, threads = rows[index]
        torch.set_num_threads(threads)
        runs = []
        for seed in range(args.seeds):
            try:
                runs.append(race(recipe, seed, tensors, args.target, max_seconds=cap))
            except Exception as error:  # one failing variant (say torch.compile without a compiler) must not end the table
                print(f"  [{index}] {name}, seed {seed}: failed with {type(error).__name__}: {error}", flush=True)
                runs.append({"seconds": float("nan"), "epochs": float("nan"), "accuracy": float("nan"), "reached": False, "compile_s": 0.0})
                continue
            run = runs[-1]
            print(f"  [{index}] {name}, seed {seed}: {'reached' if run['reached'] else 'missed'} {run['accuracy']:.2%} after "
                  f"{run['seconds']:.2f} s, {run['epochs']:.3f} epochs" + (f" (compiling: {run['compile_s']:.1f} s)" if recipe.compile else ""), flush=True)
        reached = [run for run in runs if run["reached"]]
        median_s = statistics.median(run["seconds"] for run in reached) if len(reached) * 2 > len(runs) else float("nan")
        if index == 0 and math.isfinite(median_s):
            cap = args.cap * median_s
        results.append((name, threads, runs, median_s))
    torch.set_num_threads(args.threads)

    base = results[0][3] if chosen[0] == 0 else float("nan")
    table = ["| change from the recipe | threads | median s to 99 % | seeds reaching it | median epochs | median final accuracy | time vs recipe |",
             "|---|---|---|---|---|---|---|"]
    for name, threads, runs, median_s in results:
        reached = sum(run["reached"] for run in runs)
        epochs = statistics.median(run["epochs"] for run in runs)
        accuracy = statistics.median(run["accuracy"] for run in runs)
        ratio = f"{median_s / base:.2f}x" if math.isfinite(median_s) and math.isfinite(base) else "-"
        shown = f"{median_s:.2f}" if math.isfinite(median_s) else "not reached"
        table.append(f"| {name} | {threads} | {shown} | {reached}/{len(runs)} | {epochs:.2f} | {accuracy:.2%} | {ratio} |")

    limits = floor(RECIPE)
    recipe_runs = results[0][2] if chosen[0] == 0 else []
    per_epoch = statistics.median(run["seconds"] / run["epochs"] for run in recipe_runs) if recipe_runs else float("nan")
    lines = [
        f"Floor: the recipe's network does {limits['mac_per_image'] / 1e6:.3f} million multiply-adds per image forward, "
        f"{limits['mac_per_epoch'] / 1e9:.1f} billion per epoch with the backward pass (3x forward). At this machine's "
        f"{limits['matmul_rate'] / 1e9:.1f} billion multiply-adds per second on a 512x512 matrix product that is "
        f"{limits['matmul_floor_s']:.2f} s per epoch; the convolutions and linear layer alone, timed at their own shapes, run at "
        f"{limits['layers_rate'] / 1e9:.1f} billion per second, {limits['layers_s']:.2f} s per epoch. The recipe measured "
        f"{per_epoch:.2f} s per epoch: {per_epoch / limits['matmul_floor_s']:.1f}x the matrix-product floor and "
        f"{per_epoch / limits['layers_s']:.1f}x the layers-alone floor (the rest is batch norm, ReLU, pooling, the optimizer and Python).",
    ]
    if references:
        examples_s = references[0][1]
        head = ["| recipe | seconds to 99 % | epochs | test accuracy then | speed-up over pytorch/examples |", "|---|---|---|---|---|"]
        for name, seconds, epochs, accuracy in references:
            head.append(f"| {name} | {seconds:.1f} | {epochs:.2f} | {accuracy:.2%} | {examples_s / seconds:.1f}x |")
        runs = results[0][2] if chosen[0] == 0 else []
        reached = sorted(run["seconds"] for run in runs if run["reached"])
        head.append(f"| the speed recipe (median of {len(runs)} seeds; {len(reached)} reached 99 %"
                    + (f", {reached[0]:.2f} to {reached[-1]:.2f} s" if reached else "") + f") | {base:.2f} | "
                    f"{statistics.median(run['epochs'] for run in runs):.2f} | {statistics.median(run['accuracy'] for run in runs):.2%} | "
                    f"{examples_s / base:.1f}x |")
        table = head + ["", "The ablation: the recipe with one change at a time.", ""] + table
    load_after = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    summary = (f"Full MNIST (60,000 training, 10,000 test images), target {args.target:.0%} test accuracy measured with the clock stopped, "
               f"{args.seeds} seeds per row, torch {torch.__version__}, load average {load:.2f} before and {load_after:.2f} after. "
               f"The recipe: {describe(RECIPE)}.")
    body = "\n".join(table) + "\n\n" + "\n\n".join(lines) + "\n\n" + summary
    print("\n" + body)
    if args.write:
        from benchmarks.report import write_section

        write_section("speedrun", body)


def race_references(tensors, target) -> list[tuple[str, float, float, float]]:
    """pytorch/examples' MNIST recipe and lesson 02's, seed 0, on the same data and threads (bench_training's race).

    (name, seconds, epochs, accuracy) each; seconds is nan for a recipe that never reached the target. pytorch/examples
    runs for its own 14 epochs at most, lesson 02's recipe for its 5."""
    from torch.utils.data import DataLoader
    from torchvision import transforms

    from benchmarks.bench_training import ExamplesNet
    from benchmarks.bench_training import race as quarter_epoch_race
    from helpers import models, train

    train_x, train_y, test_x, test_y = tensors
    generator = config.seed_everything(0)
    dataset = data.load_mnist(train=True, transform=transforms.Compose([transforms.ToTensor(), transforms.Normalize((MEAN,), (STD,))]))
    model = ExamplesNet()
    optimizer = torch.optim.Adadelta(model.parameters(), lr=1.0)
    examples = quarter_epoch_race(
        "pytorch/examples", model, DataLoader(dataset, batch_size=64, shuffle=True, generator=generator), optimizer,
        torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7), F.nll_loss, test_x, test_y, target, 14, per_epoch_scheduler=True,
    )
    generator = config.seed_everything(0)
    loader = train.tensor_loader(train_x, train_y, 128, shuffle=True, generator=generator)
    model = models.MnistCNN()
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.01, total_steps=5 * len(loader))
    lesson02 = quarter_epoch_race("lesson 02", model, loader, optimizer, scheduler, F.cross_entropy, test_x, test_y, target, 5,
                                  per_epoch_scheduler=False)
    return [("pytorch/examples (Adadelta, batch 64, per-image transforms; seed 0)", *examples),
            ("lesson 02's recipe (MnistCNN, AdamW one-cycle over 5 epochs, batch 128, in memory; seed 0)", *lesson02)]


if __name__ == "__main__":
    main()
