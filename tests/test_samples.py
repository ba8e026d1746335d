"""Auxiliary samples (data.samples): a simulation generated with a mismodelling preset or read from a file, prepared
once, split per window, handed to the methods and models that declare it, and required at configuration."""

import numpy as np
import pandas as pd
import pytest

from slidescan.config import ConfigError
from slidescan.data.synthetic import PIVOT, SyntheticModel, generate_background, generate_simulation, mismodel
from slidescan.io import read_attrs, read_table
from slidescan.settings import ScanSettings
from slidescan.windows import REGION_SB_HIGH, REGION_SB_LOW, REGION_SR, Window

from test_workflow import TINY, job_counts, make_workdir, snakemake


def test_the_presets_distort_what_they_claim():
    model = SyntheticModel.from_config(None)
    truth = generate_background(20000, model, np.random.default_rng(5))
    # none: the background model itself (the same draw with the same stream)
    none = generate_simulation(20000, model, "none", np.random.default_rng(5))
    pd.testing.assert_frame_equal(none, truth)
    strong = mismodel(truth, "strong")
    mjj = truth["mjj"].to_numpy()
    # mjj -> mjj (1 + (mjj - 3.5 TeV) / 6 TeV): unchanged at the pivot, 4.5 TeV -> 5.25 TeV
    assert strong["mjj"].to_numpy() == pytest.approx(mjj * (1 + (mjj - PIVOT) / 6))
    assert mismodel(pd.DataFrame({"mjj": [3.5, 4.5], "mj1": [0.1, 0.1], "delta_mj": [0.2, 0.2], "tau21_j1": [0.5, 0.5],
                                  "tau21_j2": [0.5, 0.5]}), "strong")["mjj"].tolist() == pytest.approx([3.5, 5.25])
    # tau21 -> tau21^1.1 (every tau21 below 1 falls), the jet masses scaled by 1 + 8 % per TeV from 3.5 TeV
    assert strong["tau21_j1"].to_numpy() == pytest.approx(truth["tau21_j1"].to_numpy() ** 1.1)
    assert (strong["mj1"] / truth["mj1"]).to_numpy() == pytest.approx(1 + 0.08 * (mjj - PIVOT))
    mild = mismodel(truth, "mild")
    assert (mild["delta_mj"] / truth["delta_mj"]).to_numpy() == pytest.approx(1 + 0.02 * (mjj - PIVOT))
    assert mild["tau21_j2"].to_numpy() == pytest.approx(truth["tau21_j2"].to_numpy() ** 1.03)
    with pytest.raises(ValueError, match="mismodelling 'wild'"):
        mismodel(truth, "wild")


# a Reference whose template is the simulation's SR events (the naive simulation template, which SALAD reweights and
# FETA morphs)
SIM_TEMPLATE = '''
from slidescan import Reference, register


def build(inputs, fold):
    sim = inputs.samples["simulation"]
    return inputs.sr(inputs.training_events(fold)), inputs.sr(sim[sim["fold"] != fold])


def held_out(inputs, fold):
    sim = inputs.samples["simulation"]
    return inputs.sr(sim[sim["fold"] == fold])


register(Reference("simtemplate", "SR data vs the simulation's SR", build, held_out=held_out, samples=("simulation",)))
'''

SIM = {**TINY, "scan": "sim", "plugins": ["sim_template.py"], "methods": ["simtemplate-bdt", "salad-bdt", "feta-bdt", "curtains-bdt"],
       "injections": [0], "salad": {"max_iter": 50}, "feta": {"epochs": 5},
       "data": {**TINY["data"], "samples": {"simulation": {"n_events": 40000}}}}


