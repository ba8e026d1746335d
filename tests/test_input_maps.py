"""A reference's own classifier inputs (``InputMap``: a transform, a feature subset) and the flow's latent map that
LaCATHODE classifies in (issue 30's layer hooks)."""

import numpy as np
import pandas as pd
import pytest

from slidescan.io import read_table
from slidescan.layout import PseudoExperiment
from slidescan.methods import METHODS, FoldFit, InputMap, Reference, ReferenceRun, WindowInputs, configure
from slidescan.windows import REGION_SR, Window

from test_samples import drifting_toy_flow
from test_workflow import TINY, make_workdir, snakemake

WINDOW = Window("w00", 3.0, 3.3, 3.7, 4.0)


def _inputs(n=6000, seed=4):
    g = np.random.default_rng(seed)
    data = pd.DataFrame({"mjj": g.uniform(3.0, 4.0, n), "a": g.normal(0, 1, n), "b": g.normal(0, 1, n), "label": 0,
                         "fold": g.integers(0, 2, n), "event_id": np.arange(n)})
    data["region"] = WINDOW.region(data["mjj"].to_numpy())
    reference = data.assign(a=g.normal(0, 1, n), b=g.normal(0, 1, n))
    return WindowInputs(WINDOW, PseudoExperiment(0, 1), data, {"background_sr": reference, "signal": reference}, {},
                        ["a", "b"])


def test_an_input_map_reaches_the_training_sample_the_scored_events_the_held_out_template_and_the_identity(
        monkeypatch):
    """A plug-in reference whose classifier sees |a| only: both training classes, the fold's scored events and the
    held-out template events go through the same map, its classifier predicts from the mapped column, and the
    map's identity is part of the fold's."""
    idealized = METHODS["idealized"]
    seen = []

    def absolute(inputs):
        def apply(events):
            seen.append(len(events))
            return events.assign(abs_a=np.abs(events["a"].to_numpy()))
        return InputMap(apply, ["abs_a"], ("abs", 1))

    plugin = Reference("absa", "idealized on |a|", idealized.build, needs_truth=True, held_out=idealized.held_out,
                       input_map=absolute)
    monkeypatch.setitem(METHODS._items, "absa", plugin)
    inputs = _inputs()
    fold = plugin.fold_data(inputs, 0, "absa-bdt")
    positive, negative = idealized.build(inputs, 0)
    assert fold.features == ["abs_a"] and fold.train.x.shape == (len(positive) + len(negative), 1)
    np.testing.assert_array_equal(fold.train.x[:, 0], np.abs(np.concatenate([positive["a"], negative["a"]])))
    held = idealized.held_out(inputs, 0)
    np.testing.assert_array_equal(fold.held_out["abs_a"], np.abs(held["a"]))
    np.testing.assert_array_equal(fold.scored["abs_a"], np.abs(inputs.data.loc[inputs.data["fold"] == 0, "a"]))
    assert seen == [len(positive), len(negative), int((inputs.data["fold"] == 0).sum()), len(held)]
    assert fold.extra_identity == ("inputs", ("abs_a",), ("abs", 1))
    # the plain reference keeps its identity: no map, no extra
    assert idealized.fold_data(inputs, 0, "idealized-bdt").extra_identity == ()

    run = configure("idealized-bdt", {"classifier": {"bdt": {"members": 1, "max_iter": 5}}})
    run = ReferenceRun("absa-bdt", plugin, run.backend, run.settings)
    fitted, = run.fit([FoldFit("seed 1 fold 0", 1, 0, fold, [7], inputs)], None, lambda s: None)
    assert fitted.features == ["abs_a"]
    scores = fitted.predict(fold.scored)
    # the classifier learned from |a| alone: events with the same |a| and any b get the same score
    flipped = fold.scored.assign(abs_a=fold.scored["abs_a"], a=-fold.scored["a"], b=0.0)
    np.testing.assert_array_equal(fitted.predict(flipped), scores)
    # a map that does not give its columns is named
    broken = Reference("broken", "no column", idealized.build, needs_truth=True,
                       input_map=lambda inputs: InputMap(lambda events: events, ["nothere"]))
    with pytest.raises(ValueError, match=r"method broken-bdt, fold 0: its label-1 events after its input map: no "
                                         r"column\(s\) \['nothere'\]"):
        broken.fold_data(inputs, 0, "broken-bdt")


def test_a_feature_subset_trains_on_those_features_only():
    subset = Reference("suba", "cwola on a", METHODS["cwola"].build, input_map=lambda inputs: InputMap.subset(["a"]))
    inputs = _inputs()
    fold = subset.fold_data(inputs, 1, "suba-bdt")
    train = inputs.data[inputs.data["fold"] == 0]
    assert fold.features == ["a"] and fold.train.x.shape == (len(train), 1)
    np.testing.assert_array_equal(np.sort(fold.train.x[:, 0]), np.sort(train["a"].to_numpy()))


