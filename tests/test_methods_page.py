"""The report's Methods page: every method side by side, and the most sensitive calibrated one named."""

import numpy as np
import pandas as pd
import scipy.stats as sps

from slidescan.report.methods import OVERVIEW_HEADER, most_sensitive_text, overview, overview_rst


def _scan():
    """Two methods, 3 seeds, injections 0 and 200, windows w00-w02 (w01 the signal's), two cuts each."""
    rows = []
    z_best = {("a", 200): [4.0, 5.0, 6.0], ("b", 200): [3.0, 2.0, 2.5], ("a", 0): [1.0, 2.0, 1.5],
              ("b", 0): [3.9, 1.0, 1.2]}
    where = {("a", 200): ["w01", "w01", "w01"], ("b", 200): ["w01", "w02", "w02"], ("a", 0): ["w00", "w02", "w00"],
             ("b", 0): ["w02", "w02", "w00"]}
    for (method, injection), zs in z_best.items():
        for seed, z in enumerate(zs, 1):
            for window in ("w00", "w01", "w02"):
                for efficiency in (1.0, 0.1):
                    top = window == where[(method, injection)][seed - 1] and efficiency == 0.1
                    rows.append({"window": window, "method": method, "signal": "", "injection": injection,
                                 "seed": seed, "efficiency": efficiency, "z": z if top else 0.5,
                                 "global_z": z - 1.5 + 0.1 * seed})
    return pd.DataFrame(rows)


def test_each_method_and_injection_gets_its_most_significant_window_z_sic_and_verdict():
    performance = pd.DataFrame({"method": ["a"] * 3 + ["b"] * 3, "injection": 200, "seed": [1, 2, 3] * 2,
                                "max_sic_20": [3.0, 4.0, 5.0, 1.0, 1.2, 1.1], "sic_at_0.3": [2.0, 2.5, 3.0] + [1.0] * 3,
                                "s_over_b": 0.01})
    # b's largest injection-0 Z (3.9) among 12 p0 is unlikely by chance: not calibrated
    calibration = pd.DataFrame({"method": ["a", "b"], "n": [12, 12], "ks_pvalue": [0.5, 0.3],
                                "min_p0": [0.023, 4.8e-5]})
    table = overview(_scan(), "w01", performance, calibration).set_index(["method", "injection"])
    a, b = table.loc[("a", 200)], table.loc[("b", 200)]
    assert (a["most_significant_window"], a["seeds_in_that_window"], a["seeds_in_true_window"]) == ("w01", 3, 3)
    assert (b["most_significant_window"], b["seeds_in_that_window"], b["seeds_in_true_window"]) == ("w02", 2, 1)
    assert (a["local_z"], a["local_z_min"], a["local_z_max"]) == (5.0, 4.0, 6.0)
    assert a["global_z"] == np.median([4.0 - 1.4, 5.0 - 1.3, 6.0 - 1.2])
    assert (a["max_sic_20"], a["sic_at_0.3"]) == (4.0, 2.5)
    assert a["calibration"] == "calibrated" and b["calibration"] == "NOT CALIBRATED"
    assert np.isnan(table.loc[("a", 0), "seeds_in_true_window"]) and np.isnan(table.loc[("a", 0), "max_sic_20"])
    text = most_sensitive_text(overview(_scan(), "w01", performance, calibration), "w01")
    assert text.startswith("Most sensitive calibrated method: **a**: at the smallest injection where a calibrated "
                           "method finds the signal's window w01 in most seeds (200 events), its median local Z there "
                           "is 5.00"), text
    rows = overview_rst(table.reset_index())
    assert len(rows[0]) == len(OVERVIEW_HEADER)
    assert rows[1] == ["a", "200", "w01 (3 of 3)", "3 of 3", "5.00 (4.00-6.00)", "3.70", "4.00 / 2.50", "calibrated",
                       "-"]
    # nobody calibrated: the summary says so instead of naming the best uncalibrated method
    none = overview(_scan(), "w01", performance, calibration.assign(ks_pvalue=0.001))
    assert "none; no method passed the injection-0 calibration" in most_sensitive_text(none, "w01")