def test_a_method_that_needs_a_sample_the_scan_lacks_stops_at_configuration(tmp_path):
    (tmp_path / "sim_template.py").write_text(SIM_TEMPLATE)
    without = {**SIM, "data": TINY["data"]}
    with pytest.raises(ConfigError, match=r"method simtemplate-bdt needs the sample\(s\) simulation \(method simtemplate\)"
                                          r", but data.samples has none; add data.samples.simulation"):
        ScanSettings.from_config(without, workdir=tmp_path)
    with pytest.raises(ConfigError, match=r"data.samples.simulation: the synthetic source generates its samples"):
        ScanSettings.from_config({**SIM, "data": {**TINY["data"], "samples": {"simulation": {"path": "sim.h5"}}}},
                                 workdir=tmp_path)
    settings = ScanSettings.from_config(SIM, workdir=tmp_path)
    assert settings.used_samples() == ("simulation",)


@pytest.mark.workflow
def test_a_simulation_sample_reaches_the_methods_and_models_that_read_it_and_a_changed_preset_reruns_only_them(tmp_path):
    workdir = make_workdir(tmp_path, SIM)
    (workdir / "sim_template.py").write_text(SIM_TEMPLATE)
    result = snakemake(workdir)
    assert result.returncode == 0, result.stderr[-4000:]
    results = workdir / "results/sim"
    for window in ("w00", "w01"):
        events = read_table(results / f"samples/simulation/{window}.h5", "events")
        assert set(events["region"]) == {REGION_SB_LOW, REGION_SR, REGION_SB_HIGH}
    scan = pd.read_csv(results / "pvalue_scan.csv")
    # with no mismodelling the simulation is the background drawn anew: SR data and template are alike
    auc = scan.groupby(["method", "window"])["sr_auc_vs_reference"].first()
    assert ((auc[["simtemplate-bdt", "salad-bdt"]] - 0.5).abs() < 0.03).all(), auc.to_dict()
    # FETA's and CURTAINs' templates are as good as their flows, here of 3 epochs (the tests' TINY flow section)
    assert (auc[["feta-bdt", "curtains-bdt"]] < 0.6).all(), auc.to_dict()
    for window in ("w00", "w01"):  # CURTAINs: every sideband event of the window transported into the SR
        model = results / f"models/curtains_transport/{window}/inj0_seed1.h5"
        split = read_table(results / f"split/{window}/inj0_seed1.h5", "data")
        template = read_table(model, "template")
        assert len(template) == int((split["region"] != REGION_SR).sum()) and 0.45 < read_attrs(model)["closure_auc"] < 0.6
        lo = {"w00": 3.1, "w01": 3.3}[window]  # TINY's SRs, 0.4 TeV wide
        assert ((template["mjj"] >= lo) & (template["mjj"] < lo + 0.4)).all()
    # SALAD's template, its weights, and its sideband closure (nothing to correct without mismodelling)
    for window in ("w00", "w01"):
        model = results / f"models/salad_weights/{window}/inj0_seed1.h5"
        template, attrs = read_table(model, "template"), read_attrs(model)
        assert template["weight"].mean() == pytest.approx(1.0, abs=0.05) and template["weight"].max() <= 20
        assert abs(attrs["sideband_auc_after"] - 0.5) < 0.02, attrs
        assert (results / f"plots/models/salad_weights/{window}/inj0_seed1.png").stat().st_size > 5000
    assert set(scan["method"]) == {"simtemplate-bdt", "salad-bdt", "feta-bdt", "curtains-bdt"} and scan["fit_ok"].all()
    # the simulation's flow reads no data: one per window, shared by every pseudo-experiment (FETA's and flow-nll's)
    assert sorted(str(p.relative_to(results)) for p in (results / "models/simulation_flow").rglob("*.h5")) == \
        ["models/simulation_flow/w00/window.h5", "models/simulation_flow/w01/window.h5"]
    # FETA trained its morph onto the simulation's flow (whose job ran first) and morphed the simulation's SR events
    for window in ("w00", "w01"):
        model = results / f"models/feta/{window}/inj0_seed1.h5"
        template, attrs = read_table(model, "template"), read_attrs(model)
        assert len(template) == int((read_table(results / f"samples/simulation/{window}.h5", "events")["region"]
                                     == REGION_SR).sum())
        assert attrs["sideband_auc_after"] < 0.56, attrs  # a 3-epoch flow: closure within a few per cent
        assert "sideband AUC of simulation vs held-out data" in (results / f"logs/feta/{window}/inj0_seed1.log").read_text()

    # another preset: the sample, its splits, the models that read it and their training rerun; the data, the sideband
    # flow and CURTAINs (no simulation) do not
    config = workdir / "config/config.yaml"
    config.write_text(config.read_text().replace("n_events: 40000", "n_events: 40000\n      mismodelling: strong"))
    counts = job_counts(snakemake(workdir, "-n").stdout)
    assert {k: counts.get(k) for k in ("prepare_sample", "split_sample", "simulation_flow", "salad_weights", "feta",
                                       "train")} == \
        {"prepare_sample": 1, "split_sample": 2, "simulation_flow": 2, "salad_weights": 2, "feta": 2, "train": 6}, counts
    assert not {"prepare_data", "inject", "split", "sideband_flow"} & set(counts), counts


