"""The checks of lesson 00's exercises."""

from __future__ import annotations

import torch

from helpers.exercises.common import fail, titled, verdict


@titled("Exercise 00.1 (fraction of zero pixels)")
def check_zero_fraction(exercise, dataset, zero_fraction) -> None:
    expected = (dataset.data == 0).double().mean().item()
    if not isinstance(zero_fraction, (float, int)) or isinstance(zero_fraction, bool):
        fail(exercise, f"give a Python float, not {type(zero_fraction).__name__} (`.item()` turns a 1-element tensor into one)")
    if 1 < zero_fraction <= 100 and abs(zero_fraction / 100 - expected) < 1e-4:
        fail(exercise, "that is a percentage: give a fraction between 0 and 1")
    if abs(zero_fraction - (1 - expected)) < 1e-4:
        fail(exercise, "that is the fraction of pixels that are *not* zero")
    verdict(abs(zero_fraction - expected) < 1e-4, exercise, "a fraction of all pixels: which pixels in `dataset.data` count, and what do you divide by?")


@titled("Exercise 00.2 (brightest class)")
def check_brightest_class(exercise, dataset, brightest_class) -> None:
    means = torch.stack([dataset.data[dataset.targets == c].double().mean() for c in range(len(dataset.classes))])
    if not isinstance(brightest_class, str):
        fail(exercise, f"give the class name, such as dataset.classes[i], not a {type(brightest_class).__name__}")
    if brightest_class == dataset.classes[int(means.argmin())]:
        fail(exercise, "that is the darkest class: you want the largest mean, not the smallest")
    verdict(
        brightest_class == dataset.classes[int(means.argmax())],
        exercise,
        "compute one mean pixel value per class (select the images with `dataset.targets == c`) and take the largest",
    )
