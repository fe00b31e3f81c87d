"""Ranking agreement against hand-computed cases."""

import numpy as np
import pytest

from workers.engine.agreement import ranking_agreement


def test_identical_reversed_and_partial_rankings():
    a = np.arange(10, dtype=float)
    rows = ranking_agreement({"a": a, "same": a * 3 + 1, "reversed": -a}, top_fraction=0.2)
    by_pair = {(r["a"], r["b"]): r for r in rows}
    assert by_pair["a", "same"]["top_overlap"] == 1.0
    assert by_pair["a", "same"]["spearman"] == pytest.approx(1.0)
    assert by_pair["a", "reversed"]["top_overlap"] == 0.0
    assert by_pair["a", "reversed"]["spearman"] == pytest.approx(-1.0)
    # top 20% of a is {9, 8}; of b = a with items 9 and 0 swapped it is {8, 0}
    b = a.copy()
    b[[0, 9]] = b[[9, 0]]
    row = ranking_agreement({"a": a, "b": b}, top_fraction=0.2)[0]
    assert row["top_overlap"] == 0.5