def test_the_injection_0_rows_say_how_much_the_tightest_cut_sculpts_the_background():
    scan = _scan()
    # method b keeps 30 % more of the SR than of its sidebands at the tightest cut; a keeps them alike
    scan["sr_efficiency_ratio"] = np.where(scan["method"] == "b", 1.3, 1.0) + 0.01 * scan["seed"]
    scan.loc[scan["efficiency"] == 1.0, "sr_efficiency_ratio"] = 1.0
    scan["mjj_jsd"] = np.where(scan["method"] == "b", 0.02, 0.001)
    table = overview(scan, "w01").set_index(["method", "injection"])
    a, b = table.loc[("a", 0)], table.loc[("b", 0)]
    assert (b["sculpting_efficiency"], b["sr_efficiency_ratio"], b["sr_efficiency_ratio_min"],
            b["sr_efficiency_ratio_max"], b["mjj_jsd"]) == (0.1, 1.32, 1.31, 1.33, 0.02)
    assert a["sr_efficiency_ratio"] == 1.02
    assert np.isnan(table.loc[("b", 200), "sr_efficiency_ratio"])  # a signal in the SR is not sculpting
    rows = {r[0] + r[1]: r for r in overview_rst(table.reset_index())}
    assert rows["b0"][-1] == "1.32 (1.31-1.33) at 10 %" and rows["b200"][-1] == "-"


def test_sculpting_is_one_for_a_cut_blind_to_mjj_and_above_one_for_a_cut_that_prefers_the_sr():
    from slidescan.stats.bumphunt import bump_hunt
    from slidescan.windows import Window

    g = np.random.default_rng(4)
    window = Window(0, 3.0, 3.3, 3.7, 4.0)
    mjj = g.uniform(3.0, 4.0, 200000)
    blind = g.random(len(mjj))
    # a score that reads mjj: events near 3.5 TeV score higher, as a classifier trained in the SR may learn
    reads_mjj = blind + 0.6 * np.exp(-((mjj - 3.5) / 0.15) ** 2)
    # a smooth trend is not a bump (the sideband fit follows it): a kept fraction linear in mjj, 6 % to 14 %
    trend = (g.random(len(mjj)) < 0.1 * (1 + 0.8 * (mjj - 3.5))) + 0.01 * blind
    for score, low, high in ((blind, 0.95, 1.05), (trend, 0.93, 1.07), (reads_mjj, 1.5, 10)):
        result = {r.efficiency: r for r in bump_hunt(mjj, score, window, [1.0, 0.1], 0.05)}
        assert result[1.0].sr_efficiency_ratio == 1.0 and result[1.0].mjj_jsd == 0.0
        assert low < result[0.1].sr_efficiency_ratio < high, result[0.1].sr_efficiency_ratio
    assert result[0.1].mjj_jsd > 0.01


def test_the_methods_figure_draws_every_method_and_marks_the_uncalibrated(tmp_path):
    import matplotlib.image

    from slidescan.plots import methods_z

    calibration = pd.DataFrame({"method": ["a", "b"], "n": [12, 12], "ks_pvalue": [0.5, 0.3],
                                "min_p0": [0.023, 4.8e-5]})
    table = overview(_scan(), "w01", None, calibration)
    out = tmp_path / "methods_z.png"
    assert methods_z(table, out) == ["a", "b, NOT CALIBRATED"]
    image = matplotlib.image.imread(out)
    assert image.shape[0] > 400 and image.shape[1] > 1000 and image.std() > 0.05


def test_p0_larger_than_uniform_are_conservative_and_too_many_small_ones_not_calibrated():
    from slidescan.report.methods import calibration_verdicts
    from slidescan.stages.scan import calibration as calibration_table

    g = np.random.default_rng(3)
    p0 = {"uniform": g.uniform(0, 1, 400),  # a test that is right
          "covering": g.uniform(0, 1, 400) ** 0.5,  # a systematic larger than the bias: p0 pushed towards 1
          "excessive": g.uniform(0, 1, 400) ** 2}  # a template off in the SR: too many small p0
    scan = pd.DataFrame([{"method": m, "injection": 0, "p0": p, "z": float(sps.norm.isf(min(p, 0.5)))}
                         for m, values in p0.items() for p in values])
    table = calibration_table(scan).set_index("method")
    assert table.loc["covering", "ks_pvalue"] < 0.01 and table.loc["covering", "ks_pvalue_excess"] > 0.5
    assert table.loc["excessive", "ks_pvalue_excess"] < 0.01 and table.loc["uniform", "ks_pvalue"] > 0.01
    verdicts = calibration_verdicts(table.reset_index())
    assert {m: v[0] for m, v in verdicts.items()} == {"uniform": "calibrated", "covering": "conservative",
                                                      "excessive": "NOT CALIBRATED"}
    # a table from before the one-sided column: judged by the two-sided KS alone, never called conservative
    old = calibration_verdicts(table.reset_index().drop(columns="ks_pvalue_excess"))
    assert old["covering"][0] == "NOT CALIBRATED" and old["uniform"][0] == "calibrated"
