"""The rest of the family (issue 30): the VAE score, the autoencoder of a simulation, Tag N' Train and QUAK, and the
signal samples (priors) QUAK learns from."""

import numpy as np
import pandas as pd
import pytest

from slidescan.io import read_table
from slidescan.layout import PseudoExperiment
from slidescan.methods import FoldFit, WindowInputs, configure
from slidescan.windows import REGION_SR, Window

from test_workflow import TINY, make_workdir, snakemake

WINDOW = Window(0, 3.0, 3.3, 3.7, 4.0)


def _events(n, g, signal=0, fold_count=2):
    """Two jets of two features each; the signal has both jets at (2, 2), the background's jets are independent
    standard normals; mjj uniform, the signal's in the SR."""
    x = g.normal(0, 1, (n, 4))
    label = np.zeros(n, int)
    if signal:
        x[:signal] = g.normal(2.0, 0.3, (signal, 4))
        label[:signal] = 1
    mjj = g.uniform(3.0, 4.0, n)
    mjj[:signal] = g.uniform(3.35, 3.65, signal)
    df = pd.DataFrame(x, columns=["a_j1", "b_j1", "a_j2", "b_j2"]).assign(mjj=mjj, label=label,
                                                                         fold=g.integers(0, fold_count, n))
    df["region"] = WINDOW.region(df["mjj"].to_numpy())
    return df.assign(event_id=np.arange(n))


def _inputs(data, samples=None, groups=True):
    features = ["a_j1", "b_j1", "a_j2", "b_j2"]
    feature_groups = {"jet1": ("a_j1", "b_j1"), "jet2": ("a_j2", "b_j2"), "event": ()} if groups else {}
    return WindowInputs(WINDOW, PseudoExperiment(400, 1), data, {}, {}, features, samples or {}, feature_groups)


def _fit(name, config, inputs, fold=0, tmp_path=None):
    run = configure(name, {name: {"device": "cpu", **config}})
    data = run.fold_data(inputs, fold)
    fit = FoldFit(f"fold {fold}", 1, fold, data, [100 + i for i in range(run.members)], inputs)
    fitted, = run.fit([fit], tmp_path / f"{name}.ckpt" if tmp_path else None, lambda m: None,
                      run.epoch_key([data]))
    return fitted, data


def _sic_tail(score, label, efficiency=0.02):
    """Signal efficiency over sqrt(background efficiency) at the cut that keeps ``efficiency`` of the background."""
    cut = np.quantile(score[label == 0], 1 - efficiency)
    return (score[label == 1] > cut).mean() / np.sqrt(efficiency)


def test_tag_n_train_tags_with_one_jet_and_finds_a_signal_in_both(tmp_path):
    """Signal in both jets at 4 % of the SR: each jet's autoencoder tags a signal-rich sample, the other jet's
    classifier learns from it, and the sum of their log-odds finds the signal better than chance by far."""
    g = np.random.default_rng(7)
    data = _events(24000, g, signal=400)
    inputs = _inputs(data)
    fitted, fold = _fit("tnt", {"epochs": 6, "members": 2, "autoencoder_epochs": 6, "autoencoder_hidden": [8, 1, 8]},
                        inputs, tmp_path=tmp_path)
    # the classifiers learn from SR events only, the autoencoders from sideband events only
    sr = (inputs.training_events(0)["region"] == REGION_SR).to_numpy()
    assert fold.train.y.sum() == sr.sum() and len(fold.train.y) == len(sr)
    scored = fold.scored
    score = fitted.predict(scored)
    in_sr = scored["region"] == REGION_SR
    sic = _sic_tail(score[in_sr.to_numpy()], scored.loc[in_sr, "label"].to_numpy())
    assert sic > 3, sic
    assert set(fitted.classifiers) == {"jet1", "jet2"}
    assert fitted.columns == {"jet1": ["a_j1", "b_j1"], "jet2": ["a_j2", "b_j2"]}
    # a rerun from the checkpoints of every stage gives the same scores
    again, _ = _fit("tnt", {"epochs": 6, "members": 2, "autoencoder_epochs": 6, "autoencoder_hidden": [8, 1, 8]},
                    inputs, tmp_path=tmp_path)
    np.testing.assert_allclose(again.predict(scored), score, rtol=1e-5, atol=1e-6)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tnt-ae-jet1.ckpt", "tnt-ae-jet2.ckpt", "tnt-clf-jet1.ckpt",
                                                         "tnt-clf-jet2.ckpt"]


