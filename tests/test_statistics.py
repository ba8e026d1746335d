"""The tests of a selection as a registry (issue 32, part 3): the sideband fit and the template count."""

import numpy as np
import pandas as pd
import pytest

from slidescan.config import ConfigError
from slidescan.registry import STATISTICS, load_builtins
from slidescan.settings import ScanSettings
from slidescan.data import REPLICA_WEIGHT
from slidescan.report.summary import template_count_text
from slidescan.stats.template_count import ensemble_spread, template_count, template_prediction
from slidescan.windows import REGION_SR, Window

from test_workflow import TINY, make_workdir, snakemake

WINDOW = Window(0, 3.0, 3.3, 3.7, 4.0)
EFFICIENCIES = [0.1, 0.02]


def _toy(g, n_sr=4000, n_template=12000, k=3, signal=0):
    """SR data and an independent template of the same background (score ~ N(0, 1)), in k folds; ``signal`` events
    at score ~ N(3, 0.3) join the data."""
    score = np.concatenate([g.normal(0, 1, n_sr), g.normal(3, 0.3, signal)])
    label = np.concatenate([np.zeros(n_sr, int), np.ones(signal, int)])
    mjj = g.uniform(3.3, 3.7, len(score))
    events = pd.DataFrame({"mjj": mjj, "region": np.full(len(score), REGION_SR), "label": label, "score": score})
    template = pd.DataFrame({"mjj": g.uniform(3.3, 3.7, n_template), "region": REGION_SR, "label": 0,
                             "score": g.normal(0, 1, n_template), "fold": g.integers(0, k, n_template)})
    return events, template


def test_the_template_counts_pulls_on_background_only_toys_have_mean_0_and_width_1():
    g = np.random.default_rng(11)
    pulls = {e: [] for e in EFFICIENCIES}
    for _ in range(300):
        events, template = _toy(g)
        for row in template_count(events, template, WINDOW, EFFICIENCIES, "asymptotic"):
            pulls[row.efficiency].append((row.n_obs - row.n_bkg) / np.sqrt(row.n_bkg + row.n_bkg_err ** 2))
            assert row.fit_ok and row.fit_message == "template count"
    for eff, p in pulls.items():
        p = np.asarray(p)
        # 300 toys: the mean's error 0.06, the width's 0.04
        assert abs(p.mean()) < 0.2, (eff, p.mean())
        assert 0.85 < p.std() < 1.15, (eff, p.std())


def test_a_templates_ensemble_of_replicas_enters_its_uncertainty_and_restores_the_pulls():
    """The template's model is off by a random tilt of the score's tail each pseudo-experiment (a reweighter trained
    on other events would be off by another): the statistical error alone gives pulls far wider than 1. Replicas
    off from the nominal as the nominal is from the truth (what a bootstrap of the model's training measures) put
    that spread into n_bkg_err, and the pulls are standard again."""
    g = np.random.default_rng(17)
    pulls = {True: [], False: []}
    for _ in range(200):
        events, template = _toy(g)
        tilt = lambda d: np.exp(d * template["score"].to_numpy())  # noqa: E731
        delta = g.normal(0, 0.06)
        template["weight"] = tilt(delta)
        for with_ensemble in (True, False):
            replicas = {f"{REPLICA_WEIGHT}{r}": tilt(delta + g.normal(0, 0.06)) for r in range(20)}
            row = template_count(events, template.assign(**replicas) if with_ensemble else template, WINDOW, [0.02],
                                 "asymptotic")[0]
            assert row.template_replicas == (20 if with_ensemble else 0)
            assert (row.n_bkg_err_ensemble > 0) == with_ensemble
            pulls[with_ensemble].append((row.n_obs - row.n_bkg) / np.sqrt(row.n_bkg + row.n_bkg_err ** 2))
    assert np.std(pulls[False]) > 1.25, np.std(pulls[False])  # the model's error, unaccounted for
    assert abs(np.mean(pulls[True])) < 0.25 and 0.85 < np.std(pulls[True]) < 1.15, np.std(pulls[True])


