"""Upper limits (slidescan.stats.limits, stages.limits): textbook CLs, pyhf agreement, the self-consistent efficiency."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from slidescan.config import ConfigError
from slidescan.settings import ScanSettings
from slidescan.stages.limits import limits_table
from slidescan.stats.limits import Efficiency, counting_cls, counting_expected, counting_limit, upper_limit

SMALL = {"scan": "limits", "data": {"source": "synthetic"}, "injections": [0, 200, 400, 800],
         "windows": {"spacing": "linear", "first_sr_lo": 3.1, "last_sr_lo": 3.3, "sr_width": 0.4, "step": 0.2,
                     "sb_width": 0.6},
         "methods": ["cwola-nn"]}


def test_poisson_cls_limits_are_the_textbook_ones():
    # 95 % CL limits on a Poisson mean with no background (PDG, Statistics review, Table 40.3): CLs equals the
    # flat-prior Bayesian limit there, and with n = 0 it is -ln 0.05 whatever the background
    for n, expected in enumerate([3.00, 4.74, 6.30, 7.75, 9.15, 10.51]):
        assert counting_limit(n, 1e-9) == pytest.approx(expected, abs=0.005)
    for b in (0.5, 5.0, 50.0):
        assert counting_limit(0, b) == pytest.approx(-np.log(0.05), rel=1e-6)


def test_counting_cls_is_the_ratio_of_poisson_tails():
    n, b, s = 7, 4.2, 6.0
    by_hand = sps.poisson.cdf(n, s + b) / sps.poisson.cdf(n, b)
    assert counting_cls(s, n, b)[0] == pytest.approx(by_hand, rel=1e-9)
    # a background uncertainty makes the limit weaker, never stronger
    assert counting_limit(n, b, 1.5) > counting_limit(n, b, 0.0)


def test_expected_counting_limits_are_ordered_and_centred():
    exp = counting_expected(20.0, 2.0)
    assert list(exp) == sorted(exp)
    # the median background-only count is 20: the median expected limit is the observed limit for n = 20
    assert exp[2] == pytest.approx(counting_limit(20, 20.0, 2.0))


def test_pyhf_asymptotic_agrees_with_the_closed_form_at_large_counts():
    asym = upper_limit(400, 400.0, 10.0, "asymptotic")
    closed = upper_limit(400, 400.0, 10.0, "counting")
    assert asym.calculator == "asymptotic" and closed.calculator == "counting"
    assert asym.observed == pytest.approx(closed.observed, rel=0.03)
    for a, c in zip(asym.expected, closed.expected):
        assert a == pytest.approx(c, rel=0.05)
    assert upper_limit(3, 2.0, 0.3).calculator == "counting"  # auto: the closed form below 10 background events
    with pytest.raises(ValueError, match="positive background"):
        upper_limit(3, 0.0, 0.1)


def test_closed_form_agrees_with_pseudo_experiments_at_small_counts():
    # pyhf 0.7.6's toy calculator fails under numpy 2 (docs/architecture.md): pseudo-experiments drawn here, the
    # background from its gamma density, the count from Poisson; CLs is the ratio of the two tail fractions
    n_obs, b, b_err, s = 3, 2.0, 0.5, 5.0
    generator = np.random.default_rng(7)
    bkg = generator.gamma((b / b_err) ** 2, b_err**2 / b, 400_000)
    cls_toys = np.mean(generator.poisson(s + bkg) <= n_obs) / np.mean(generator.poisson(bkg) <= n_obs)
    assert float(counting_cls(s, n_obs, b, b_err)[0]) == pytest.approx(cls_toys, abs=0.005)


def test_the_closed_form_is_conservative_against_pyhfs_own_toys_at_small_counts():
    """pyhf's fully frequentist toys (q~mu, nuisances profiled) give a slightly smaller CLs than the closed form,
    which averages the background over its density (hybrid): at the closed-form limit, pyhf's toys give CLs 0.03-0.05,
    so the closed form's limit is about 10 % higher (docs/benchmarks.md, "Upper limits"), never lower."""
    from slidescan.stats.limits import pyhf_toy_cls

    np.random.seed(11)  # pyhf draws its toys from numpy's global generator
    for n_obs, b, b_err in ((3, 2.0, 0.5), (1, 2.0, 0.5)):
        limit = counting_limit(n_obs, b, b_err)
        assert 0.025 < pyhf_toy_cls(limit, n_obs, b, b_err, ntoys=4000) <= 0.05


