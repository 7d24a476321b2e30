"""Randomized tasks (the note): is "a random d-digit number" from a model really uniform?"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import chi2
from torch import Tensor

MAX_CATEGORIES = 900


def uniformity_test(samples: Tensor, digits: int, bins: int | None = None) -> dict:
    """Chi-square test of samples (N, digits) of digit tokens against the uniform d-digit number.

    Numbers with a leading zero are invalid and reported apart (their rate is the first failure).
    Valid numbers fall into `bins` equal-width bins of [10^(d−1), 10^d) (each number its own bin when
    there are at most 900). Effect size: Cohen's w = sqrt(χ² / N) (0.1 small, 0.3 medium, 0.5 large),
    and the same with the noise floor removed, sqrt(max(χ² − dof, 0) / N), which is 0 for a uniform sampler."""
    x = samples.long().numpy()
    values = (x * 10 ** np.arange(digits - 1, -1, -1)).sum(1)
    lo, span = 10 ** (digits - 1), 9 * 10 ** (digits - 1)
    valid = x[:, 0] != 0
    bins = bins or min(span, MAX_CATEGORIES)
    idx = ((values[valid] - lo) * bins) // span
    observed = np.bincount(idx, minlength=bins).astype(float)
    edges = lo + (np.arange(bins + 1) * span + bins - 1) // bins  # integer bin edges
    expected_share = np.diff(edges) / span
    n = int(valid.sum())
    expected = expected_share * n
    stat = float(((observed - expected) ** 2 / np.where(expected > 0, expected, 1)).sum()) if n else float("nan")
    return {
        "samples": int(len(x)),
        "valid": n,
        "invalid_rate": float(1 - n / len(x)) if len(x) else float("nan"),
        "bins": bins,
        "chi2": stat,
        "dof": bins - 1,
        "p_value": float(chi2.sf(stat, bins - 1)) if n else float("nan"),
        "cohens_w": math.sqrt(stat / n) if n else float("nan"),
        # χ² has mean dof under uniformity, so sqrt(χ²/N) is biased up by about sqrt(dof/N); this removes it
        "cohens_w_corrected": math.sqrt(max(stat - (bins - 1), 0.0) / n) if n else float("nan"),
        "min_expected_per_bin": float(expected.min()),
        "method": "chi-square goodness of fit to uniform over equal-width bins",
    }
