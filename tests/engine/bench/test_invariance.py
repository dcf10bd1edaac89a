"""The invariance report finds a row whose bits depend on its pass, and only such a row."""

from __future__ import annotations

import torch

from engine.bench.invariance import norm_case, rows_alone_vs_together

ROWS = torch.randn(8, 5)


def test_identical_rows_are_invariant() -> None:
    assert rows_alone_vs_together(lambda n: ROWS[:n].clone(), lambda n, i: ROWS[i],
                                  [1, 2, 4, 8]) == (None, 0.0)


def test_a_row_that_changes_in_a_bigger_pass_is_found() -> None:
    def batched(n: int) -> torch.Tensor:
        out = ROWS[:n].clone()
        if n >= 4:  # from four rows on, the last row moves by one ulp
            out[n - 1] = torch.nextafter(out[n - 1], torch.full_like(out[n - 1], 1e9))
        return out

    first, worst = rows_alone_vs_together(batched, lambda n, i: ROWS[i], [1, 2, 4, 8])
    assert first == 4 and 0 < worst < 1e-5


def test_rms_norm_is_row_invariant_here() -> None:
    # Elementwise and one reduction per row: no reason to depend on the pass anywhere.
    assert norm_case(torch.float32, [1, 2, 3, 7])[0] is None