def test_a_rising_efficiency_is_taken_at_the_excluded_strength():
    eff = Efficiency.measure([200, 400, 800, 800], [20, 60, 190, 210])
    assert list(eff.efficiency) == pytest.approx([0.1, 0.15, 0.25])
    assert eff.error[2] == pytest.approx(np.std([190 / 800, 210 / 800], ddof=1) / np.sqrt(2))
    # N eps(N) = 50 with eps linear between 200 (0.1) and 400 (0.15): N^2 + 200 N - 200000 = 0
    n = eff.excluded(50.0)
    assert n == pytest.approx((-200 + np.sqrt(200**2 + 4 * 200000)) / 2, rel=1e-6)
    # with the efficiency of the largest injection the limit would be 200, too strong; with the smallest, 500
    assert 50 / 0.25 < n < 50 / 0.1
    assert not eff.extrapolated(n) and eff.extrapolated(150.0)
    # a limit below the smallest injection holds the efficiency there (and says so)
    assert eff.excluded(10.0) == pytest.approx(100.0) and eff.extrapolated(eff.excluded(10.0))
    # a cut that keeps no signal excludes nothing
    assert Efficiency.measure([200, 400], [0, 0]).excluded(5.0) == float("inf")


def test_signal_the_sideband_fit_absorbs_is_taken_off_the_efficiency():
    """A signal with events in the sidebands raises the fitted SR background: only the selected signal above that
    rise is an excess, so the efficiency drops by the rise over N and the limit on injected events grows."""
    plain = Efficiency.measure([200, 400, 800], [20, 60, 200], [1000, 1000, 1000], [1000, 1000])
    assert list(plain.efficiency) == pytest.approx([0.1, 0.15, 0.25])
    absorbing = Efficiency.measure([200, 400, 800, 800], [20, 60, 200, 200], [1004, 1010, 1038, 1042], [998, 1002])
    assert list(absorbing.efficiency) == pytest.approx([0.1 - 4 / 200, 0.15 - 10 / 400, 0.25 - 40 / 800])
    # the rise's spread over the seeds adds to the error: at 800, (2^2 * 2 / 2 + 2^2 * 2 / 2) / 800^2
    assert absorbing.error[2] == pytest.approx(np.sqrt(4 + 4) / 800)
    assert absorbing.excluded(50.0) > plain.excluded(50.0)
    # against the truth: the fitted background is the background-only one (1000), but the cut that learned the signal
    # selects 10 fewer background events (observed 1010 = 990 background + 20 signal): the fit's excess over the true
    # background rose by 10, which the limit cannot see as signal
    truth = Efficiency.measure([200, 200], [20, 20], [1000, 1000], [1000, 1000], [1010, 1010], [1000, 1000])
    assert list(truth.efficiency) == pytest.approx([(20 - 10) / 200])
    assert list(Efficiency.measure([200, 200], [20, 20], [1000, 1000], [1000, 1000]).efficiency) == pytest.approx([0.1])
    # a fitted background that falls is noise, not signal given back: the efficiency is not raised
    falling = Efficiency.measure([200, 400, 800], [20, 60, 200], [990, 990, 990], [1000, 1000])
    assert list(falling.efficiency) == pytest.approx(list(plain.efficiency))
    # in the table: the injected rows' fitted background rises by 10 % of the selected signal, the limit follows
    settings = ScanSettings.from_config(SMALL)
    scan = scan_rows()
    base = limits_table(settings, scan)
    injected = scan["injection"] > 0
    scan.loc[injected, "n_bkg"] += 0.1 * scan.loc[injected, "n_signal_selected"]
    raised = limits_table(settings, scan)
    assert (raised["limit_obs"] > base["limit_obs"]).all()
    assert raised["signal_efficiency"].to_numpy() == pytest.approx(0.9 * base["signal_efficiency"].to_numpy(), rel=0.05)