def test_an_autoencoder_of_a_simulation_learns_its_sr_events_of_the_other_folds():
    g = np.random.default_rng(5)
    data, simulation = _events(3000, g), _events(5000, g, fold_count=3)
    inputs = _inputs(data, {"simulation": simulation})
    for name in ("ae", "vae"):
        run = configure(name, {name: {"sample": "simulation"}})
        assert run.method_samples() == ("simulation",)
        fold = run.fold_data(inputs, 1)
        chosen = simulation[(simulation["region"] == REGION_SR) & (simulation["fold"] != 1)]
        np.testing.assert_array_equal(fold.train.x, chosen[inputs.features].to_numpy())
        # without it: the data's sidebands of the other folds
        fold = configure(name, {}).fold_data(inputs, 1)
        assert configure(name, {}).method_samples() == ()
        chosen = data[(data["region"] != REGION_SR) & (data["fold"] != 1)]
        np.testing.assert_array_equal(fold.train.x, chosen[inputs.features].to_numpy())


def test_tag_n_train_needs_each_jets_features():
    g = np.random.default_rng(1)
    inputs = _inputs(_events(2000, g), groups=False)
    with pytest.raises(ValueError, match=r"tnt: the scan's features .* have no column of jet1.*mj2"):
        configure("tnt", {}).fold_data(inputs, 0)


def test_quak_selects_near_a_signal_prior_and_far_from_the_background():
    """A prior at the signal's place makes QUAK close to supervised; a prior elsewhere leaves the background
    model's loss to carry it: the right prior finds the signal far better."""
    g = np.random.default_rng(3)
    data = _events(20000, g, signal=300)
    near = _events(6000, g, signal=6000)  # a signal prior where the signal is
    far = near.copy()
    far[["a_j1", "b_j1", "a_j2", "b_j2"]] = g.normal(-2.0, 0.3, (6000, 4))  # and one elsewhere
    config = {"epochs": 8, "members": 2, "loss": "reconstruction"}
    sics = {}
    for name, prior in (("near", near), ("far", far)):
        inputs = _inputs(data, {name: prior})
        fitted, fold = _fit("quak", {**config, "priors": [name]}, inputs)
        coordinates = fitted.coordinates(fold.scored)
        assert coordinates.shape == (len(fold.scored), 2) and (coordinates > 0).all()
        sics[name] = _sic_tail(fitted.predict(fold.scored), fold.scored["label"].to_numpy())
    assert sics["near"] > 5 and sics["near"] > 1.5 * sics["far"], sics


def test_quak_names_a_prior_with_too_few_events():
    g = np.random.default_rng(3)
    prior = _events(30, g, signal=30)
    with pytest.raises(ValueError, match=r"data.samples.sig has \d+ events in the window's other folds, too few"):
        configure("quak", {"quak": {"priors": ["sig"]}}).fold_data(_inputs(_events(3000, g), {"sig": prior[:8]}), 0)


