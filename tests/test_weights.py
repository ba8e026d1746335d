"""Per-event weights (data.table.weight): read and checked, refused by methods that would ignore them, and used
by the classifiers, the bump hunt's histograms, fit and p-values, the look-elsewhere toys and the SIC figures."""

import re

import numpy as np
import pandas as pd
import pytest

from slidescan.config import ConfigError
from slidescan.io import read_table
from slidescan.settings import ScanSettings
from slidescan.stages.data import prepare_data
from slidescan.stats import bump_hunt
from slidescan.stats.dijet import fit_dijet
from slidescan.stats.lookelsewhere import global_pvalues
from slidescan.stats.metrics import sic_figures
from slidescan.windows import REGION_SR, Window

from test_features import BASE, TABLE, _ntuple
from test_workflow import TINY, make_workdir, snakemake

WINDOW = Window("w00", 3.0, 3.3, 3.7, 4.0)


def _spectrum(n=40000, signal=0, seed=0):
    """Falling dijet-like mjj over the window, scores uniform, with ``signal`` events at 3.5 TeV scoring high."""
    g = np.random.default_rng(seed)
    mjj = 3.0 + g.exponential(0.5, 3 * n)
    mjj = mjj[mjj < 4.0][:n]
    scores = g.random(len(mjj))
    labels = np.zeros(len(mjj), int)
    if signal:
        mjj = np.concatenate([mjj, g.normal(3.5, 0.05, signal)])
        scores = np.concatenate([scores, 0.9 + 0.1 * g.random(signal)])
        labels = np.concatenate([labels, np.ones(signal, int)])
    return mjj, scores, labels


def _hunt(mjj, scores, labels=None, weights=None, efficiencies=(1.0, 0.1)):
    return bump_hunt(mjj, scores, WINDOW, list(efficiencies), 0.05, 3, labels=labels, weights=weights)


def test_unit_weights_give_exactly_the_unweighted_bump_hunt():
    mjj, scores, labels = _spectrum(signal=300)
    for plain, unit in zip(_hunt(mjj, scores, labels), _hunt(mjj, scores, labels, np.ones(len(mjj)))):
        assert unit.n_obs == plain.n_obs and unit.count_scale == 1.0
        assert unit.threshold == pytest.approx(plain.threshold, abs=1e-4)  # inverted-cdf vs interpolated quantile
        assert unit.n_bkg == pytest.approx(plain.n_bkg, rel=1e-6)
        assert unit.p0 == pytest.approx(plain.p0, rel=1e-4)
        assert unit.z_expected == pytest.approx(plain.z_expected, rel=1e-4)


def test_scaling_every_weight_changes_the_counts_but_no_p_value():
    """Weights of 2.5 are 2.5 times the sum of weights but the same number of events: the same evidence. Twice the
    events (each counted once) are more evidence: the weighted fit must not mistake one for the other."""
    mjj, scores, labels = _spectrum(signal=300)
    plain = _hunt(mjj, scores, labels)
    scaled = _hunt(mjj, scores, labels, np.full(len(mjj), 2.5))
    doubled = _hunt(np.tile(mjj, 2), np.tile(scores, 2), np.tile(labels, 2))
    for p, s, d in zip(plain, scaled, doubled):
        assert s.n_obs == pytest.approx(2.5 * p.n_obs) and s.count_scale == pytest.approx(0.4)
        assert s.n_bkg == pytest.approx(2.5 * p.n_bkg, rel=1e-4)
        assert s.n_bkg_err == pytest.approx(2.5 * p.n_bkg_err, rel=1e-3)
        assert s.z == pytest.approx(p.z, abs=2e-3)
        assert s.n_signal_selected == pytest.approx(2.5 * p.n_signal_selected)
        assert s.z_expected == pytest.approx(p.z_expected, rel=1e-3)
    assert plain[1].z > 2 and doubled[1].z > plain[1].z + 1  # sqrt(2) more significance from twice the events


def test_zero_weights_are_events_left_out():
    mjj, scores, labels = _spectrum(signal=300)
    keep = np.random.default_rng(1).random(len(mjj)) < 0.6
    weighted = _hunt(mjj, scores, labels, keep.astype(float), efficiencies=(1.0,))[0]
    subsample = _hunt(mjj[keep], scores[keep], labels[keep], efficiencies=(1.0,))[0]
    assert weighted.n_obs == subsample.n_obs and weighted.n_signal_selected == subsample.n_signal_selected
    assert weighted.n_bkg == pytest.approx(subsample.n_bkg, rel=1e-6)
    assert weighted.p0 == pytest.approx(subsample.p0, rel=1e-4)


