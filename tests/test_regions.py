"""Regions (issue 32, part 1): the sliding mjj window and the one-sided thresholds of a non-resonant search, in one
module (slidescan.windows), and the synthetic context columns they cut on."""

import numpy as np
import pandas as pd
import pytest
import yaml

from slidescan.config import ConfigError
from slidescan.data.synthetic import add_context, mismodel_context
from slidescan.settings import ScanSettings
from slidescan.io import read_table
from slidescan.windows import REGION_CR, REGION_OUTSIDE, REGION_SR, Thresholds, Window, check_windows, region_grid, window_table

from test_workflow import REPO

GRID = {"kind": "thresholds", "thresholds": {"ht": [3.0, 2.4], "met": [0.15, 0.25]}}


def _events(n=20000, seed=0):
    g = np.random.default_rng(seed)
    return pd.DataFrame({"mjj": g.uniform(2.5, 4.5, n), "ht": g.uniform(2.0, 4.0, n), "met": g.exponential(0.1, n)})


def test_a_one_sided_grid_is_every_combination_of_thresholds_and_its_sr_the_high_corner():
    regions = region_grid(GRID)
    assert [(w.name, w.thresholds) for w in regions] == [("w00", (2.4, 0.15)), ("w01", (2.4, 0.25)),
                                                         ("w02", (3.0, 0.15)), ("w03", (3.0, 0.25))]
    assert regions[3].label == "SR ht >= 3, met >= 0.25" and regions[0].statistic == "template_count"
    table = window_table(regions)
    assert list(table.columns) == ["window", "ht_min", "met_min"] and table["met_min"].tolist() == [0.15, 0.25] * 2
    events = _events()
    region = regions[3].assign(events)
    sr = (events["ht"] >= 3.0) & (events["met"] >= 0.25)
    assert set(np.unique(region)) == {REGION_SR, REGION_CR}  # nothing outside: the CR is the rest
    np.testing.assert_array_equal(region == REGION_SR, sr.to_numpy())
    assert regions[3].condition(events).shape == (len(events), 2)
    one = region_grid({"kind": "thresholds", "thresholds": {"met": [0.2]}})[0]
    assert one.condition(events).shape == (len(events),) and one.label == "SR met >= 0.2"
    with pytest.raises(ValueError, match="one or two context columns"):
        region_grid({"kind": "thresholds", "thresholds": {}})


def test_a_validation_region_is_the_lowered_corner_less_its_sr_which_it_leaves_outside():
    regions = region_grid({**GRID, "validation": {"ht": 0.3}})
    assert [w.name for w in regions] == ["w00", "w01", "w02", "w03", "v00", "v01", "v02", "v03"]
    vr = regions[7]
    assert vr.thresholds == pytest.approx((2.7, 0.25)) and vr.validated == "w03" and regions[3].validated is None
    assert vr.label == "VR ht >= 2.7, met >= 0.25, below w03" and vr.statistic == "template_count"
    events = _events()
    region = vr.assign(events)
    ht, met = events["ht"].to_numpy(), events["met"].to_numpy()
    # the VR: the band 2.7 <= ht < 3.0 at met >= 0.25; the SR it validates is outside (blinded), the rest its CR
    np.testing.assert_array_equal(region == REGION_SR, (ht >= 2.7) & (ht < 3.0) & (met >= 0.25))
    np.testing.assert_array_equal(region == REGION_OUTSIDE, (ht >= 3.0) & (met >= 0.25))
    assert ((region == REGION_CR) == ~((ht >= 2.7) & (met >= 0.25))).all()
    # its conditions are drawn in the band, never in the SR
    drawn = vr.sample_condition(events[region == REGION_SR], 5000, seed=1)
    assert ((drawn[:, 0] >= 2.7) & (drawn[:, 0] < 3.0) & (drawn[:, 1] >= 0.25)).all()
    table = window_table(regions)
    assert table["validates"].iloc[:4].isna().all() and table["validates"].iloc[4:].tolist() == ["w00", "w01", "w02",
                                                                                                 "w03"]
    # an L around the corner: both columns lowered
    ell = region_grid({**GRID, "validation": {"ht": 0.3, "met": 0.05}})[7]
    np.testing.assert_array_equal(ell.assign(events) == REGION_SR,
                                  (ht >= 2.7) & (met >= 0.2) & ~((ht >= 3.0) & (met >= 0.25)))
    with pytest.raises(ValueError, match=r"windows.validation: mjj is not a context column of windows.thresholds "
                                         r"\(ht, met\)"):
        region_grid({**GRID, "validation": {"mjj": 0.3}})
    with pytest.raises(ValueError, match="windows.validation: validation regions are for kind thresholds"):
        region_grid({"first_sr_lo": 3.0, "last_sr_lo": 3.3, "sr_width": 0.3, "step": 0.3, "sb_width": 0.2,
                     "validation": {"ht": 0.3}})
    assert [w.name for w in region_grid(GRID)] == ["w00", "w01", "w02", "w03"]  # no VR unless asked for