def test_a_synthetic_signal_sample_is_the_signal_model_at_its_own_masses_over_the_whole_mjj_range():
    from slidescan.config import ConfigError
    from slidescan.data.sources import auxiliary_events
    from slidescan.settings import ScanSettings

    config = {**TINY, "data": {**TINY["data"], "samples": {"prior": {"kind": "signal", "m_x": 0.3, "m_y": 0.2,
                                                                      "n_events": 4000}}}}
    settings = ScanSettings.from_config(config)
    sample = settings.data.sample("prior")
    events = auxiliary_events(settings.data, sample, settings.features, log=lambda m: None)
    assert len(events) == 4000 and (events["label"] == 1).all()
    # the lighter jet is Y (0.2 TeV, scaled by about 1.05), the heavier X (0.3 TeV, 20 % of it partly outside)
    assert abs(np.median(events["mj1"]) - 0.21) < 0.02, np.median(events["mj1"])
    model = settings.data.synthetic.model
    quartiles = np.quantile(events["mjj"], [0.25, 0.75])
    assert quartiles[0] < model.mjj_min + 0.35 * (model.mjj_max - model.mjj_min) < quartiles[1]
    for spec, message in (({"kind": "signal", "mismodelling": "mild"}, "mismodelling distorts a simulated background"),
                          ({"m_x": 0.3}, "add kind: signal")):
        bad = {**TINY, "data": {**TINY["data"], "samples": {"prior": spec}}}
        with pytest.raises(ConfigError, match=message):
            ScanSettings.from_config(bad)
    # QUAK's priors must be samples of the scan
    with pytest.raises(ConfigError, match=r"method quak needs the sample\(s\) elsewhere"):
        ScanSettings.from_config({**TINY, "methods": ["quak"], "quak": {"priors": ["elsewhere"]}})


def test_a_signal_sample_read_from_a_file_refuses_background_events(tmp_path):
    from slidescan.data import AuxiliarySample
    from slidescan.data.sources import auxiliary_events
    from slidescan.settings import ScanSettings

    g = np.random.default_rng(2)
    table = pd.DataFrame({"mjj": g.uniform(3, 4, 500), "mj1": 0.1, "delta_mj": 0.1, "tau21_j1": 0.5,
                          "tau21_j2": 0.5, "label": (np.arange(500) < 3).astype(int) ^ 1})
    path = tmp_path / "prior.parquet"
    table.to_parquet(path)
    config = {**TINY, "methods": ["cwola-nn"], "injections": [0],
              "data": {"source": "table", "seed": 1, "table": {"path": str(path), "label": "label"}}}
    settings = ScanSettings.from_config(config)
    sample = AuxiliarySample("prior", path=str(path), kind="signal")
    with pytest.raises(ValueError, match=r"data.samples.prior: .*prior.parquet has 3 events labelled 0 "):
        auxiliary_events(settings.data, sample, settings.features, log=lambda m: None)
    table.assign(label=1).to_parquet(path)
    events = auxiliary_events(settings.data, sample, settings.features, log=lambda m: None)
    assert len(events) == 500 and (events["label"] == 1).all()


@pytest.mark.workflow
def test_vae_the_autoencoder_of_a_simulation_tnt_and_quak_run_end_to_end(tmp_path):
    small = {"epochs": 2, "members": 2}
    config = {**TINY, "scan": "family", "methods": ["vae", "ae", "tnt", "quak"], "injections": [0, 400],
              "data": {**TINY["data"], "samples": {"simulation": {"n_events": 20000},
                                                   "prior": {"kind": "signal", "m_x": 0.4, "m_y": 0.1,
                                                             "n_events": 6000}}},
              "vae": small, "ae": {**small, "sample": "simulation"},
              "tnt": {**small, "autoencoder_epochs": 2}, "quak": {**small, "priors": ["prior"]}}
    workdir = make_workdir(tmp_path, config)
    result = snakemake(workdir)
    assert result.returncode == 0, result.stderr[-4000:]
    results = workdir / "results/family"
    scan = pd.read_csv(results / "pvalue_scan.csv")
    assert set(scan["method"]) == {"vae", "ae", "tnt", "quak"} and scan["fit_ok"].all()
    for method in ("vae", "ae", "tnt", "quak"):
        scores = read_table(results / f"scores/w00/{method}/inj400_seed1.h5", "scores")
        assert np.isfinite(scores["score"]).all(), method
    log = (results / "logs/train/w00/ae/inj400_seed1/fold0.log").read_text()
    assert "2 folds as one batched model of 4 members" in log, log[-2000:]
    quak_log = (results / "logs/train/w00/quak/inj400_seed1/fold0.log").read_text()
    assert "signal prior prior (data.samples.prior)" in quak_log, quak_log[-2000:]
    tnt_log = (results / "logs/train/w00/tnt/inj400_seed1/fold1.log").read_text()
    assert "the jet2 classifiers (SR events, signal-rich where jet1 is tagged)" in tnt_log, tnt_log[-2000:]
    assert (results / "methods.csv").exists()