def test_a_new_sample_extends_the_recorded_scan_and_a_changed_one_stops_it():
    from slidescan.record import changes

    recorded = {"data": {"source": "synthetic", "samples": {}}}
    one = {"data": {"source": "synthetic", "samples": {"simulation": {"n_events": 40000, "mismodelling": "none"}}}}
    assert changes(recorded, one) == []
    two = {"data": {"source": "synthetic", "samples": {**one["data"]["samples"], "other": {"mismodelling": "mild"}}}}
    assert changes(one, two) == []
    strong = {"data": {"source": "synthetic", "samples": {"simulation": {"n_events": 40000, "mismodelling": "strong"}}}}
    assert changes(one, strong) == ["data.samples.simulation.mismodelling: none -> strong"]


def test_a_file_sample_is_read_like_the_data_with_its_own_weights(tmp_path):
    from slidescan.stages.data import prepare_sample

    generator = np.random.default_rng(3)
    events = generate_background(3000, SyntheticModel.from_config(None), generator).drop(columns="label")
    events.assign(mjj=events["mjj"] * 1000).to_parquet(tmp_path / "data.parquet")
    events.assign(mjj=events["mjj"] * 1000, w=generator.uniform(0.5, 1.5, len(events))).to_parquet(tmp_path / "sim.parquet")
    table = {"path": str(tmp_path / "data.parquet"), "mjj_unit": "GeV"}
    config = {**TINY, "data": {"source": "table", "table": table,
                               "samples": {"simulation": {"path": str(tmp_path / "sim.parquet"), "weight": "w"}}},
              "injections": [0], "methods": ["cwola-nn"]}
    settings = ScanSettings.from_config(config, workdir=tmp_path)
    prepare_sample(settings, "simulation", tmp_path / "sample.h5", log=lambda m: None)
    sample = read_table(tmp_path / "sample.h5", "events")
    assert len(sample) == 3000 and sample["mjj"].max() < 10  # GeV read as TeV, like the data
    assert sample["weight"].to_numpy() == pytest.approx(pd.read_parquet(tmp_path / "sim.parquet")["w"].to_numpy())
    assert set(sample["fold"]) == set(range(TINY["folds"]["k"])) and (sample["label"] == 0).all()
    # a "background" simulation with signal events in it would hide the signal: refused, naming file and count
    labelled = {**config["data"], "table": {**table, "label": "truth"},
                "samples": {"simulation": {"path": str(tmp_path / "sim_signal.parquet")}}}
    pd.DataFrame({**{c: events[c] for c in events.columns}, "mjj": events["mjj"] * 1000,
                  "truth": (np.arange(len(events)) < 7).astype(int)}).to_parquet(tmp_path / "sim_signal.parquet")
    with pytest.raises(ValueError, match=r"data.samples.simulation: .*sim_signal.parquet has 7 events labelled 1"):
        prepare_sample(ScanSettings.from_config({**config, "data": labelled}, workdir=tmp_path), "simulation",
                       tmp_path / "bad.h5", log=lambda m: None)
    assert not (tmp_path / "bad.h5").exists()
    with pytest.raises(ConfigError, match=r"data.samples.simulation: path is required with data.source table"):
        ScanSettings.from_config({**config, "data": {**config["data"], "samples": {"simulation": {}}}}, workdir=tmp_path)