def test_the_density_models_condition_on_the_context_columns_named_and_regions_still_use_every_one():
    regions = region_grid({**GRID, "condition": ["ht"], "validation": {"met": 0.05}})
    events = _events()
    sr, vr = regions[3], regions[7]
    # the condition is ht alone, for the SR and its VR; the regions are the corners in both columns as before
    np.testing.assert_array_equal(sr.condition(events), events["ht"].to_numpy())
    np.testing.assert_array_equal(vr.condition(events), events["ht"].to_numpy())
    assert sr.condition_columns == ("ht",) and vr.condition_columns == ("ht",)
    np.testing.assert_array_equal(sr.assign(events), region_grid(GRID)[3].assign(events))
    # SR conditions are drawn in the SR's projection onto ht: at or above its ht threshold, shaped like its events
    inside = events[sr.assign(events) == REGION_SR]
    drawn = sr.sample_condition(inside, 5000, seed=2)
    assert drawn.shape == (5000,) and (drawn >= 3.0).all()
    assert drawn.mean() == pytest.approx(inside["ht"].mean(), rel=0.05)
    # naming every column is the scan without the key (its models and fingerprints unchanged)
    assert region_grid({**GRID, "condition": ["met", "ht"]}) == region_grid(GRID)
    with pytest.raises(ValueError, match=r"windows.condition: mjj is not a context column of windows.thresholds "
                                         r"\(ht, met\)"):
        region_grid({**GRID, "condition": ["mjj"]})
    with pytest.raises(ValueError, match="windows.condition: for kind thresholds"):
        region_grid({"first_sr_lo": 3.0, "last_sr_lo": 3.3, "sr_width": 0.3, "step": 0.3, "sb_width": 0.2,
                     "condition": ["ht"]})


def test_the_mjj_window_assigns_from_mjj_as_before_and_conditions_on_it():
    w = Window(1, 2.7, 3.3, 3.7, 4.3)
    events = _events()
    np.testing.assert_array_equal(w.assign(events), w.region(events["mjj"].to_numpy()))
    np.testing.assert_array_equal(w.condition(events), events["mjj"].to_numpy())
    assert w.context == ("mjj",) and w.statistic == "sideband_fit" and w.label == "SR 3.3-3.7 TeV"
    assert list(window_table([w]).columns) == ["window", "sb_lo", "sr_lo", "sr_hi", "sb_hi"]


def test_sr_conditions_are_drawn_inside_the_sr_like_its_events():
    region = Thresholds(0, ("ht", "met"), (3.0, 0.2))
    events = _events(60000)
    sr = events[region.assign(events) == REGION_SR]
    drawn = region.sample_condition(sr, 20000, seed=4)
    assert drawn.shape == (20000, 2)
    assert (drawn[:, 0] >= 3.0).all() and (drawn[:, 1] >= 0.2).all()
    # a KDE widens the steep met tail by its bandwidth: a few per cent
    assert drawn.mean(axis=0) == pytest.approx(sr[["ht", "met"]].mean().to_numpy(), rel=0.05)
    np.testing.assert_array_equal(drawn, region.sample_condition(sr, 20000, seed=4))


def test_a_region_without_enough_events_or_without_its_column_is_named():
    events = _events()
    with pytest.raises(ValueError, match=r"^data.h5: window w00 .* window w03 \(SR ht >= 3, met >= 0.25\) has \d+ "
                                         r"events in its SR, fewer than windows.min_events \(5000\)\. Change "
                                         r"windows.thresholds"):
        check_windows(region_grid(GRID), events, 5000, "data.h5")
    with pytest.raises(ValueError, match=r"data.h5: no column\(s\) \['met'\]: region w00"):
        check_windows(region_grid(GRID), events.drop(columns="met"), 10, "data.h5")
    check_windows(region_grid(GRID), events, 100, "data.h5")


def test_a_threshold_scan_refuses_what_needs_an_mjj_window_and_reads_its_context_columns():
    base = yaml.safe_load((REPO / "config/config.yaml").read_text())
    config = {**base, "windows": GRID, "methods": ["cathode-nn", "idealized-nn"]}
    settings = ScanSettings.from_config(config)
    assert settings.bumphunt.statistic == "template_count"  # the regions' own test
    assert settings.columns == (*settings.features, "ht", "met") and "met" not in settings.features
    with pytest.raises(ConfigError, match=r"windows.kind is thresholds, but these work only in mjj windows \(they "
                                          r"read a window's mjj edges or its two sidebands\): method anode; remove"):
        ScanSettings.from_config({**config, "methods": ["anode", "cathode-nn"]})
    with pytest.raises(ConfigError, match=r"bumphunt.statistic: sideband_fit tests regions of kind mjj_window, and "
                                          r"windows.kind is thresholds"):
        ScanSettings.from_config({**config, "bumphunt": {"statistic": "sideband_fit"}})
    with pytest.raises(ConfigError, match=r"but cwola-nn have none; remove them \(docs"):
        ScanSettings.from_config({**config, "methods": ["cwola-nn"]})