def test_the_ensemble_spread_is_the_standard_deviation_of_each_replicas_prediction():
    template = pd.DataFrame({"score": np.r_[np.zeros(80), np.ones(20)], "fold": 0})
    up, down = np.r_[np.ones(80), 2 * np.ones(20)], np.r_[np.ones(80), 0.5 * np.ones(20)]
    template = template.assign(**{f"{REPLICA_WEIGHT}0": up, f"{REPLICA_WEIGHT}1": down})
    b = [1000 * 40 / 120, 1000 * 10 / 90]
    assert ensemble_spread(template, 0.5, {0: 1000}) == pytest.approx(np.std(b, ddof=1))
    assert ensemble_spread(template.drop(columns=f"{REPLICA_WEIGHT}1"), 0.5, {0: 1000}) == 0.0  # one: no spread
    # folds scored with and without an ensemble (merged, the missing replica weights are NaN): refused, not NaN
    with pytest.raises(ValueError, match=f"replica weights {REPLICA_WEIGHT}1 are missing or not finite"):
        ensemble_spread(template.assign(**{f"{REPLICA_WEIGHT}1": np.r_[np.nan, down[1:]]}), 0.5, {0: 1000})


def test_the_prediction_sums_each_folds_data_times_its_own_templates_fraction_with_its_statistics():
    template = pd.DataFrame({"score": np.r_[np.zeros(80), np.ones(20), np.zeros(50), np.ones(50)],
                             "fold": np.r_[np.zeros(100, int), np.ones(100, int)]})
    b, err = template_prediction(template, 0.5, {0: 1000, 1: 400})
    assert b == pytest.approx(1000 * 0.2 + 400 * 0.5)
    assert err == pytest.approx(np.sqrt(1000 ** 2 * 0.2 * 0.8 / 100 + 400 ** 2 * 0.5 * 0.5 / 100))
    whole = template_prediction(template, 0.5, 1400)  # no folds: the whole template's fraction
    assert whole[0] == pytest.approx(1400 * 70 / 200) and whole[1] == pytest.approx(1400 * np.sqrt(0.35 * 0.65 / 200))


def test_folds_whose_classifiers_score_on_other_scales_are_predicted_each_from_its_own_template():
    """Fold 1's classifier puts everything 5 higher: one threshold over the whole template keeps all of fold 1 and
    none of fold 0, so only fold by fold is the prediction right."""
    g = np.random.default_rng(3)
    pulls = []
    for _ in range(200):
        events, template = _toy(g, k=2)
        events["fold"] = g.integers(0, 2, len(events))
        events.loc[events["fold"] == 1, "score"] += 5
        template.loc[template["fold"] == 1, "score"] += 5
        row = template_count(events, template, WINDOW, [0.1], "asymptotic")[0]
        pulls.append((row.n_obs - row.n_bkg) / np.sqrt(row.n_bkg + row.n_bkg_err ** 2))
    assert abs(np.mean(pulls)) < 0.25 and 0.8 < np.std(pulls) < 1.2


def test_a_signal_above_the_template_is_found_and_its_expected_z_agrees():
    g = np.random.default_rng(5)
    events, template = _toy(g, signal=60)
    rows = {r.efficiency: r for r in template_count(events, template, WINDOW, [1.0, 0.02], "asymptotic")}
    assert rows[1.0].z < 2  # 60 events in 4060: no cut sees nothing
    assert rows[0.02].z > 4 and rows[0.02].n_signal_selected == 60  # S 60 over B about 80
    assert rows[0.02].z_expected == pytest.approx(rows[0.02].z, rel=0.3)


def test_an_unknown_statistic_or_a_method_without_a_template_is_refused_by_name():
    load_builtins()
    assert {"sideband_fit", "template_count"} <= {s.name for s in STATISTICS}
    with pytest.raises(ConfigError, match=r"bumphunt.statistic: 'count' is not a registered test; known: "
                                          r"\['sideband_fit', 'template_count'\]"):
        ScanSettings.from_config({**TINY, "bumphunt": {"statistic": "count"}})
    with pytest.raises(ConfigError, match=r"template_count, which predicts the background from each method's "
                                          r"held-out SR template, but cwola-nn have none"):
        ScanSettings.from_config({**TINY, "bumphunt": {"statistic": "template_count"}})
    settings = ScanSettings.from_config({**TINY, "methods": ["cathode-nn", "idealized-bdt"],
                                         "bumphunt": {"statistic": "template_count"}})
    assert settings.bumphunt.statistic == "template_count"