def test_a_flows_latent_coordinates_are_normal_and_forget_the_condition():
    """x drifts with m (mean 2 (m - 3), width 1 + 0.5 (m - 3)); its latent image is a standard normal at every m."""
    flow, x, m = drifting_toy_flow()
    z = flow.latent(x, m)
    assert np.corrcoef(x[:, 0], m)[0, 1] > 0.4
    for rows in (m < 3.3, m > 3.7):
        assert np.abs(z[rows].mean(0)).max() < 0.1 and np.abs(z[rows].std(0) - 1).max() < 0.1, z[rows].std(0)
    assert abs(np.corrcoef(z[:, 0], m)[0, 1]) < 0.05


@pytest.mark.workflow
def test_lacathode_and_the_autoencoder_run_end_to_end(tmp_path):
    config = {**TINY, "scan": "latent", "methods": ["cathode-bdt", "lacathode-bdt", "ae"], "injections": [0, 400],
              "ae": {"epochs": 3, "members": 2}}
    workdir = make_workdir(tmp_path, config)
    result = snakemake(workdir)
    assert result.returncode == 0, result.stderr[-4000:]
    results = workdir / "results/latent"
    scan = pd.read_csv(results / "pvalue_scan.csv")
    assert set(scan["method"]) == {"cathode-bdt", "lacathode-bdt", "ae"} and scan["fit_ok"].all()
    # the same flow, the same template, the same events: only the classifier's inputs differ
    cathode = read_table(results / "scores/w00/cathode-bdt/inj400_seed1.h5", "scores")
    latent = read_table(results / "scores/w00/lacathode-bdt/inj400_seed1.h5", "scores")
    assert (cathode["event_id"].to_numpy() == latent["event_id"].to_numpy()).all()
    assert not np.allclose(cathode["score"], latent["score"])
    sr = latent[latent["region"] == REGION_SR] if "region" in latent else latent
    assert sr["score"].notna().all()
    # it finds the injected signal: signal scores above background in the SR
    assert latent.loc[latent["label"] == 1, "score"].mean() > latent.loc[latent["label"] == 0, "score"].mean()
    # the autoencoder: the folds of a job as one batched model; every event scored by its reconstruction error
    ae = read_table(results / "scores/w00/ae/inj400_seed1.h5", "scores")
    assert (ae["score"] > 0).all() and len(ae) == len(latent)
    log = (results / "logs/train/w00/ae/inj400_seed1/fold0.log").read_text()
    assert "2 folds as one batched model of 4 members" in log, log[-2000:]


def test_feature_groups_say_which_jet_a_column_describes_and_a_plugin_trains_on_one_jet():
    from slidescan.config import ConfigError
    from slidescan.features import resolve_groups
    from slidescan.settings import ScanSettings

    columns, groups = resolve_groups("baseline")
    assert columns == ("mj1", "delta_mj", "tau21_j1", "tau21_j2")
    assert groups == {"jet1": ("mj1", "tau21_j1"), "jet2": ("tau21_j2",), "event": ("delta_mj",)}
    # columns of your own: the mapping says which jet, and orders them jet1, jet2, event
    own = {"event": ["ht"], "jet2": ["mass_b", "nsub_b"], "jet1": ["mass_a"]}
    settings = ScanSettings.from_config({**TINY, "features": own})
    assert settings.features == ("mass_a", "mass_b", "nsub_b", "ht")
    assert settings.feature_groups == {"jet1": ("mass_a",), "jet2": ("mass_b", "nsub_b"), "event": ("ht",)}
    with pytest.raises(ConfigError, match=r"features: mj1 is in features.jet1 and in features.jet2"):
        ScanSettings.from_config({**TINY, "features": {"jet1": ["mj1"], "jet2": ["mj1", "mj2"]}})
    with pytest.raises(ConfigError, match=r"features: unknown key\(s\) \['jet3'\]"):
        ScanSettings.from_config({**TINY, "features": {"jet3": ["mj1"]}})
    # a plug-in reference whose classifier sees jet 1 only
    jet_one = Reference("jetone", "cwola on jet 1", METHODS["cwola"].build,
                        input_map=lambda inputs: InputMap.subset(inputs.feature_groups["jet1"]))
    inputs = _inputs()
    inputs.feature_groups = {"jet1": ("a",), "jet2": ("b",), "event": ()}
    fold = jet_one.fold_data(inputs, 0, "jetone-bdt")
    assert fold.features == ["a"] and fold.train.x.shape[1] == 1
