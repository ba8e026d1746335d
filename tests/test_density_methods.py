"""ANODE, R-ANODE and flow-nll: what they learn from, what they score, and R-ANODE's mixture fit."""

import numpy as np
import pytest
from scipy import stats as sps

from slidescan.density.flow_settings import FlowSettings
from slidescan.density.flows import train_flow
from slidescan.layout import Layout, PseudoExperiment
from slidescan.methods import ModelOutput, WindowInputs
from slidescan.methods.density_scores import LogRatio, clipped_mjj
from slidescan.registry import METHODS, MODELS
from slidescan.settings import ScanSettings
from slidescan.stages.data import make_injection, prepare_data, split_window
from slidescan.stages.models import fit_model
from slidescan.stages.train import window_inputs
from slidescan.windows import REGION_SR

FEATURES = ["mj1", "delta_mj", "tau21_j1", "tau21_j2"]
SMALL = {"transforms": 2, "hidden": [16], "epochs": 2, "batch_size": 512, "learning_rate": 0.003, "n_best": 1}
CONFIG = {
    "scan": "density",
    "data": {"source": "synthetic", "seed": 9,
             "synthetic": {"n_background": 30000, "signal_pool": 1000, "reference_background": 30000,
                           "reference_signal": 1000}},
    "injections": [500], "folds": {"k": 3}, "methods": ["anode", "ranode", "flow-nll"],
    "windows": {"first_sr_lo": 3.3, "last_sr_lo": 3.3, "sr_width": 0.4, "step": 0.2, "sb_width": 0.6},
    "flow": {**SMALL, "max_train_events": 5000}, "anode": SMALL, "ranode": SMALL,
}
E = PseudoExperiment(500, 1)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> WindowInputs:
    settings = ScanSettings.from_config(CONFIG)
    layout = Layout(tmp_path_factory.mktemp("density"))
    prepare_data(settings, layout.events())
    make_injection(settings, layout.events(), E, layout.injected(E))
    split_window(settings, layout.injected(E), layout.events(), "w00", layout.split("w00", E))
    fit_model(settings, layout, "sideband_flow", "w00", E, log=lambda s: None)
    return window_inputs(layout, settings.method("anode"), settings.window("w00"), E, settings.features)[0]


@pytest.mark.parametrize("method", ["anode", "ranode"])
def test_the_sr_density_of_a_fold_learns_from_the_sr_data_of_the_other_folds(inputs, method):
    settings = METHODS[method].configure(CONFIG)
    data = inputs.data
    for fold in range(3):
        fd = METHODS[method].fold_data(inputs, fold, settings)
        expected = data[(data["fold"] != fold) & (data["region"] == REGION_SR)]
        np.testing.assert_array_equal(fd.train.x, expected[FEATURES].to_numpy())
        np.testing.assert_array_equal(fd.train.mjj, expected["mjj"].to_numpy())
        assert (fd.scored["fold"] == fold).all() and len(fd.scored) == int((data["fold"] == fold).sum())
        # the result depends on the sideband flow it reads: its fingerprint is part of the fold's identity
        assert fd.extra_identity == (inputs.model("sideband_flow").fingerprint,) and fd.extra_identity[0]