def test_salad_reweights_a_mismodelled_simulation_to_the_data_in_the_sidebands():
    """The strong preset is told from the data in the sidebands (AUC about 0.55); after SALAD's reweighting, out of
    fold, a classifier of the two has an AUC within 0.5 +- 0.02, and the SR template carries the weights."""
    from types import SimpleNamespace

    from slidescan.density.salad import SaladSettings, fit
    model = SyntheticModel.from_config(None)
    data = generate_background(200_000, model, np.random.default_rng(1))
    sim = generate_simulation(200_000, model, "strong", np.random.default_rng(2))
    frames = []
    for events, seed in ((data, 3), (sim, 4)):
        events = events[(events["mjj"] >= 3.0) & (events["mjj"] < 4.0)].reset_index(drop=True)
        sr = (events["mjj"] >= 3.3) & (events["mjj"] < 3.7)
        frames.append(events.assign(region=np.where(sr, REGION_SR, np.where(events["mjj"] < 3.3, REGION_SB_LOW,
                                                                              REGION_SB_HIGH)),
                                    fold=np.random.default_rng(seed).integers(0, 3, len(events))))
    settings = SaladSettings.from_config({"replicas": 2})
    ctx = SimpleNamespace(settings=settings, window=Window(0, 3.0, 3.3, 3.7, 4.0), data=frames[0],
                          samples={"simulation": frames[1]}, features=["mj1", "delta_mj", "tau21_j1", "tau21_j2"],
                          seed=lambda *parts: 7, log=lambda message: None)
    result = fit(ctx)
    assert result.attrs["sideband_auc_before"] > 0.53
    assert abs(result.attrs["sideband_auc_after"] - 0.5) < 0.02, result.attrs
    template = result.tables["template"]
    assert len(template) == int((frames[1]["region"] == REGION_SR).sum()) and (template["label"] == 0).all()
    assert template["weight"].mean() == pytest.approx(1.0, abs=0.01) and template["weight"].max() <= 20.0
    # the reweighted SR simulation moves towards the data's tau21 (the strong preset lowers it)
    sr_data = frames[0][frames[0]["region"] == REGION_SR]
    raw, reweighted = template["tau21_j1"].mean(), np.average(template["tau21_j1"], weights=template["weight"])
    assert abs(reweighted - sr_data["tau21_j1"].mean()) < 0.3 * abs(raw - sr_data["tau21_j1"].mean())
    # two bootstrap replicas of the weights (the template count's ensemble): each a reweighting of its own, as good
    # on average, and related to the nominal one event by event but not it
    replicas = [template[f"weight_replica_{r}"].to_numpy() for r in range(2)]
    assert result.attrs["replicas"] == 2 and not (replicas[0] == replicas[1]).all()
    for w in replicas:
        assert w.mean() == pytest.approx(1.0, abs=0.01)
        assert 0.3 < np.corrcoef(w, template["weight"])[0, 1] < 0.99  # trees: each event's weight is noisy (0.52)
        moved = np.average(template["tau21_j1"], weights=w)
        assert abs(moved - sr_data["tau21_j1"].mean()) < 0.3 * abs(raw - sr_data["tau21_j1"].mean())


