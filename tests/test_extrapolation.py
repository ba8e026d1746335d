"""The non-resonant extrapolations (issue 32, part 5; arXiv:2311.12924): Reweight, Generate and Morph, trained
outside the SR of a threshold region and carried into it, and the context weights w(m) they share."""

import numpy as np
import pandas as pd
import pytest

from slidescan.density.context_weights import context_reweighter
from slidescan.density.salad import SaladSettings, reweighter, weights
from slidescan.io import read_attrs, read_table
from slidescan.report.summary import template_count_text
from slidescan.windows import REGION_SR

from test_workflow import TINY, make_workdir, snakemake


def _toy(n, ht_shift, met_scale, generator):
    return pd.DataFrame({"ht": generator.normal(3.0 + ht_shift, 0.3, n), "met": generator.exponential(met_scale, n),
                         "x": generator.normal(0.0, 1.0, n)})


def _true_log_w(events):
    """log P_data(m) / P_sim(m) of the toy: ht N(3.06, 0.3) over N(3, 0.3), met Exp(0.125) over Exp(0.1)."""
    ht, met = events["ht"].to_numpy(), events["met"].to_numpy()
    return ((ht - 3.0) ** 2 - (ht - 3.06) ** 2) / (2 * 0.09) + np.log(0.1 / 0.125) + met * (1 / 0.1 - 1 / 0.125)


@pytest.mark.parametrize("which", ["context", "reweight"])
def test_reweighting_learned_outside_the_sr_recovers_a_known_w_of_m_inside_it(which):
    """A simulation and data that differ only in their context m by a known w(m): the weights learned in the
    L-shaped CR of a high corner (ht >= 3.2, met >= 0.2) are w(m) in the corner too, normalisation included (only
    an overall constant is free, the same inside and outside). Unweighted, the corner's log w spreads by 0.3."""
    generator = np.random.default_rng(7)
    simulation, data = _toy(100_000, 0.0, 0.10, generator), _toy(100_000, 0.06, 0.125, generator)
    corner = lambda e: (e["ht"] >= 3.2) & (e["met"] >= 0.2)  # noqa: E731
    sim_cr, sim_sr, data_cr = simulation[~corner(simulation)], simulation[corner(simulation)], data[~corner(data)]
    if which == "context":  # Generate's and Morph's w(m), on the context alone
        columns, model, tolerance = ["ht", "met"], context_reweighter(data_cr, sim_cr, ["ht", "met"], 2), 0.05
    else:  # Reweight's (SALAD's trees), on the features and the context: x is alike, so w depends on m only
        columns = ["x", "ht", "met"]
        model, tolerance = reweighter(SaladSettings(200, 0.1, 31, 20.0, 0), data_cr, sim_cr, columns, 1), 0.15
    assert np.std(_true_log_w(sim_sr)) > 0.2
    residual = {what: np.log(weights(model, events, columns)) - _true_log_w(events)
                for what, events in (("CR", sim_cr.iloc[:20_000]), ("SR", sim_sr))}
    assert residual["SR"].std() < tolerance and residual["CR"].std() < tolerance, {k: v.std() for k, v in residual.items()}
    assert abs(residual["SR"].mean() - residual["CR"].mean()) < tolerance


EXTRAPOLATION = {
    **TINY, "scan": "extrapolation",
    "data": {**TINY["data"], "synthetic": {**TINY["data"]["synthetic"], "context": True},
             # the study's mistuning: met -> met (1 + met / 500 GeV), jet masses, tau21 and mjj distorted
             "samples": {"simulation": {"n_events": 40000, "mismodelling": "strong"}}},
    # the flows conditioned on ht alone, as the shipped configs: Generate's samples take met from the simulated
    # events whose ht they are drawn at
    "windows": {"kind": "thresholds", "thresholds": {"ht": [2.4], "met": [0.15]}, "condition": ["ht"]},
    "methods": ["reweight-bdt", "generate-bdt", "morph-bdt"], "injections": [0], "salad": {"max_iter": 50, "replicas": 3},
    "context_weights": {"replicas": 3}, "feta": {"epochs": 5},
}


def _weighted_mean(events, column, weight=None):
    return float(np.average(events[column], weights=weight))