@pytest.mark.workflow
def test_a_scan_tested_by_template_count_predicts_each_cut_from_its_template(tmp_path):
    config = {**TINY, "scan": "counted", "methods": ["idealized-nn"], "injections": [0],
              "bumphunt": {"efficiencies": [1.0, 0.1, 0.01], "statistic": "template_count"}}
    workdir = make_workdir(tmp_path, config)
    result = snakemake(workdir, "results/counted/pvalue_scan.csv")
    assert result.returncode == 0, result.stderr[-4000:]
    scan = pd.read_csv(workdir / "results/counted/pvalue_scan.csv")
    assert (scan["fit_message"] == "template count").all() and scan["fit_ok"].all()
    cut = scan[scan["efficiency"] == 0.1]
    # background only, the idealized template is the background itself: the SR count within a few sigma of it
    pulls = (cut["n_obs"] - cut["n_bkg"]) / np.sqrt(cut["n_bkg"] + cut["n_bkg_err"] ** 2)
    assert (pulls.abs() < 4).all(), cut[["window", "n_obs", "n_bkg", "n_bkg_err"]]
    ratio = cut["n_bkg"].to_numpy() / scan[scan["efficiency"] == 1.0]["n_bkg"].to_numpy()
    assert np.allclose(ratio, 0.1, rtol=0.05), ratio  # the template's fraction above the cut, times the SR


def test_scores_merged_without_their_folds_are_refused_by_the_template_count_not_counted_wrong(tmp_path):
    from slidescan.io import write_tables
    from slidescan.layout import PseudoExperiment
    from slidescan.stages.bumphunt import window_bumphunt

    settings = ScanSettings.from_config({**TINY, "methods": ["idealized-nn"],
                                         "bumphunt": {"statistic": "template_count"}})
    events, template = _toy(np.random.default_rng(1))
    path = tmp_path / "old.h5"
    write_tables(path, {"scores": events.assign(event_id=np.arange(len(events))), "reference_scores": template},
                 attrs={**PseudoExperiment(0, 1).attrs(), "window": "w00", "method": "idealized-nn"})
    with pytest.raises(ValueError, match=r"old.h5: its scores do not say which fold's classifier scored each event .* "
                                         r"rerun with --forcerun train"):
        window_bumphunt(settings, path)
    write_tables(path, {"scores": events.assign(event_id=np.arange(len(events)), fold=np.arange(len(events)) % 3),
                        "reference_scores": template},
                 attrs={**PseudoExperiment(0, 1).attrs(), "window": "w00", "method": "idealized-nn"})
    table = window_bumphunt(settings, path)
    assert (table["fit_message"] == "template count").all()


def test_a_sideband_fit_row_keeps_its_fit_and_no_ensemble():
    """The fit object is the row's (the spectra figure draws it), never a table column's value."""
    from slidescan.stats.bumphunt import bump_hunt
    from slidescan.stats.dijet import FitResult

    g = np.random.default_rng(1)
    mjj = 3.0 + g.exponential(0.5, 20000)
    mjj = mjj[mjj < 4.0]
    row = bump_hunt(mjj, g.random(len(mjj)), WINDOW, [0.5], 0.05)[0]
    assert isinstance(row.fit, FitResult) and row.fit_ok
    table = row.as_dict()
    assert "fit" not in table and np.isnan(table["n_bkg_err_ensemble"]) and table["template_replicas"] == 0


def test_an_ensemble_of_one_replica_is_refused_by_name():
    """One replica has no spread: the template count would say it has an ensemble and add nothing."""
    with pytest.raises(ConfigError, match=r"salad.replicas: 1 is not allowed \(.*one replica has no spread, so at "
                                          r"least 2\)"):
        ScanSettings.from_config({**TINY, "methods": ["salad-nn"], "salad": {"replicas": 1},
                                  "data": {**TINY["data"], "samples": {"simulation": {}}}})


