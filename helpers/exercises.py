"""Checks for the lessons' exercises: one line saying right, or a hint about what is wrong.

A check recomputes the answer its own way and compares; it raises AssertionError with a hint
when the answer is wrong, so that a wrong answer stops the notebook where it happened.
"""

from __future__ import annotations

import torch


def _verdict(ok: bool, exercise: str, hint: str) -> None:
    if not ok:
        raise AssertionError(f"{exercise}: not yet. {hint}")
    print(f"{exercise}: correct.")


# --- Lesson 00 --------------------------------------------------------------------------------


def check_zero_fraction(dataset, zero_fraction) -> None:
    exercise = "Exercise 00.1 (fraction of zero pixels)"
    expected = (dataset.data == 0).double().mean().item()
    if not isinstance(zero_fraction, (float, int)) or isinstance(zero_fraction, bool):
        _verdict(False, exercise, f"give a Python float, not {type(zero_fraction).__name__} (`.item()` turns a 1-element tensor into one)")
    if 1 < zero_fraction <= 100 and abs(zero_fraction / 100 - expected) < 1e-4:
        _verdict(False, exercise, "that is a percentage: give a fraction between 0 and 1")
    if abs(zero_fraction - (1 - expected)) < 1e-4:
        _verdict(False, exercise, "that is the fraction of pixels that are *not* zero")
    _verdict(abs(zero_fraction - expected) < 1e-4, exercise, "count the pixels equal to 0 in `dataset.data` and divide by the number of all pixels")


def check_brightest_class(dataset, brightest_class) -> None:
    exercise = "Exercise 00.2 (brightest class)"
    means = torch.stack([dataset.data[dataset.targets == c].double().mean() for c in range(len(dataset.classes))])
    if not isinstance(brightest_class, str):
        _verdict(False, exercise, f"give the class name, such as dataset.classes[i], not a {type(brightest_class).__name__}")
    if brightest_class == dataset.classes[int(means.argmin())]:
        _verdict(False, exercise, "that is the darkest class: you want the largest mean, not the smallest")
    _verdict(
        brightest_class == dataset.classes[int(means.argmax())],
        exercise,
        "compute one mean pixel value per class (select the images with `dataset.targets == c`) and take the largest",
    )
