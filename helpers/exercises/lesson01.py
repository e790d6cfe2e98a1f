"""The checks of lesson 01's exercises."""

from __future__ import annotations

import numpy as np
import torch

from helpers.exercises.common import fail, require, titled, verdict


@titled("Exercise 01.1 (normalisation statistics)")
def check_normalisation(exercise, dataset, mean, std) -> None:
    pixels = dataset.data.double() / 255
    expected_mean, expected_std = pixels.mean().item(), pixels.std().item()
    for name, value in (("mean", mean), ("std", std)):
        if not isinstance(value, float):
            fail(exercise, f"`{name}` should be a Python float, not {type(value).__name__} (use `.item()`)")
    if mean > 1:
        fail(exercise, "the pixels are bytes from 0 to 255: divide by 255 first")
    per_image = pixels.flatten(1).std(dim=1).mean().item()
    if abs(std - per_image) < 1e-4:
        fail(exercise, "that is the average of the per-image standard deviations; take the std over all pixels at once")
    verdict(
        abs(mean - expected_mean) < 1e-4 and abs(std - expected_std) < 1e-4,
        exercise,
        "use every training pixel, scaled to [0, 1], all at once: one mean and one standard deviation over the whole tensor",
    )


@titled("Exercise 01.2 (a dataset over class folders)")
def check_class_folders(exercise, dataset_class, root) -> None:
    from pathlib import Path

    from PIL import Image

    expected = sorted((p, int(p.parent.name)) for p in Path(root).glob("*/*.png"))
    dataset = dataset_class(root)
    require(len(dataset) == len(expected), exercise, f"`len()` gives {len(dataset)}, but there are {len(expected)} images: glob '*/*.png' under root")
    for index, (path, label) in enumerate(expected):
        image, got = dataset[index]
        if not isinstance(got, int):
            fail(exercise, f"labels should be int, not {type(got).__name__}: convert the folder name with int()")
        if not isinstance(image, Image.Image) or image.mode != "L":
            fail(exercise, "without a transform, return the PIL image converted with .convert('L')")
        with Image.open(path) as truth:
            same_pixels = np.array_equal(np.array(truth.convert("L")), np.array(image))
        if not same_pixels or got != label:
            fail(exercise, f"item {index} should be {path.parent.name}/{path.name}: sort the (path, label) pairs so the order is fixed")
    marker = object()
    transformed, _ = dataset_class(root, transform=lambda image: marker)[0]
    verdict(transformed is marker, exercise, "apply `transform` to the image when one is given")


@titled("Exercise 01.3 (stratified split)")
def check_stratified_split(exercise, split_function, labels) -> None:
    for fraction in (0.1, 0.25):
        train, val = split_function(labels, fraction, torch.Generator().manual_seed(0))
        train, val = [int(i) for i in train], [int(i) for i in val]
        if set(train) & set(val):
            fail(exercise, "an index appears in both parts: the parts must be disjoint")
        if sorted(train + val) != list(range(len(labels))):
            fail(exercise, "together the two parts must hold every index exactly once")
        for c in labels.unique().tolist():
            count = int((labels == c).sum())
            in_val = int((labels[val] == c).sum())
            if in_val != round(fraction * count):
                fail(exercise, f"class {c}: {in_val} validation examples, expected round({fraction} * {count}) = {round(fraction * count)}")
    first = split_function(labels, 0.1, torch.Generator().manual_seed(0))[1]
    again = split_function(labels, 0.1, torch.Generator().manual_seed(0))[1]
    other = split_function(labels, 0.1, torch.Generator().manual_seed(1))[1]
    if sorted(map(int, first)) != sorted(map(int, again)):
        fail(exercise, "the same seed should give the same split: draw with torch.randperm(..., generator=generator)")
    verdict(sorted(map(int, first)) != sorted(map(int, other)), exercise, "a different seed should give a different split: choose the examples at random")