def test_the_summary_marks_a_template_models_missing_error_but_not_the_idealized_true_background():
    rows = [{"method": m, "fit_message": "template count", "efficiency": e, "template_replicas": r,
             "n_bkg": 100.0, "n_bkg_err_ensemble": 2.0 if r else 0.0}
            for m, r in (("idealized-nn", 0), ("cathode-nn", 0), ("reweight-nn", 5)) for e in (1.0, 0.1)]
    text = template_count_text(pd.DataFrame(rows), {"idealized-nn"})
    assert "idealized-nn: the template's statistics (a held-out sample of the true background" in text
    assert "cathode-nn: the template's statistics ONLY" in text
    assert "reweight-nn: the template's statistics and the spread of 5 bootstrap replicas" in text
    assert "(median 2.0 % of b after a cut" in text
    rows = [{**r, "nonclosure": 0.2 if r["efficiency"] < 1 else 0.0, "n_bkg_err_nonclosure": 25.0}
            for r in rows]
    text = template_count_text(pd.DataFrame(rows), {"idealized-nn"})
    assert "cathode-nn: the template's statistics and the non-closure in its validation region (windows.validation; " \
           "median +20.0 % observed over predicted there, a systematic of median 25.0 % of b after a cut)" in text
    assert "ONLY" not in text


def test_a_validation_regions_non_closure_covers_a_template_biased_in_both_regions():
    """The template's model is off by the same tilt of the score's tail in the SR and in its validation region (an
    extrapolation's bias, which no replica sees): the statistical error alone gives pulls far from 0 and Z above 3 on
    background-only toys; the VR's non-closure with its statistical error covers it (no Z above 3)."""
    g = np.random.default_rng(23)
    tilt = 0.12  # the template's fraction above the 2 % cut about 25 % under the truth's (exp(-0.12 x 2.4))
    pulls, z, off = {True: [], False: []}, {True: [], False: []}, []
    for _ in range(200):
        vr_events, vr_template = _toy(g, n_sr=6000)
        vr = pd.DataFrame([r.as_dict() for r in template_count(
            vr_events, vr_template.assign(weight=np.exp(-tilt * vr_template["score"])), WINDOW, [0.02])])
        events, template = _toy(g)
        template["weight"] = np.exp(-tilt * template["score"])
        for validated in (True, False):
            row = template_count(events, template, WINDOW, [0.02], validation=vr if validated else None)[0]
            pulls[validated].append((row.n_obs - row.n_bkg) / np.sqrt(row.n_bkg + row.n_bkg_err ** 2))
            z[validated].append(row.z)
        assert row.nonclosure != row.nonclosure  # NaN: no validation region, no non-closure
        row = template_count(events, template, WINDOW, [0.02], validation=vr)[0]
        assert row.vr_n_obs == vr["n_obs"].iloc[0] and row.vr_n_bkg == vr["n_bkg"].iloc[0]
        assert row.nonclosure == pytest.approx(row.vr_n_obs / row.vr_n_bkg - 1)
        sigma_r = np.sqrt(row.vr_n_obs / row.vr_n_bkg ** 2
                          + (row.vr_n_obs * vr["n_bkg_err"].iloc[0] / row.vr_n_bkg ** 2) ** 2)
        assert row.n_bkg_err_nonclosure == pytest.approx(np.hypot(row.nonclosure, sigma_r) * row.n_bkg)
        off.append(row.nonclosure)
    assert 0.25 < np.mean(off) < 0.45, np.mean(off)  # the VR measures the bias: its data about 34 % above its template
    assert np.mean(pulls[False]) > 1.5 and max(z[False]) > 3, (np.mean(pulls[False]), max(z[False]))
    # a bias about the size of the systematic is a pull below 1 (one standard deviation of the nuisance), never 3
    assert np.mean(pulls[True]) < 1 and np.std(pulls[True]) < 1, (np.mean(pulls[True]), np.std(pulls[True]))
    assert max(z[True]) < 3, max(z[True])


