"""Lesson 07's speed-ups, measured side by side: mixed precision, torch.compile, two DDP processes.

    python -m benchmarks.bench_scaling

Training steps of lesson 02's network (`helpers.models.MnistCNN`, AdamW, batches of 128 MNIST-sized
images) in float32, under `torch.autocast` with bfloat16 (CPU) or float16 with a gradient scaler
(CUDA), and compiled with `torch.compile`; then lesson 07's data-parallel script (`helpers.ddp`)
with one and with two processes on the CPU (gloo backend), timed from launch to exit. Each variant
is warmed up first (for torch.compile that includes the compilation, reported separately).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.nn import functional as F

from benchmarks.report import write_section
from helpers import config, models

STEPS, BATCH = 30, 128


def seconds_per_step(model, device, amp_dtype=None) -> float:
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(BATCH, 1, 28, 28, generator=generator).to(device)
    y = torch.randint(0, 10, (BATCH,), generator=generator).to(device)

    def step():
        optimizer.zero_grad()
        with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            loss = F.cross_entropy(model(x), y)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    for _ in range(3):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(STEPS):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - started) / STEPS


def ddp_seconds(processes: int) -> float:
    out = Path(tempfile.mkdtemp()) / "ddp.pt"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
               "-m", "helpers.ddp", "--out", str(out), "--images", "4000", "--global-batch", "100", "--epochs", "2"]
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": str(max(1, os.cpu_count() // processes))})
    return time.perf_counter() - started


def main() -> None:
    device = config.choose_device()
    amp_dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    rows = ["| variant | ms per training step | relative to float32 |", "|---|---|---|"]
    torch.manual_seed(0)
    fp32 = seconds_per_step(models.MnistCNN().to(device), device)
    rows.append(f"| float32, eager | {fp32 * 1e3:.1f} | 1.00x |")
    amp = seconds_per_step(models.MnistCNN().to(device), device, amp_dtype)
    rows.append(f"| autocast {str(amp_dtype).replace('torch.', '')}, eager | {amp * 1e3:.1f} | {fp32 / amp:.2f}x |")
    try:
        compiled_model = torch.compile(models.MnistCNN().to(device))
        started = time.perf_counter()
        compiled = seconds_per_step(compiled_model, device)
        compile_note = f"(compilation and warm-up: {time.perf_counter() - started - STEPS * compiled:.0f} s; less when torch's on-disk cache of compiled code is warm)"
        rows.append(f"| float32, torch.compile {compile_note} | {compiled * 1e3:.1f} | {fp32 / compiled:.2f}x |")
    except Exception as error:  # any failure to compile means "not available on this platform"
        rows.append(f"| float32, torch.compile | not available: {type(error).__name__} | |")
    one, two = ddp_seconds(1), ddp_seconds(2)
    body = "\n".join(rows) + (
        f"\n\nMnistCNN, batches of {BATCH}, {STEPS} timed steps after warm-up, on {device} "
        f"({torch.get_num_threads()} threads), torch {torch.__version__}.\n\n"
        "| `helpers.ddp` on the CPU (4,000 images, 2 epochs, global batch 100) | seconds, launch to exit |\n|---|---|\n"
        f"| 1 process | {one:.1f} |\n| 2 processes (gloo) | {two:.1f} |\n\n"
        "Two processes on one CPU share its cores, so they are not expected to be faster; the point of the "
        "run is that they compute the same thing (lesson 07 asserts it). On several GPUs each process has its own device."
    )
    print(body)
    write_section("scaling", body)


if __name__ == "__main__":
    main()