def test_a_signal_uncertainty_weakens_the_limit_alike_in_pyhf_and_the_closed_form():
    """The efficiency's scatter is a log-normal nuisance on the signal: pyhf's normsys and the closed form's average
    agree, and the average is what pseudo-experiments give."""
    plain = upper_limit(400, 400.0, 10.0, "asymptotic")
    for r in (0.1, 0.3):
        asym = upper_limit(400, 400.0, 10.0, "asymptotic", signal_err=r)
        closed = upper_limit(400, 400.0, 10.0, "counting", signal_err=r)
        assert asym.observed == pytest.approx(closed.observed, rel=0.03)
        assert asym.expected[2] == pytest.approx(closed.expected[2], rel=0.03)
        assert asym.observed > plain.observed
    assert upper_limit(400, 400.0, 10.0, "counting", signal_err=0.3).observed > 1.08 * plain.observed
    n_obs, b, b_err, s, r = 3, 2.0, 0.5, 5.0, 0.4
    generator = np.random.default_rng(7)
    bkg = generator.gamma((b / b_err) ** 2, b_err**2 / b, 400_000)
    factor = (1 + r) ** generator.standard_normal(400_000)
    cls_toys = np.mean(generator.poisson(s * factor + bkg) <= n_obs) / np.mean(generator.poisson(bkg) <= n_obs)
    assert float(counting_cls(s, n_obs, b, b_err, r)[0]) == pytest.approx(cls_toys, abs=0.005)
    assert float(counting_cls(s, n_obs, b, b_err, r)[0]) > float(counting_cls(s, n_obs, b, b_err)[0]) + 0.02
    with pytest.raises(ValueError, match="signal uncertainty"):
        upper_limit(3, 2.0, 0.5, signal_err=float("nan"))


def test_the_efficiency_scatter_beyond_binomial_counting_is_measured():
    # 800 injected, 200 and 260 selected: variance 1800, of which binomial 800 * 0.2875 * 0.7125 = 163.9
    eff = Efficiency.measure([800, 800], [200, 260])
    assert eff.scatter[0] == pytest.approx(np.sqrt(1800 - 800 * 0.2875 * 0.7125) / 800)
    assert eff.relative_scatter(800) == pytest.approx(eff.scatter[0] / 0.2875)
    # within binomial counting there is nothing beyond the Poisson term; one seed cannot measure it
    assert Efficiency.measure([800, 800], [230, 232]).scatter[0] == 0.0
    assert np.isnan(Efficiency.measure([800], [230]).relative_scatter(800))


def test_an_efficiency_that_scatters_between_pseudo_experiments_weakens_the_limit():
    """One seed's classifier selecting 60 % more than another's: the limit holds that scatter as a nuisance and is
    weaker than that of two seeds at the same mean efficiency; with one seed it cannot be measured and rows say so."""
    # the closed form, for speed: the asymptotic one's nuisance is the same (the test above)
    settings = ScanSettings.from_config({**SMALL, "seeds": [1, 2], "limits": {"calculator": "counting"}})
    scan = scan_rows()
    two = pd.concat([scan, scan.assign(seed=2)], ignore_index=True).astype({"n_signal_selected": float})
    injected = two["injection"] > 0
    steady = two.copy()
    steady.loc[injected, "n_signal_selected"] *= 1.3
    varied = two.copy()
    varied.loc[injected & (two["seed"] == 2), "n_signal_selected"] *= 1.6
    for scan in (steady, varied):  # the observed counts hold the selected signal
        scan["n_obs"] += scan["n_signal_selected"] - two["n_signal_selected"]
    pick = lambda t: t[(t["window"] == "w00") & np.isclose(t["efficiency"], 0.1)].iloc[0]  # noqa: E731
    a, b = pick(limits_table(settings, steady)), pick(limits_table(settings, varied))
    assert a["signal_efficiency_scatter"] == 0.0 and b["signal_efficiency_scatter"] > 0.2
    assert b["signal_efficiency"] == pytest.approx(a["signal_efficiency"], rel=0.02)
    assert b["limit_obs"] > 1.02 * a["limit_obs"] and b["limit_exp_median"] > 1.02 * a["limit_exp_median"]
    assert "not in the limit" not in b["note"]
    one = limits_table(ScanSettings.from_config(SMALL), scan_rows()).dropna(subset=["limit_obs"])
    assert one["note"].str.contains("the efficiency's scatter between pseudo-experiments is not in the limit").all()
    assert one["signal_efficiency_scatter"].isna().all()


def scan_rows():
    rows = []
    for window, lo in (("w00", 3.1), ("w01", 3.3)):
        for eff in (1.0, 0.1):
            for injection, selected in ((0, 0), (200, 20), (400, 60), (800, 200)):
                rows.append({"window": window, "sr_lo": lo, "sr_hi": lo + 0.4, "method": "cwola-nn",
                             "injection": injection, "seed": 1, "efficiency": eff, "n_obs": 1000 * eff + 3 + selected,
                             "n_bkg": 1000.0 * eff, "n_bkg_err": 10 * eff, "fit_ok": True, "fit_message": "",
                             "n_signal_selected": selected, "count_scale": 1.0})
    return pd.DataFrame(rows)