@pytest.mark.parametrize("method", ["anode", "ranode"])
def test_the_sr_flows_learn_with_the_sr_events_weights(inputs, method, monkeypatch):
    """Weighted inputs (data.table.weight): a fold's SR flows get the weights of the SR events they learn from
    (train_flow maximises the weighted likelihood, tests/test_weights.py). Unit weights are passed as None, so
    an unweighted scan's flows and checkpoints stay the ones they were before weights existed."""
    import dataclasses

    import slidescan.density.batched as batched
    import slidescan.density.flows as flows
    from slidescan.methods.base import FoldFit

    seen = []
    real_many, real_one = batched.train_flows, flows.train_flow
    monkeypatch.setattr(batched, "train_flows",
                        lambda tasks, s: seen.extend(t.weight for t in tasks) or real_many(tasks, s))
    monkeypatch.setattr(flows, "train_flow",
                        lambda *a, weight=None, **k: seen.append(weight) or real_one(*a, weight=weight, **k))
    settings = METHODS[method].configure({**CONFIG, method: {**SMALL, "epochs": 1}})
    g = np.random.default_rng(2)
    for weights in (np.ones(len(inputs.data)), g.uniform(0.2, 1.8, len(inputs.data))):
        weighted = dataclasses.replace(inputs, data=inputs.data.assign(weight=weights))
        fits = [FoldFit(f"fold {k}", 1, k, METHODS[method].fold_data(weighted, k, settings), [7], weighted,
                        log=lambda s: None) for k in (0, 1)]
        seen.clear()
        METHODS[method].fit(fits, settings, None, lambda s: None)
        assert len(seen) == 2
        for k, w in zip((0, 1), seen):
            expected = weighted.data[(weighted.data["fold"] != k) & (weighted.data["region"] == REGION_SR)]
            if np.all(weights == 1):
                assert w is None
            else:
                np.testing.assert_array_equal(w, expected["weight"].to_numpy())


def test_flow_nll_scores_events_by_the_stored_sideband_density(inputs):
    method = METHODS["flow-nll"]
    settings = method.configure(CONFIG)
    assert method.models_for(settings) == ("sideband_flow",)
    assert method.models_for(method.settings_type.from_config({"background": "simulation"})) == ("simulation_flow",)
    fd = method.fold_data(inputs, 1, settings)
    assert len(fd.train.x) == 0  # nothing is fitted per fold
    fitted = method.fit([type("Fit", (), {"inputs": inputs})()], settings, None, print)[0]
    events = fd.scored.head(500)
    density = inputs.model("sideband_flow").density()
    np.testing.assert_allclose(fitted.predict(events),
                               -density.log_prob(events[FEATURES].to_numpy(), events["mjj"].to_numpy()))


def test_a_log_ratio_evaluates_sideband_events_at_the_srs_edge(inputs):
    flow = inputs.model("sideband_flow").density()
    w = inputs.window
    ratio = LogRatio([flow], None, w, FEATURES, {}, at="clipped")
    events = inputs.data.head(2000)
    clipped = clipped_mjj(events["mjj"].to_numpy(), w)
    assert clipped.min() >= w.sr_lo and clipped.max() < w.sr_hi
    sr = (events["mjj"] >= w.sr_lo) & (events["mjj"] < w.sr_hi)
    np.testing.assert_array_equal(clipped[sr.to_numpy()], events.loc[sr, "mjj"].to_numpy())
    np.testing.assert_allclose(ratio.predict(events), flow.log_prob(events[FEATURES].to_numpy(), clipped))


def test_the_signal_fraction_of_a_mixture_with_a_fixed_background_is_fitted():
    """R-ANODE's core: with the background density fixed, the flow and the fraction w of a 5 % signal are found."""
    g = np.random.default_rng(3)
    n, fraction = 20000, 0.05
    m = g.uniform(1.0, 2.0, n)
    signal = g.random(n) < fraction
    x = g.normal(size=(n, 2))
    x[signal] = g.normal([2.5, 2.5], 0.15, size=(int(signal.sum()), 2))
    log_background = sps.norm.logpdf(x).sum(1)  # the exact background density
    settings = FlowSettings.from_config({"transforms": 2, "hidden": [32], "epochs": 15, "batch_size": 256,
                                         "learning_rate": 0.003, "n_best": 3})
    flow = train_flow(x, m, settings, seed=1, background=log_background, signal_fraction=0.01, log=lambda s: None,
                      what="signal flow")
    assert flow.signal_fraction == pytest.approx(fraction, abs=0.01)
    # the learned likelihood ratio ranks signal above background
    ratio = flow.log_prob(x, m) - log_background
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(signal, ratio) > 0.95
    # the mixture's identity is not a plain flow's: a checkpoint of one never resumes into the other
    plain = train_flow(x, m, FlowSettings.from_config({**settings.__dict__, "epochs": 1}), seed=1, log=lambda s: None)
    assert plain.fingerprint != flow.fingerprint and np.isnan(plain.signal_fraction)