def test_the_fit_uncertainty_follows_the_effective_number_of_events():
    """Uneven weights (a sliced simulation) carry fewer effective events than their sum: a wider fit."""
    g = np.random.default_rng(3)
    edges = [np.linspace(3.0, 3.3, 7), np.linspace(3.7, 4.0, 7)]
    mjj = 3.0 + g.exponential(0.5, 200000)
    mjj = mjj[(mjj < 3.3) | ((mjj >= 3.7) & (mjj < 4.0))]
    w = np.where(g.random(len(mjj)) < 0.5, 0.2, 1.8)  # mean 1, sumw2 / sumw = 1.64
    counts = [np.histogram(mjj, e, weights=w)[0] for e in edges]
    variances = [np.histogram(mjj, e, weights=w * w)[0] for e in edges]
    plain = fit_dijet(edges, [np.histogram(mjj, e)[0] for e in edges])
    weighted = fit_dijet(edges, counts, variance_sets=variances)
    naive = fit_dijet(edges, counts)  # sums of weights taken as counts
    assert weighted.ok and plain.ok and naive.ok
    err = {name: np.sqrt(fit.covariance[0, 0]) for name, fit in (("plain", plain), ("weighted", weighted),
                                                                 ("naive", naive))}
    assert err["weighted"] / err["naive"] == pytest.approx(np.sqrt(1.64), rel=0.03)
    assert err["naive"] == pytest.approx(err["plain"], rel=0.03)


def test_the_global_p_value_uses_the_effective_counts():
    mjj, scores, labels = _spectrum(signal=300)
    rows = []
    for weights in (None, np.full(len(mjj), 4.0)):
        for r in _hunt(mjj, scores, labels, weights):
            rows.append({"window": "w00", "method": "cwola-bdt" if weights is None else "weighted", "injection": 300,
                         "seed": 1, **r.as_dict()})
    table = pd.DataFrame(rows)
    result = global_pvalues(table, n_toys=2000).set_index("method")
    assert result.loc["weighted", "min_p0"] == pytest.approx(result.loc["cwola-bdt", "min_p0"], rel=1e-3)
    assert result.loc["weighted", "global_p0"] == pytest.approx(result.loc["cwola-bdt", "global_p0"], rel=0.1)
    unscaled = global_pvalues(table.drop(columns="count_scale"), n_toys=2000).set_index("method")
    assert unscaled.loc["weighted", "global_p0"] < result.loc["weighted", "global_p0"] / 10


def test_sic_figures_weight_the_efficiencies_and_count_events_for_the_floor():
    _, scores, labels = _spectrum(n=20000, signal=500)
    keep = np.random.default_rng(2).random(len(scores)) < 0.5
    weighted = sic_figures(labels, scores, weights=keep.astype(float))
    subsample = sic_figures(labels[keep], scores[keep])
    assert weighted["auc"] == pytest.approx(subsample["auc"], rel=1e-9)
    assert weighted["sic_at_0.2"] == pytest.approx(subsample["sic_at_0.2"], rel=1e-6)


def test_the_classifier_references_train_with_the_events_weights():
    from slidescan.methods import METHODS, WindowInputs
    from slidescan.layout import PseudoExperiment

    g = np.random.default_rng(4)
    n = 4000
    data = pd.DataFrame({"mjj": g.uniform(3.0, 4.0, n), "f": g.random(n), "label": 0, "fold": g.integers(0, 2, n),
                         "weight": g.uniform(0.1, 2.0, n)})
    data["region"] = WINDOW.region(data["mjj"].to_numpy())
    reference = data.assign(weight=g.uniform(3, 4, n))
    inputs = WindowInputs(WINDOW, PseudoExperiment(0, 1), data, {"background_sr": reference, "signal": reference},
                          {}, ["f"])
    cwola = METHODS["cwola"].fold_data(inputs, 0, "cwola-bdt").train
    train = data[data["fold"] == 1]
    sr, sb = train[train["region"] == REGION_SR], train[train["region"] != REGION_SR]
    np.testing.assert_array_equal(cwola.weight, np.concatenate([sr["weight"], sb["weight"]]))
    idealized = METHODS["idealized"].fold_data(inputs, 0, "idealized-bdt").train
    np.testing.assert_array_equal(idealized.weight[idealized.y == 0], reference.loc[reference["fold"] == 1, "weight"])


# --- weighted flows (CATHODE's sideband flow) ---

FLOW = {"transforms": 3, "hidden": [32], "epochs": 4, "batch_size": 256, "learning_rate": 0.003, "n_best": 2}


def _two_populations(n=4000, seed=0):
    """Two populations of 3 features: A around 0.3, B around 0.7 (same mjj range)."""
    g = np.random.default_rng(seed)
    m = g.uniform(1.0, 2.0, n)
    b = g.random(n) < 0.5
    x = np.stack([g.normal(np.where(b, 0.7, 0.3), 0.05), g.normal(1 - 0.2 * m, 0.05), g.exponential(0.3, n)], axis=1)
    return x, m, b