def test_a_validation_region_without_a_prediction_at_a_cut_leaves_that_cut_untested_and_says_so():
    events, template = _toy(np.random.default_rng(2))
    vr = pd.DataFrame({"efficiency": [0.1, 0.02], "n_obs": [410.0, 3.0], "n_bkg": [400.0, 0.0]})
    loose, tight = template_count(events, template, WINDOW, EFFICIENCIES, validation=vr)
    assert loose.fit_ok and np.isfinite(loose.p0) and loose.nonclosure == pytest.approx(0.025)
    assert not tight.fit_ok and np.isnan(tight.p0) and "validation region predicts no events" in tight.fit_message
    with pytest.raises(ValueError, match="the validation region's template count has 0 rows at efficiency 0.1"):
        template_count(events, template, WINDOW, EFFICIENCIES, validation=vr.iloc[1:])


def test_the_bump_hunt_stage_puts_a_validation_regions_non_closure_into_its_sr_and_not_its_rows(tmp_path):
    from slidescan.io import write_tables
    from slidescan.layout import PseudoExperiment
    from slidescan.stages.bumphunt import run_bumphunt

    settings = ScanSettings.from_config({
        **TINY, "methods": ["idealized-nn"], "data": {**TINY["data"], "synthetic": {**TINY["data"]["synthetic"],
                                                                                     "context": True}},
        "windows": {"kind": "thresholds", "thresholds": {"ht": [2.4]}, "validation": {"ht": 0.3}},
        "bumphunt": {"efficiencies": [1.0, 0.1]}})
    assert [w.name for w in settings.windows] == ["w00", "v00"]
    g = np.random.default_rng(5)
    files = {}
    for name, scale in (("w00", 1.0), ("v00", 0.9)):  # the VR's template 10 % high above any cut
        events, template = _toy(g)
        events = events.assign(event_id=np.arange(len(events)), fold=g.integers(0, 3, len(events)))
        files[name] = tmp_path / f"{name}.h5"
        write_tables(files[name], {"scores": events, "reference_scores": template.assign(
            weight=np.where(template["score"] > np.quantile(template["score"], 0.9), 1 / scale, 1.0))},
            attrs={**PseudoExperiment(0, 1).attrs(), "window": name, "method": "idealized-nn"})
    table = run_bumphunt(settings, [files["v00"], files["w00"]], tmp_path / "scan.csv")
    assert set(table["window"]) == {"w00"}  # the VR is no search region: not in the scan's rows
    cut = table[table["efficiency"] == 0.1].iloc[0]
    assert -0.2 < cut["nonclosure"] < 0 and cut["n_bkg_err"] > abs(cut["nonclosure"]) * cut["n_bkg"] * 0.999
    with pytest.raises(ValueError, match=r"no scores of the validation region\(s\) v00 \(validating w00\)"):
        run_bumphunt(settings, [files["w00"]], tmp_path / "scan.csv")


def test_a_plugin_test_written_before_validation_regions_still_runs_a_scan_without_them(tmp_path, monkeypatch):
    from slidescan.io import write_tables
    from slidescan.layout import PseudoExperiment
    from slidescan.stages.bumphunt import window_bumphunt
    from slidescan.stats.statistics import Statistic
    from slidescan.stats.template_count import template_count as count

    def five_arguments(events, template, window, settings, seed):  # the signature docs/architecture.md gave
        return count(events, template, window, settings.efficiencies)

    load_builtins()
    monkeypatch.setitem(STATISTICS._items, "five_arguments",
                        Statistic("five_arguments", "a plug-in's test", five_arguments, needs_template=True))
    settings = ScanSettings.from_config({**TINY, "methods": ["idealized-nn"],
                                         "bumphunt": {"statistic": "five_arguments"}})
    events, template = _toy(np.random.default_rng(4))
    path = tmp_path / "w00.h5"
    write_tables(path, {"scores": events.assign(event_id=np.arange(len(events)), fold=np.arange(len(events)) % 3),
                        "reference_scores": template},
                 attrs={**PseudoExperiment(0, 1).attrs(), "window": "w00", "method": "idealized-nn"})
    table = window_bumphunt(settings, path)
    assert (table["fit_message"] == "template count").all() and table["nonclosure"].isna().all()