def test_the_synthetic_context_makes_the_signal_semi_visible_and_the_mistuned_simulation_stretches_met():
    g = np.random.default_rng(2)
    n = 20000
    events = pd.DataFrame({"mjj": np.full(2 * n, 3.5), "label": np.r_[np.zeros(n, int), np.ones(n, int)]})
    events = add_context(events, g)
    background, signal = events[events["label"] == 0], events[events["label"] == 1]
    assert background["ht"].mean() == pytest.approx(0.9 * 3.5 + 0.05, rel=0.01)
    assert background["met"].mean() == pytest.approx(0.02 + 0.015 * background["ht"].mean(), rel=0.05)
    assert signal["met"].mean() == pytest.approx(signal["ht"].mean() / 4, rel=0.05)
    strong = mismodel_context(background, "strong")
    np.testing.assert_allclose(strong["met"], background["met"] * (1 + background["met"] / 0.5))
    assert mismodel_context(background, "none")["met"].equals(background["met"])


@pytest.mark.workflow
def test_a_threshold_scan_runs_end_to_end_with_its_template_count_limits_and_window_map(tmp_path):
    from test_workflow import TINY, make_workdir, snakemake

    config = {**TINY, "scan": "corner", "data": {**TINY["data"], "synthetic": {**TINY["data"]["synthetic"],
                                                                               "context": True}},
              "windows": {"kind": "thresholds", "thresholds": {"ht": [2.4], "met": [0.15]}, "validation": {"met": 0.05}},
              "methods": ["cathode-nn", "idealized-nn"], "injections": [0, 200]}
    workdir = make_workdir(tmp_path, config)
    result = snakemake(workdir)
    assert result.returncode == 0, result.stderr[-4000:]
    results = workdir / "results/corner"
    windows = pd.read_csv(results / "windows.csv")
    assert windows.astype(object).where(windows.notna(), None).to_dict("list") == {
        "window": ["w00", "v00"], "ht_min": [2.4, 2.4], "met_min": [0.15, 0.1], "validates": [None, "w00"]}
    scan = pd.read_csv(results / "pvalue_scan.csv")
    assert (scan["fit_message"] == "template count").all() and scan["sr_lo"].isna().all()
    # the validation region is no search region: its non-closure is in the SR's rows, and it has none of its own
    assert set(scan["window"]) == {"w00"} and scan["nonclosure"].notna().all()
    assert (scan["n_bkg_err"] >= scan["n_bkg_err_nonclosure"] * 0.999).all()
    # the SR is the high corner: no cut predicts exactly the SR's events, which the split counted
    split = read_table(results / "split/w00/inj0_seed1.h5", "data")
    in_sr = (split["ht"] >= 2.4) & (split["met"] >= 0.15)
    assert ((split["region"] == REGION_SR) == in_sr).all() and set(split["region"]) == {REGION_SR, REGION_CR}
    full = scan[(scan["efficiency"] == 1.0) & (scan["injection"] == 0)]
    assert (full["n_obs"] == in_sr.sum()).all()
    # the VR's split: the band 0.1 <= met < 0.15 its SR, the SR it validates blinded (not in it at all)
    vr = read_table(results / "split/v00/inj0_seed1.h5", "data")
    assert not ((vr["ht"] >= 2.4) & (vr["met"] >= 0.15)).any()
    assert ((vr["region"] == REGION_SR) == ((vr["ht"] >= 2.4) & (vr["met"] >= 0.1))).all()
    # the classifiers never saw the context columns: the flow's samples carry them only as its condition
    samples = read_table(results / "flows/w00/inj0_seed1.h5", "samples")
    assert (samples["ht"] >= 2.4).all() and (samples["met"] >= 0.15).all()
    samples = read_table(results / "flows/v00/inj0_seed1.h5", "samples")
    assert (samples["met"] >= 0.1).all() and (samples["met"] < 0.15).all()
    limits = pd.read_csv(results / "limits.csv")
    assert set(limits["window"]) == {"w00"} and limits["limit_obs"].notna().any()
    assert (results / "plots/window_map.png").stat().st_size > 10_000
    assert (results / "plots/spectra/cathode-nn/inj200_seed1/w00.png").exists()
    assert (results / "plots/spectra/cathode-nn/inj200_seed1/v00.png").exists()