def test_the_simulated_background_flow_learns_the_simulation_sample_of_the_window(inputs, tmp_path):
    """flow-nll with ``background: simulation``: a flow fitted on the scan's simulation sample, never on data; a scan
    without one stops at configuration."""
    from slidescan.config import ConfigError
    from slidescan.stages.data import prepare_sample, split_sample

    simulated = {**CONFIG, "methods": ["flow-nll"], "flow-nll": {"background": "simulation"}}
    with pytest.raises(ConfigError, match=r"method flow-nll needs the sample\(s\) simulation \(model simulation_flow\)"):
        ScanSettings.from_config(simulated)
    settings = ScanSettings.from_config({**simulated, "data": {**CONFIG["data"], "samples": {"simulation": {}}}})
    assert list(settings.models()) == ["simulation_flow"]
    layout = Layout(tmp_path)
    source = Layout(inputs.model("sideband_flow").path.parents[2])
    for path in (source.events(), source.split("w00", E)):
        target = layout.root / path.relative_to(source.root)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(path)
    prepare_sample(settings, "simulation", layout.sample_events("simulation"), log=lambda m: None)
    layout.sample_split("simulation", "w00").parent.mkdir(parents=True, exist_ok=True)
    split_sample(settings, layout.sample_events("simulation"), "w00", layout.sample_split("simulation", "w00"))
    lines = []
    fit_model(settings, layout, "simulation_flow", "w00", E, log=lines.append)
    model = MODELS["simulation_flow"]
    output = ModelOutput("simulation_flow", layout.model(model, "w00", E))
    # fitted once per window, for every pseudo-experiment (Model.window_alone): no data in its file's name or fit
    assert output.path == layout.root / "models/simulation_flow/w00/window.h5"
    assert layout.model(model, "w00", PseudoExperiment(0, 2)) == output.path
    assert output.attrs["n_train"] == 5000  # max_train_events of the flow section
    assert "injection" not in output.attrs and output.attrs["window"] == "w00"
    assert "simulated background events of the window (data.samples.simulation)" in \
        layout.model_log(model, "w00", E).read_text()
    assert 0.4 < output.attrs["sim_auc"] < 0.8 and layout.model_plot(model, "w00", E).stat().st_size > 20_000


def test_anodes_folds_train_as_one_batched_model_each_the_flow_it_is_alone(inputs, tmp_path):
    """A training job's ANODE folds: one batched model of all its SR flows, or (packing.cpu_members: 1) one by one."""
    from slidescan.io import read_table
    from slidescan.stages.train import train

    source = Layout(inputs.model("sideband_flow").path.parents[2])
    scores = {}
    for name, packing in (("batched", {}), ("alone", {"cpu_members": 1})):
        settings = ScanSettings.from_config({**CONFIG, "packing": packing,
                                             "anode": {**SMALL, "device": "cpu"}})
        layout = Layout(tmp_path / name)
        for path in (source.split("w00", E), source.model(MODELS["sideband_flow"], "w00", E)):
            target = layout.root / path.relative_to(source.root)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(path)
        train(settings, layout, "w00", "anode", 500, log=lambda s: None)
        scores[name] = [read_table(layout.fold("w00", "anode", E, f), "scores")["score"].to_numpy() for f in range(3)]
        log = layout.fold_log("w00", "anode", E, 0).read_text()
        assert ("3 folds as one batched model of 3 members" in log) == (name == "batched")
        assert "SR flow: best validation nll" in log
    for batched, alone in zip(scores["batched"], scores["alone"]):
        np.testing.assert_allclose(batched, alone, atol=1e-3)


def test_by_default_every_event_is_scored_at_the_srs_centre(inputs):
    """A function of the features alone: sideband and SR events are scored alike (no step at the SR's edges)."""
    flow = inputs.model("sideband_flow").density()
    events = inputs.data.head(1000)
    ratio = LogRatio([flow], None, inputs.window, FEATURES, {})
    centre = np.full(len(events), inputs.window.sr_centre)
    np.testing.assert_allclose(ratio.predict(events), flow.log_prob(events[FEATURES].to_numpy(), centre))
    assert METHODS["anode"].configure(CONFIG).score_mjj == "centre"
