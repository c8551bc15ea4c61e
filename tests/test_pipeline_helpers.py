"""Small pipeline helpers against the obvious NumPy spelling of the same thing."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from numpy_distilbert.pipelines.fill_mask import _top_k


@settings(max_examples=300, deadline=None)
@given(
    values=st.lists(st.integers(0, 4), min_size=1, max_size=60),  # few distinct values: many ties
    data=st.data(),
)
def test_top_k_equals_a_stable_full_sort(values, data):
    row = np.asarray(values, dtype=np.float64)
    k = data.draw(st.integers(1, row.size))
    assert _top_k(row, k).tolist() == np.argsort(-row, kind="stable")[:k].tolist()