def test_limits_table_gives_a_row_per_cut_and_background_only_seed():
    settings = ScanSettings.from_config(SMALL)
    scan = scan_rows()
    scan.loc[(scan["window"] == "w01") & (scan["efficiency"] == 1.0) & (scan["injection"] == 0), "fit_ok"] = False
    table = limits_table(settings, scan)
    assert len(table) == 4
    assert table["declared"].tolist() == [True, False, True, False]  # the loosest cut below 1 (0.1) by default
    ok = table.dropna(subset=["limit_obs"])
    assert len(ok) == 3 and "the sideband fit failed" in table.loc[table["limit_obs"].isna(), "note"].iloc[0]
    for row in ok.itertuples():
        # the limit on injected events is the selected-signal limit over the efficiency at that strength
        assert row.limit_obs * row.signal_efficiency == pytest.approx(row.s95_obs, rel=1e-4)
        assert row.limit_exp_m2 < row.limit_exp_m1 < row.limit_exp_median < row.limit_exp_p1 < row.limit_exp_p2
    # a tighter cut with a background 10 times smaller sets a lower limit on the same signal
    w00 = table[table["window"] == "w00"].set_index("efficiency")
    assert w00.loc[0.1, "limit_exp_median"] < w00.loc[1.0, "limit_exp_median"]
    # the limits job's two worker processes give the same rows in the same order
    pd.testing.assert_frame_equal(limits_table(settings, scan, workers=2), table)


def test_limits_need_both_background_only_and_injected_experiments():
    settings = ScanSettings.from_config(SMALL)
    scan = scan_rows()
    with pytest.raises(ValueError, match=r"need injection 0 .* injections \[200, 400, 800\]"):
        limits_table(settings, scan[scan["injection"] > 0])
    with pytest.raises(ValueError, match="no truth-labelled signal"):
        limits_table(settings, scan.assign(n_signal_selected=-1))


def test_a_declared_cut_must_be_one_the_bump_hunt_makes():
    with pytest.raises(ConfigError, match=r"limits.efficiency: 0.05 is not one of bumphunt.efficiencies"):
        ScanSettings.from_config({**SMALL, "limits": {"efficiency": 0.05}})
    assert ScanSettings.from_config({**SMALL, "limits": {"efficiency": 0.01}}).limit_efficiency == 0.01
    assert ScanSettings.from_config({**SMALL, "bumphunt": {"efficiencies": [1.0]}}).limit_efficiency == 1.0


def test_luminosity_gives_the_visible_cross_section():
    settings = ScanSettings.from_config({**SMALL, "limits": {"luminosity": 100.0}})
    table = limits_table(settings, scan_rows())
    assert table["xsec_obs_fb"].to_numpy() == pytest.approx(table["limit_obs"].to_numpy() / 100.0)


def test_limits_on_weighted_events_say_how_the_efficiency_was_counted(tmp_path):
    path = tmp_path / "events.parquet"
    pd.DataFrame({"mjj": [3.0], "label": [0], "w": [1.0]}).to_parquet(path)
    settings = ScanSettings.from_config({**SMALL, "data": {"source": "table", "table": {
        "path": str(path), "label": "label", "weight": "w"}}})
    table = limits_table(settings, scan_rows())
    assert table["note"].str.contains("weighted events: the efficiency is the selected signal's sum of weights").all()
    assert not limits_table(ScanSettings.from_config(SMALL), scan_rows())["note"].str.contains("weighted").any()


def test_a_signal_uncertainty_of_hundreds_of_per_cent_widens_the_limit_or_sets_none_instead_of_failing_the_job():
    """pyhf's scan widens its bracket past the POI's default bounds when the limit lies beyond them; that stopped the
    limits job of a scan whose efficiency scattered by 500 % between pseudo-experiments."""
    from slidescan.stats.limits import asymptotic_limit

    plain, _ = asymptotic_limit(5, 5, 0.5)
    wide, expected = asymptotic_limit(5, 5, 0.5, signal_err=5.0)
    assert np.isfinite(wide) and wide > 2 * plain and expected[0] < expected[2] < expected[4]
    none, expected = asymptotic_limit(5, 5, 0.5, signal_err=20.0)
    assert none == np.inf and all(e == np.inf for e in expected)
