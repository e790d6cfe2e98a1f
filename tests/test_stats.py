import math

import pytest
import torch
from scipy.stats import binomtest, ttest_rel

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


def test_the_paired_t_interval_is_scipys_for_the_differences():
    a, b = [0.61, 0.58, 0.64, 0.55, 0.60], [0.57, 0.59, 0.58, 0.50, 0.56]
    mean, low, high = stats.paired_t_interval(a, b)
    expected = ttest_rel(a, b).confidence_interval(0.95)
    assert math.isclose(low, expected.low, rel_tol=1e-9) and math.isclose(high, expected.high, rel_tol=1e-9)
    assert math.isclose(mean, 0.036, abs_tol=1e-12)
    # Luck both arms share at a seed cancels: moving both arms' result at seed i by the same amount changes nothing.
    shifted = [x + 0.1 * i for i, x in enumerate(a)], [y + 0.1 * i for i, y in enumerate(b)]
    assert stats.paired_t_interval(*shifted) == pytest.approx((mean, low, high))
    assert stats.paired_t_interval(a, b, 0.99)[1] < low
    with pytest.raises(ValueError, match="one per seed"):
        stats.paired_t_interval([0.5], [0.4])
