import math

import pytest
import torch
from scipy.stats import binomtest

from helpers import stats


@pytest.mark.parametrize("b, c", [(0, 0), (1, 0), (5, 5), (12, 3), (3, 12), (55, 23), (147, 21)])
def test_mcnemar_is_the_exact_binomial_test_on_the_disagreements(b, c):
    agree = 40
    right_a = torch.tensor([1] * b + [0] * c + [1] * agree + [0] * agree)
    right_b = torch.tensor([0] * b + [1] * c + [1] * agree + [0] * agree)
    got_b, got_c, p = stats.mcnemar(right_a, right_b)
    assert (got_b, got_c) == (b, c), "the sentences both got right (or both wrong) carry no information"
    expected = binomtest(min(b, c), b + c, 0.5).pvalue if b + c else 1.0
    assert math.isclose(p, expected, rel_tol=1e-9)
    assert stats.mcnemar(right_b, right_a)[2] == p  # two-sided: the order of the methods does not matter


def test_mcnemar_refuses_methods_scored_on_different_examples():
    with pytest.raises(ValueError, match="different examples"):
        stats.mcnemar(torch.ones(5), torch.ones(6))