@pytest.mark.workflow
def test_reweight_generate_and_morph_extrapolate_a_mistuned_simulation_into_the_corner(tmp_path):
    workdir = make_workdir(tmp_path, EXTRAPOLATION)
    result = snakemake(workdir)
    assert result.returncode == 0, result.stderr[-4000:]
    results = workdir / "results/extrapolation"
    split = read_table(results / "split/w00/inj0_seed1.h5", "data")
    data_sr = split[split["region"] == REGION_SR]
    # w(m) learned outside the SR undoes most of the mistuned met inside it: the simulation's SR met is far too hard
    context = results / "models/context_weights/w00/inj0_seed1.h5"
    pool, attrs = read_table(context, "sr_simulation"), read_attrs(context)
    assert attrs["cr_auc_before"] > 0.55 and abs(attrs["cr_auc_after"] - 0.5) < 0.03, attrs
    raw_gap = _weighted_mean(pool, "met") - _weighted_mean(data_sr, "met")
    gap = _weighted_mean(pool, "met", pool["weight"]) - _weighted_mean(data_sr, "met")
    assert raw_gap > 0.02 and abs(gap) < 0.3 * raw_gap, (raw_gap, gap)
    # Generate: the CR flow sampled at those conditions, inside the corner, with the reweighted met
    samples = read_table(results / "models/generate/w00/inj0_seed1.h5", "samples")
    assert len(samples) == 4 * len(data_sr) and (samples["ht"] >= 2.4).all() and (samples["met"] >= 0.15).all()
    # each sample's ht and met are one reweighted simulated SR event's (the flow saw only its ht)
    drawn = samples[["ht", "met"]].merge(pool[["ht", "met"]].drop_duplicates(), how="left", indicator=True)
    assert (drawn["_merge"] == "both").all()
    assert abs(_weighted_mean(samples, "met") - _weighted_mean(data_sr, "met")) < 0.3 * raw_gap
    assert read_attrs(results / "models/generate/w00/inj0_seed1.h5")["cr_closure_auc"] < 0.6
    # Morph: FETA's morphed SR simulation times w(m); Reweight: SALAD's weights on the features and the context
    morphed = read_table(results / "models/feta/w00/inj0_seed1.h5", "template")
    assert len(morphed) == len(pool) and (morphed["met"] >= 0.15).all()
    salad = read_attrs(results / "models/salad_weights/w00/inj0_seed1.h5")
    assert salad["sideband_auc_before"] > salad["sideband_auc_after"], salad
    # each is tested against its own template by the template count, and its closure is on the template pages
    scan = pd.read_csv(results / "pvalue_scan.csv")
    assert set(scan["method"]) == {"reweight-bdt", "generate-bdt", "morph-bdt"}
    assert (scan["fit_message"] == "template count").all() and scan["p0"].between(0, 1).all()
    # the ensembles of Reweight's and Morph's weights (bootstrap replicas of salad's and w(m)'s fits) widen b's error;
    # Generate's samples carry w(m)'s replicas as importance weights of their conditions (not the flow's own spread)
    cut = scan[scan["efficiency"] < 1].set_index("method")
    for method, replicas in (("reweight-bdt", 3), ("morph-bdt", 3), ("generate-bdt", 3)):
        rows = cut.loc[[method]]
        assert (rows["template_replicas"] == replicas).all()
        assert ((rows["n_bkg_err_ensemble"] > 0) == (replicas > 0)).all(), rows
    assert len(read_table(results / "models/salad_weights/w00/inj0_seed1.h5", "template").filter(like="replica").columns) == 3
    summary = template_count_text(scan)
    assert "morph-bdt: the template's statistics and the spread of 3 bootstrap replicas of its reweighting" in summary
    assert "ONLY" in template_count_text(scan.assign(template_replicas=0))
    for model in ("context_weights", "generate", "feta", "salad_weights"):
        assert (results / f"plots/models/{model}/w00/inj0_seed1.png").stat().st_size > 5000
    for method in ("reweight-bdt", "generate-bdt", "morph-bdt"):
        assert (results / f"plots/templates/{method}/w00.png").stat().st_size > 5000
