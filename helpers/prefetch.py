"""Fetch everything the course downloads, ahead of a class: `python -m helpers.prefetch`.

Run it once while a network is there (`make prefetch`); afterwards the lessons find the full
datasets in the data root, lesson 05 its pretrained ResNet-18 (ImageNet's in the torch cache,
or, where those cannot be had, the course's own, pretrained here once), and lesson 09 its BERT
(Google's BERT-Tiny in the Hugging Face cache, and the course's own, pretrained here once), and run
without a network.
Exits with status 1 when a dataset could only be had as the embedded sample, so a teacher knows
before the class, not during it.
"""

from __future__ import annotations

import os
import sys
from types import SimpleNamespace

from helpers import config, data, lm, pretrained


def main() -> int:
    os.environ["COURSE_OFFLINE"] = "0"
    print(f"Fetching into {config.data_root()}")
    missing = []
    for name, load in (("MNIST", data.load_mnist), ("Fashion-MNIST", data.load_fashion_mnist)):
        for train in (True, False):
            if "embedded sample" in load(train=train).source:
                missing.append(f"{name} {'train' if train else 'test'}")
    networks = {  # lesson 05 pretrains on Fashion-MNIST's first five classes; lesson 06 uses all ten
        "lesson 05's ResNet-18 (ImageNet's, if it can be had)": lambda: pretrained.load_pretrained_resnet18(),
        "lesson 05's ResNet-18 (Fashion-MNIST classes 0-4)": lambda: pretrained.course_pretrained_resnet18(classes=(0, 1, 2, 3, 4)),
        "lesson 06's ResNet-18 (Fashion-MNIST, all classes)": lambda: pretrained.course_pretrained_resnet18(),
        # lesson 09: the course's own BERT (pretrained on WordNet, for this mode's budget) and, if reachable, the Hub's
        "lesson 09's own BERT": lambda: SimpleNamespace(source=str(lm.course_language_model())),
        "lesson 09's BERT (the Hub's, if it can be had)": lambda: lm.load_language_model(),
    }
    for name, build in networks.items():
        try:
            print(f"{name}: {build().source}")
        except PermissionError as error:  # a read-only checkpoint root: said before any pretraining
            print(f"{name}: not built: {error}")
            missing.append(name)
    if missing:
        print(f"Only the embedded sample is available for: {', '.join(missing)}. Connect to a network "
              "(and check that the data root and checkpoint root can be written to), then run again.")
        return 1
    print("Everything is in place: the course now runs without a network.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
