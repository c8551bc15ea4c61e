"""llm.c-style bookkeeping for the real-size tests: every max difference printed, then a table."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class MaxDiffs(dict[str, float]):
    """name -> max abs difference, printed as each is measured and as a table at the end."""

    def __init__(self, title: str) -> None:
        super().__init__()
        self.title = title

    def record(self, name: str, ours: np.ndarray, theirs: np.ndarray) -> float:
        """Max abs difference between two arrays; printed and kept for the summary."""
        assert ours.shape == theirs.shape, f"{name}: shape {ours.shape} vs {theirs.shape}"
        diff = float(np.max(np.abs(ours.astype(np.float64) - theirs.astype(np.float64))))
        self[name] = diff
        print(f"{name}: max abs diff {diff:.2e}")
        return diff

    def record_all(self, name: str, ours: Sequence[np.ndarray], theirs: Sequence[np.ndarray]) -> list[float]:
        """`record` for each pair of two equally long sequences of arrays, named name[i]."""
        assert len(ours) == len(theirs), f"{name}: {len(ours)} arrays vs {len(theirs)}"
        return [self.record(f"{name}[{i}]", a, b) for i, (a, b) in enumerate(zip(ours, theirs, strict=True))]

    def print_summary(self) -> None:
        if self:
            width = max(map(len, self))
            print(f"\n--- {self.title}: max abs differences ---")
            for name, diff in self.items():
                print(f"  {name:<{width}}  {diff:.2e}")
