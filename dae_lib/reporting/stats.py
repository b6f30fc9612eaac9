"""The one statistic every comparison here uses: the mean of paired differences with a 95 % t interval.

For paired differences d_1..d_n (per test image, or per seed):

    mean = (1/n) sum d_i,     half = t_{0.975, n-1} * sd(d) / sqrt(n)     (sd with n - 1)

so mean +- half is the two-sided 95 % Student t confidence interval of the mean difference. With
one difference the interval is infinite: one pair decides nothing.
"""
from __future__ import annotations

import math

#: The fewest paired test cases on which a claim is judged (table1.claims); below it, or when an
#: interval is not finite, a claim reads "too few test cases to judge". Six, because with fewer not
#: even every image agreeing in sign is significant at the 5 % level (two-sided sign test:
#: p = 2 / 2^n, 0.0625 at n = 5, 0.031 at n = 6): a verdict would rest wholly on the normality the
#: t interval assumes, and its t quantile is 2.57 or more (at n = 2 it is 12.71).
MIN_TEST_CASES = 6

#: Two-sided 95 % Student t quantiles by degrees of freedom (1.96 beyond the table).
_T95 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26, 10: 2.23,
        12: 2.18, 15: 2.13, 20: 2.09, 25: 2.06, 30: 2.04, 40: 2.02, 60: 2.00, 120: 1.98}  # fmt: skip


def t95(dof: int) -> float:
    """The 0.975 quantile of Student's t with ``dof`` degrees of freedom (the table's nearest
    lower entry between its rows, so the interval errs on the wide side)."""
    if dof < 1:
        return float("inf")
    keys = [k for k in _T95 if k <= dof]
    return _T95[max(keys)] if dof <= 120 else 1.96


def mean_interval(d) -> tuple[float, float, int]:
    """(mean, 95 % half-width, n) of the paired differences ``d`` (a pandas Series, NaN dropped)."""
    d = d.dropna()
    n = len(d)
    half = t95(n - 1) * float(d.std(ddof=1)) / math.sqrt(n) if n > 1 else float("inf")
    return float(d.mean()), half, n


def judgeable(n_cases: int, *halves: float) -> bool:
    """Whether a claim on ``n_cases`` paired test cases with these 95 % half-widths may be judged:
    at least MIN_TEST_CASES cases and every interval finite."""
    return n_cases >= MIN_TEST_CASES and all(math.isfinite(h) for h in halves)