def test_the_summary_marks_a_template_the_classifier_tells_from_the_sr_background():
    from slidescan.report.summary import templates_text

    rows = []
    for method, aucs in (("cathode-nn", (0.501, 0.497)), ("salad-bdt", (0.502, 0.571)), ("cwola-nn", (None, None))):
        for window, auc in zip(("w00", "w01"), aucs):
            for injection in (0, 400):
                rows.append({"method": method, "window": window, "injection": injection, "n_obs": 20000.0,
                             "sr_auc_vs_reference": np.nan if auc is None else (auc if injection == 0 else 0.6)})
    text = templates_text(pd.DataFrame(rows))
    assert "cathode-nn: median AUC 0.499;" in text and "cathode-nn: median AUC 0.499 —" not in text
    assert "salad-bdt: median AUC 0.536 — TEMPLATE MISMODELLED in w01 (0.571)" in text
    assert "cwola-nn" not in text  # no template: nothing to judge
    # with few SR events an AUC 0.03 from 0.5 is within its statistical error (3 sigma of 0.013 at 1000 events)
    small = pd.DataFrame(rows).assign(n_obs=1000.0)
    assert "MISMODELLED in w01" in templates_text(small)
    small.loc[small["sr_auc_vs_reference"] == 0.571, "sr_auc_vs_reference"] = 0.53
    assert "MISMODELLED" not in templates_text(small)


def test_fetas_morph_moves_a_shifted_toy_back_onto_the_data():
    """A flow of a simulation shifted and widened with m, and a morph onto it trained on the data at low m only
    (the 'sidebands'): the simulation morphed back has the data's mean and width, at the masses it trained on and at
    those it did not see; and a morph onto a simulation that already is the data stays the identity."""
    from slidescan.density.feta import FetaSettings, morph
    from slidescan.density.flow_settings import FlowSettings
    from slidescan.density.flows import train_flow

    g = np.random.default_rng(4)
    n = 20000
    m_data, m_sim = g.uniform(3.0, 3.7, n), g.uniform(3.0, 4.0, n)
    data = g.normal(0.0, 1.0, (n, 2))
    sim = g.normal(0.0, 1.0, (n, 2)) * (1.0 + 0.3 * (m_sim[:, None] - 3.0)) + 0.5 + 0.5 * (m_sim[:, None] - 3.0)
    settings = FlowSettings.from_config({"transforms": 3, "hidden": [32], "epochs": 20, "batch_size": 512,
                                         "learning_rate": 0.003, "n_best": 1, "device": "cpu"})
    sim_flow = train_flow(sim, m_sim, settings, seed=2, log=lambda s: None)
    morph_settings = FetaSettings.from_config({"epochs": 20, "batch_size": 512, "learning_rate": 0.003, "device": "cpu"})
    morph_flow = train_flow(data, m_data, morph_settings, seed=1, log=lambda s: None, base=sim_flow)
    events = pd.DataFrame({"a": sim[:, 0], "b": sim[:, 1], "mjj": m_sim})
    moved = morph(morph_flow, events, ["a", "b"])
    for rows in (m_sim < 3.5, (m_sim > 3.7) & (m_sim < 3.85)):  # trained on; beyond (the data stop at 3.7)
        assert abs(sim[rows].mean()) > 0.6  # the simulation is off: shifted by 0.5-1.0
        assert np.abs(moved[rows].mean(0)).max() < 0.15, moved[rows].mean(0)
        assert np.abs(moved[rows].std(0) - 1.0).max() < 0.15, moved[rows].std(0)
    # a morph is no density of its own
    with pytest.raises(TypeError, match="morph onto another flow"):
        morph_flow.log_prob(sim[:5], m_sim[:5])
    # the simulation already is the data: the morph, which starts as the identity, moves each event very little
    same = g.normal(0.0, 1.0, (n, 2)) * (1.0 + 0.3 * (m_data[:, None] - 3.0)) + 0.5 + 0.5 * (m_data[:, None] - 3.0)
    identity = train_flow(same, m_data, morph_settings, seed=3, log=lambda s: None, base=sim_flow)
    kept = morph(identity, events, ["a", "b"])
    assert np.median(np.abs(kept - sim)[m_sim < 3.7]) < 0.1, np.median(np.abs(kept - sim), 0)


