import numpy as np
import pytest

from slidescan.windows import REGION_SR, assign_folds, window_grid, window_table

GRID = {"spacing": "linear", "first_sr_lo": 3.1, "last_sr_lo": 4.1, "sr_width": 0.4, "step": 0.2, "sb_width": 0.6}


def test_linear_grid():
    windows = window_grid(GRID)
    assert [w.sr_lo for w in windows] == pytest.approx([3.1, 3.3, 3.5, 3.7, 3.9, 4.1])
    for w in windows:
        assert w.sb_lo == pytest.approx(w.sr_lo - 0.6) and w.sb_hi == pytest.approx(w.sr_hi + 0.6)
        assert w.sr_hi - w.sr_lo == pytest.approx(0.4)
    table = window_table(windows)
    assert list(table["window"]) == [f"w{i:02d}" for i in range(6)]


def test_log_grid_scales_with_mass():
    windows = window_grid({"spacing": "log", "first_sr_lo": 3.0, "last_sr_lo": 4.0, "sr_width": 0.1,
                           "step": 0.1, "sb_width": 0.1})
    widths = [w.sr_hi - w.sr_lo for w in windows]
    assert np.all(np.diff(widths) > 0)
    assert all(w.sr_hi / w.sr_lo == pytest.approx(1.1) for w in windows)


def test_regions_are_disjoint_and_cover_window():
    w = window_grid(GRID)[1]
    mjj = np.linspace(2.0, 5.0, 30001)
    region = w.region(mjj)
    inside = (mjj >= w.sb_lo) & (mjj < w.sb_hi)
    assert np.all((region != 2) == inside)
    sr = region == REGION_SR
    assert np.all((mjj[sr] >= w.sr_lo) & (mjj[sr] < w.sr_hi))
    sb = (region == -1) | (region == 1)
    assert not np.any(sr & sb)
    assert np.all((mjj[sb] < w.sr_lo) | (mjj[sb] >= w.sr_hi))


def test_bad_grid_is_rejected():
    with pytest.raises(ValueError, match="spacing"):
        window_grid({**GRID, "spacing": "quadratic"})
    with pytest.raises(ValueError, match="sr_width"):
        window_grid({**GRID, "sr_width": 0})


def test_every_event_in_exactly_one_fold():
    folds = assign_folds(10_001, 5, np.random.default_rng(0))
    assert set(np.unique(folds)) == {0, 1, 2, 3, 4}
    counts = np.bincount(folds)
    assert counts.max() - counts.min() <= 1 and counts.sum() == 10_001
    np.testing.assert_array_equal(folds, assign_folds(10_001, 5, np.random.default_rng(0)))
    with pytest.raises(ValueError, match="at least 2"):
        assign_folds(10, 1, np.random.default_rng(0))
