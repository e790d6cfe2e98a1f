"""Comparing two classifiers on the same test examples (lesson 08 writes McNemar's test, lesson 10 uses it), and
two training recipes over the same seeds (lesson 05 writes the paired Student's t interval, lesson 09 uses it).

Two methods scored on the same sentences are *paired*: only the sentences where they disagree say
which is better. McNemar's exact test counts them, b (the first right, the second wrong) and c (the
other way round); if the two were equally good, b ~ Binomial(b + c, 1/2).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

import torch


def mcnemar(right_a: torch.Tensor, right_b: torch.Tensor) -> tuple[int, int, float]:
    """(b, c, the exact two-sided p-value) for two 0/1 tensors saying which examples each method got right."""
    if right_a.shape != right_b.shape:
        raise ValueError(f"the two methods were scored on different examples: shapes {tuple(right_a.shape)} and {tuple(right_b.shape)}")
    b = int(((right_a == 1) & (right_b == 0)).sum())
    c = int(((right_a == 0) & (right_b == 1)).sum())
    n, k = b + c, min(b, c)
    p = min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n) if n else 1.0
    return b, c, p


def paired_t_interval(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high) of the per-seed differences a[i] - b[i], with Student's t interval at `confidence`.

    Two arms run on the same seeds (the same data draw, initial weights and batch order at each seed) are paired:
    the spread that matters is the spread of their differences, not of each arm alone.
    """
    from scipy.stats import t as student_t

    if len(a) != len(b) or len(a) < 2:
        raise ValueError(f"need two or more paired results, one per seed for each arm; got {len(a)} and {len(b)}")
    differences = [float(x) - float(y) for x, y in zip(a, b)]
    mean = statistics.mean(differences)
    half = student_t.ppf((1 + confidence) / 2, len(differences) - 1) * statistics.stdev(differences) / math.sqrt(len(differences))
    return mean, mean - half, mean + half