def test_models_that_read_models_come_after_them_and_a_cycle_is_named(monkeypatch):
    from slidescan.density import Model
    from slidescan.registry import MODELS, model_order

    assert model_order(("feta", "curtains_transport")) == ("simulation_flow", "feta", "sideband_flow",
                                                           "curtains_transport")
    settings = ScanSettings.from_config({**SIM, "plugins": [], "methods": ["feta-nn"]})
    # status and the DAG list what feta reads
    assert list(settings.models()) == ["simulation_flow", "feta"]
    fit = MODELS["feta"].fit
    monkeypatch.setitem(MODELS._items, "loop_a", Model("loop_a", "a", fit, models=("loop_b",)))
    monkeypatch.setitem(MODELS._items, "loop_b", Model("loop_b", "b", fit, models=("loop_a",)))
    with pytest.raises(ValueError, match=r"model loop_a needs itself: loop_a -> loop_b -> loop_a"):
        model_order(("loop_a",))
    # a model of the window alone is shared by every pseudo-experiment: it cannot read one that is fitted per experiment
    monkeypatch.setitem(MODELS._items, "alone", Model("alone", "a", fit, models=("sideband_flow",), window_alone=True))
    with pytest.raises(ValueError, match=r"model alone is fitted once per window \(window_alone\) but reads model "
                                         r"sideband_flow, which is fitted per pseudo-experiment"):
        model_order(("alone",))


def drifting_toy_flow():
    """A flow of x drifting with m in [3, 4] (mean 2 (m - 3), width 1 + 0.5 (m - 3)), with its events."""
    from slidescan.density.flow_settings import FlowSettings
    from slidescan.density.flows import train_flow

    g = np.random.default_rng(6)
    m = g.uniform(3.0, 4.0, 30000)
    x = g.normal(0.0, 1.0, (len(m), 2)) * (1.0 + 0.5 * (m[:, None] - 3.0)) + 2.0 * (m[:, None] - 3.0)
    settings = FlowSettings.from_config({"transforms": 3, "hidden": [32], "epochs": 20, "batch_size": 512,
                                         "learning_rate": 0.003, "n_best": 1, "device": "cpu"})
    return train_flow(x, m, settings, seed=3, log=lambda s: None), x, m


def test_curtains_transport_moves_events_to_the_masses_they_are_sent_to():
    """Through a conditional flow's base space, events at m = 3.2 sent to m = 3.8 follow the data at 3.8 (a mean
    that grows with m and a width that grows too), each keeping its quantile."""
    from slidescan.density.curtains import transport

    flow, x, m = drifting_toy_flow()
    near = np.abs(m - 3.2) < 0.05
    events = pd.DataFrame({"a": x[near, 0], "b": x[near, 1], "mjj": m[near]})
    moved = transport(flow, events, np.full(int(near.sum()), 3.8), ["a", "b"])
    # at 3.8: mean 1.6, width 1.4; at 3.2 they were 0.4 and 1.1
    assert np.abs(moved.mean(0) - 1.6).max() < 0.15, moved.mean(0)
    assert np.abs(moved.std(0) - 1.4).max() < 0.15, moved.std(0)
    # each event keeps its rank
    assert np.corrcoef(events["a"], moved[:, 0])[0, 1] > 0.95


def test_calibration_is_judged_by_how_likely_its_largest_z_is_among_its_p0():
    from slidescan.report.summary import chance_of_largest

    # Z 3.03 (p 0.00122) among 400 p0 is what chance gives 39 % of the time; among 4 it would be 0.5 %
    assert chance_of_largest(0.001222844887991785, 400) == pytest.approx(1 - (1 - 0.001222844887991785) ** 400)
    assert 0.38 < chance_of_largest(0.00122, 400) < 0.40 and chance_of_largest(0.00122, 4) < 0.01
    assert np.isnan(chance_of_largest(float("nan"), 10))