def test_a_weighted_flow_learns_the_weighted_density():
    from slidescan.density.flow_settings import FlowSettings
    from slidescan.density.flows import train_flow

    settings = FlowSettings.from_config(FLOW)
    x, m, b = _two_populations()
    plain = train_flow(x, m, settings, 3, log=lambda s: None)
    only_a = train_flow(x, m, settings, 3, log=lambda s: None, weight=np.where(b, 0.0, 1.0))
    doubled = train_flow(x, m, settings, 3, log=lambda s: None, weight=np.full(len(x), 2.0))
    np.testing.assert_allclose(doubled.history["val_loss"], plain.history["val_loss"], rtol=1e-5)
    assert doubled.fingerprint != plain.fingerprint  # weights are part of what the flow was fitted on
    assert np.mean(plain.sample(m[:2000], 1)[:, 0]) == pytest.approx(0.5, abs=0.05)
    assert np.mean(only_a.sample(m[:2000], 1)[:, 0]) == pytest.approx(0.3, abs=0.05)
    with pytest.raises(ValueError, match="flow training: weights must be one finite value >= 0 per event"):
        train_flow(x, m, settings, 3, log=lambda s: None, weight=-np.ones(len(x)))


def test_a_weighted_member_of_a_batched_model_is_the_weighted_flow_trained_alone():
    from slidescan.density.batched import FlowTask, train_flows
    from slidescan.density.flow_settings import FlowSettings
    from slidescan.density.flows import train_flow

    settings = FlowSettings.from_config(FLOW)
    data = [_two_populations(n, s) for n, s in ((3000, 1), (2200, 2))]
    weights = [np.where(data[0][2], 0.2, 1.8), None]  # a weighted member batched with an unweighted one
    together = train_flows([FlowTask(x, m, 10 + i, log=lambda s: None, weight=w)
                            for i, ((x, m, _), w) in enumerate(zip(data, weights))], settings)
    for i, ((x, m, _), w) in enumerate(zip(data, weights)):
        alone = train_flow(x, m, settings, 10 + i, log=lambda s: None, weight=w)
        np.testing.assert_allclose(together[i].history["val_loss"], alone.history["val_loss"], rtol=2e-5)
        np.testing.assert_allclose(together[i].history["train_loss"], alone.history["train_loss"], rtol=2e-5)
        assert together[i].best_epochs == alone.best_epochs and together[i].fingerprint == alone.fingerprint


# --- reading and refusing ---

WEIGHTED = {**TABLE, "weight": "evt_w"}


def _weighted_ntuple(path, n=3000, weights=None):
    df = _ntuple(n)
    df["evt_w"] = np.random.default_rng(5).uniform(0.5, 1.5, len(df)) if weights is None else weights
    df.to_parquet(path)
    return df


def test_the_weight_column_is_read_and_checked(tmp_path):
    path = tmp_path / "weighted.parquet"
    df = _weighted_ntuple(path)
    s = ScanSettings.from_config({**BASE, "data": {"source": "table", "table": {"path": str(path), **WEIGHTED,
                                                                                "tree": None}}})
    prepare_data(s, tmp_path / "events.h5", log=lambda m: None)
    events = pd.concat([read_table(tmp_path / "events.h5", t) for t in ("background", "signal_pool")])
    assert events["weight"].sum() + read_table(tmp_path / "events.h5", "reference_background")["weight"].sum() + \
        read_table(tmp_path / "events.h5", "reference_signal")["weight"].sum() == pytest.approx(df["evt_w"].sum())

    def run(weights, column="evt_w"):
        _weighted_ntuple(path, weights=weights)
        table = {"path": str(path), **WEIGHTED, "tree": None, "weight": column}
        prepare_data(ScanSettings.from_config({**BASE, "data": {"source": "table", "table": table}}),
                     tmp_path / "out.h5", log=lambda m: None)

    negative = np.ones(3000)
    negative[[3, 7]] = -0.5
    with pytest.raises(ValueError, match=re.escape(f"{path}: column 'evt_w' (data.table.weight) has 2 of 3000 negative "
                                                   "weights (smallest -0.5)")):
        run(negative)
    with pytest.raises(ValueError, match=re.escape(f"{path}: 1 of 3000 events have non-finite values (NaN or inf) in "
                                                   "column(s) weight (1)")):
        run(np.where(np.arange(3000) == 9, np.nan, 1.0))
    with pytest.raises(ValueError, match=re.escape(f"{path}: no column 'w' (for weight)")):
        run(None, column="w")
    assert not (tmp_path / "out.h5").exists()


def test_a_scan_with_weights_refuses_methods_that_would_ignore_them(tmp_path, monkeypatch):
    from slidescan.methods import METHODS

    table = {"source": "table", "table": {"path": str(tmp_path / "x.parquet"), **WEIGHTED}}
    every = ["cwola-bdt", "cwola-nn", "idealized-bdt", "supervised-nn", "cathode-nn", "cathode-lightning", "anode",
             "ranode", "flow-nll"]
    s = ScanSettings.from_config({**BASE, "methods": every, "data": table})
    assert s.data.table.weight == "evt_w"
    # the flow of the simulated background does not read weights: flow-nll on it is refused, by the model's name
    with pytest.raises(ConfigError, match=re.escape("data.table.weight is set, but model simulation_flow (of "
                                                    "flow-nll) would ignore per-event weights")):
        ScanSettings.from_config({**BASE, "methods": ["cwola-bdt", "flow-nll"], "data": table,
                                  "flow-nll": {"background": "simulation"}})
    # a method (a plug-in, say) that does not declare weights is refused by its name
    monkeypatch.setattr(type(METHODS["anode"]), "weighted", False)
    with pytest.raises(ConfigError, match=re.escape("data.table.weight is set, but method anode would ignore")):
        ScanSettings.from_config({**BASE, "methods": ["cwola-bdt", "anode", "ranode"], "data": table})


# --- a weighted scan through the workflow ---


@pytest.mark.workflow
def test_a_weighted_scan_trains_and_hunts_with_its_weights(tmp_path):
    """A sliced simulation: background in two halves of weights 0.5 and 1.5. Every stage carries the weights; the
    bump hunt's counts are sums of weights and its test is on effective counts."""
    g = np.random.default_rng(11)
    n = 60000
    mjj = 2.3 + g.exponential(0.6, 4 * n)
    mjj = mjj[mjj < 4.6][:n]
    bkg = pd.DataFrame({"mjj": mjj, "mj1": g.uniform(0.05, 0.5, n), "delta_mj": g.uniform(0, 0.4, n),
                        "tau21_j1": g.uniform(0, 1, n), "tau21_j2": g.uniform(0, 1, n), "is_signal": 0,
                        "w": np.where(g.random(n) < 0.5, 0.5, 1.5)})
    m = 3000
    sig = pd.DataFrame({"mjj": g.normal(3.5, 0.1, m), "mj1": g.normal(0.1, 0.01, m), "delta_mj": g.normal(0.4, 0.02, m),
                        "tau21_j1": g.uniform(0, 0.3, m), "tau21_j2": g.uniform(0, 0.3, m), "is_signal": 1,
                        "w": 1.0})
    config = {**TINY, "scan": "weighted", "injections": [600], "methods": ["cwola-bdt", "cathode-bdt"],
              "windows": {**TINY["windows"], "last_sr_lo": 3.3, "first_sr_lo": 3.3},
              "data": {"source": "table", "seed": 3, "table": {"path": "ntuple.parquet", "label": "is_signal",
                                                               "weight": "w"}}}
    workdir = make_workdir(tmp_path, config)
    pd.concat([bkg, sig], ignore_index=True).to_parquet(workdir / "ntuple.parquet")
    result = snakemake(workdir)
    assert result.returncode == 0, result.stderr[-4000:]
    results = workdir / "results/weighted"
    scores = read_table(results / "scores/w00/cwola-bdt/inj600_seed1.h5", "scores")
    assert set(np.unique(scores.loc[scores["label"] == 0, "weight"])) == {0.5, 1.5}
    held_out = read_table(results / "flows/w00/inj600_seed1.h5", "sb_data")  # the flow's closure data, weighted
    assert set(np.unique(held_out.loc[held_out["mjj"] < 3.0, "weight"])) <= {0.5, 1.5, 1.0}
    cathode = read_table(results / "scores/w00/cathode-bdt/inj600_seed1.h5", "scores")
    assert "weight" in cathode and np.isfinite(cathode["score"]).all()
    scan = pd.read_csv(results / "pvalue_scan.csv")
    uncut = scan[(scan["efficiency"] == 1.0) & (scan["method"] == "cwola-bdt")]
    in_sr = scores[(scores["mjj"] >= 3.3) & (scores["mjj"] < 3.7)]
    assert uncut["n_obs"].iloc[0] == pytest.approx(in_sr["weight"].sum()) != len(in_sr)  # sums of weights
    # sumw / sumw2 of half 0.5 and half 1.5 weights: 1 / 1.25 (the signal's unit weights move it a little)
    assert uncut["count_scale"].to_numpy() == pytest.approx(0.8, abs=0.04)
    assert scan["p0"].notna().all()
    from pathlib import Path

    from slidescan.report.summary import summary_text

    assert "Events are weighted by column ``w`` of ``ntuple.parquet``" in summary_text(workdir,
                                                                                     Path("config/config.yaml"))
