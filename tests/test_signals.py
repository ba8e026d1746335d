"""Several signal models in one scan (``signals:``): their pseudo-experiments, samples, paths and limits."""

import numpy as np
import pandas as pd
import pytest

from slidescan.config import ConfigError
from slidescan.io import read_attrs, read_table
from slidescan.layout import Layout, PseudoExperiment
from slidescan.settings import ScanSettings
from slidescan.stages.data import make_injection, prepare_data, prepare_signal, split_window
from slidescan.stages.limits import limits_table

from test_limits import SMALL, scan_rows

BASE = {"scan": "models", "data": {"source": "synthetic", "seed": 5,
                                  "synthetic": {"n_background": 20000, "signal_pool": 500,
                                                "reference_background": 2000, "reference_signal": 400}},
        "injections": [0, 200], "seeds": [1, 2], "folds": {"k": 3}, "methods": ["cwola-nn", "supervised-bdt"],
        "windows": {"first_sr_lo": 3.1, "last_sr_lo": 4.3, "sr_width": 0.4, "step": 0.4, "sb_width": 0.4,
                    "min_events": 10}}
TWO = {**BASE, "signals": {"w35": {}, "w45": {"m_wprime": 4.5, "m_x": 0.3}}}


def test_a_one_model_scan_keeps_its_pseudo_experiments_and_paths():
    settings = ScanSettings.from_config(BASE)
    assert [e.tag for e in settings.experiments] == ["inj0_seed1", "inj0_seed2", "inj200_seed1", "inj200_seed2"]
    assert [e.key for e in settings.experiments] == [(0, 1), (0, 2), (200, 1), (200, 2)]
    assert PseudoExperiment(200, 1).attrs() == {"injection": 200, "seed": 1}
    layout = Layout("r")
    assert str(layout.train_log("w00", "cwola-nn", 200)) == "r/logs/train/w00/cwola-nn/inj200.log"
    assert str(layout.scan_plot("cwola-nn", 200)) == "r/plots/pvalue_scan_cwola-nn_inj200.png"
    assert str(layout.limit_plot("cwola-nn")) == "r/plots/limits_cwola-nn.png"
    assert settings.truth_mass == 3.5 and settings.signal_file(PseudoExperiment(200, 1)) is None


def test_each_model_has_its_injections_and_shares_the_background_only_ones():
    settings = ScanSettings.from_config(TWO)
    tags = [e.tag for e in settings.experiments]
    assert tags == ["inj0_seed1", "inj0_seed2", "w35_inj200_seed1", "w35_inj200_seed2", "w45_inj200_seed1",
                    "w45_inj200_seed2"]
    e = PseudoExperiment.parse("w45_inj200_seed2")
    assert (e.signal, e.injection, e.seed, e.key) == ("w45", 200, 2, ("w45", 200, 2))
    assert PseudoExperiment.from_attrs(e.attrs()) == e and str(e) == "signal w45 injection 200 seed 2"
    assert [m.mass for m in settings.signals] == [3.5, 4.5] and settings.truth_window_of("w45").sr_lo == 4.3
    # the background-only experiments carry the first model's reference signal (the supervised reference)
    assert settings.signal_file(PseudoExperiment(0, 1)).name == "signal_w35.h5"
    with pytest.raises(ValueError, match="injection 0 has no signal model"):
        PseudoExperiment(0, 1, "w45")


@pytest.mark.parametrize("signals, message", [
    ({"x": {"path": "sig.h5"}}, r"signals.x: the synthetic source generates its signals"),
    ({"x_1": {}}, r"x_1"),
    ({"NA": {}}, r"signals.NA: a model may not be named 'NA': .*pandas reads that name back as a missing value"),
    ({"True": {}}, r"may not be named 'True'"),
])
def test_synthetic_models_are_checked_at_configuration(signals, message):
    with pytest.raises(ConfigError, match=message):
        ScanSettings.from_config({**BASE, "signals": signals})


def test_truth_mass_belongs_to_a_one_model_scan():
    with pytest.raises(ConfigError, match=r"truth_mass is the mass of a one-model scan; with signals: give each model.s mass"):
        ScanSettings.from_config({**TWO, "truth_mass": 3.5})


def _table_scan(tmp_path, signals, labels=(0, 1)):
    rng = np.random.default_rng(0)
    n = 6000
    df = pd.DataFrame({"mjj": rng.uniform(3.0, 4.6, n), "mj1": rng.uniform(0.05, 0.5, n),
                       "delta_mj": rng.uniform(0, 0.4, n), "tau21_j1": rng.uniform(0, 1, n),
                       "tau21_j2": rng.uniform(0, 1, n), "y": rng.choice(labels, n, p=None)})
    path = tmp_path / "events.parquet"
    df.to_parquet(path)
    config = {**BASE, "injections": [0, 50], "seeds": [1], "methods": ["cwola-nn"],
              "data": {"source": "table", "seed": 5, "table": {"path": str(path), "label": "y"}},
              "windows": {"first_sr_lo": 3.5, "last_sr_lo": 3.5, "sr_width": 0.4, "step": 0.2, "sb_width": 0.4,
                          "min_events": 1}, "signals": signals}
    return df, path, config


def test_file_models_are_checked_at_configuration(tmp_path):
    _, _, config = _table_scan(tmp_path, {})
    for signals, message in [({"x": {"m_wprime": 4.0}}, r"signals.x: m_wprime describe a synthetic signal"),
                             ({"x": {"mass": 3.7}}, r"signals.x: give the model's events with exactly one of path"),
                             ({"x": {"label": 2}}, r"signals.x: mass \(TeV\) is required"),
                             ({"x": {"label": 2, "mass": 3}, "z": {"label": 2, "mass": 4}}, r"same label value")]:
        with pytest.raises(ConfigError, match=message):
            ScanSettings.from_config({**config, "signals": signals})
    lhco = {**config, "data": {"source": "lhco_h5", "lhco_h5": {"path": "x.h5"}}}
    with pytest.raises(ConfigError, match=r"signals.x: label selects events .* with data.source lhco_h5 give a path"):
        ScanSettings.from_config({**lhco, "signals": {"x": {"label": 2, "mass": 3.7}}})


def test_a_label_value_of_the_data_file_is_a_signal_model(tmp_path):
    df, path, config = _table_scan(tmp_path, {"two": {"label": 2, "mass": 3.7}, "one": {"label": 1, "mass": 3.5}},
                                   labels=(0, 1, 2))
    settings = ScanSettings.from_config(config)
    prepare_data(settings, tmp_path / "events.h5", log=lambda m: None)
    # label 2 is neither background nor the file's label-1 signal
    assert len(read_table(tmp_path / "events.h5", "background")) + \
        len(read_table(tmp_path / "events.h5", "reference_background")) == int((df["y"] == 0).sum())
    prepare_signal(settings, "two", tmp_path / "signal_two.h5", log=lambda m: None)
    pool, ref = read_table(tmp_path / "signal_two.h5", "signal_pool"), read_table(tmp_path / "signal_two.h5",
                                                                                  "reference_signal")
    assert len(pool) + len(ref) == int((df["y"] == 2).sum()) and (pool["label"] == 1).all()
    assert sorted(np.round(pd.concat([pool, ref])["mjj"], 9)) == sorted(np.round(df.loc[df["y"] == 2, "mjj"], 9))
    assert read_attrs(tmp_path / "signal_two.h5")["mass"] == 3.7
    # without the model the value 2 is refused, as before
    with pytest.raises(ValueError, match=r"column 'y' must be 0 \(background\) or 1 \(signal\)"):
        prepare_data(ScanSettings.from_config({**config, "signals": {}}), tmp_path / "e2.h5", log=lambda m: None)


def test_a_signal_file_is_a_signal_model_and_must_hold_signal(tmp_path):
    _, _, config = _table_scan(tmp_path, {})
    rng = np.random.default_rng(1)
    sig = pd.DataFrame({"mjj": rng.normal(4.0, 0.1, 300), "mj1": rng.uniform(0.05, 0.5, 300),
                        "delta_mj": rng.uniform(0, 0.4, 300), "tau21_j1": rng.uniform(0, 1, 300),
                        "tau21_j2": rng.uniform(0, 1, 300), "y": np.r_[np.ones(200), np.zeros(100)]})
    sig.to_parquet(tmp_path / "sig.parquet")
    settings = ScanSettings.from_config({**config, "signals": {"s": {"path": str(tmp_path / "sig.parquet"),
                                                                     "mass": 4.0}}})
    prepare_signal(settings, "s", tmp_path / "signal_s.h5", log=lambda m: None)
    both = pd.concat([read_table(tmp_path / "signal_s.h5", t) for t in ("signal_pool", "reference_signal")])
    assert len(both) == 200  # the file's label-1 events
    sig.assign(y=0).to_parquet(tmp_path / "sig.parquet")
    with pytest.raises(ValueError, match=r"sig.parquet: no signal events \(signals.s.path: every event has label 0"):
        prepare_signal(settings, "s", tmp_path / "signal_s.h5", log=lambda m: None)


def test_a_named_model_injects_its_own_signal_and_its_split_carries_its_reference(tmp_path):
    settings = ScanSettings.from_config(TWO)
    events = tmp_path / "events.h5"
    prepare_data(settings, events, log=lambda m: None)
    for name in ("w35", "w45"):
        prepare_signal(settings, name, tmp_path / f"signal_{name}.h5", log=lambda m: None)
    pools = {n: read_table(tmp_path / f"signal_{n}.h5", "signal_pool") for n in ("w35", "w45")}
    assert np.median(pools["w45"]["mjj"]) == pytest.approx(4.5, abs=0.1)
    assert np.median(pools["w35"]["mjj"]) == pytest.approx(3.5, abs=0.1)
    # the heavier jet of the 4.5 TeV model is X at 0.3 TeV
    assert np.median(pools["w45"]["mj1"] + pools["w45"]["delta_mj"]) == pytest.approx(0.3, abs=0.05)
    injected = {}
    for e in (PseudoExperiment(0, 1), PseudoExperiment(200, 1, "w45"), PseudoExperiment(200, 1, "w35")):
        path = tmp_path / f"{e.tag}.h5"
        make_injection(settings, events, e, path, signal=tmp_path / f"signal_{e.signal}.h5" if e.signal else None)
        injected[e.tag] = read_table(path, "events")
        assert read_attrs(path) == {**e.attrs()}
    signal = {t: df[df["label"] == 1] for t, df in injected.items()}
    assert len(signal["inj0_seed1"]) == 0 and len(signal["w45_inj200_seed1"]) == 200
    assert np.median(signal["w45_inj200_seed1"]["mjj"]) == pytest.approx(4.5, abs=0.1)
    # the models share the background: the same events, each model its own signal draw
    background = {t: df[df["label"] == 0].drop(columns="fold") for t, df in injected.items()}
    pd.testing.assert_frame_equal(background["w45_inj200_seed1"].reset_index(drop=True),
                                  background["w35_inj200_seed1"].reset_index(drop=True))
    out = tmp_path / "split.h5"
    split_window(settings, tmp_path / "w45_inj200_seed1.h5", events, "w03", out, signal=tmp_path / "signal_w45.h5")
    pd.testing.assert_frame_equal(read_table(out, "signal"), read_table(tmp_path / "signal_w45.h5",
                                                                        "reference_signal"))
    assert read_attrs(out)["signal"] == "w45"
    # an injection beyond a pool names the pool it drew from: the model and its file, or the events' own pool
    n_pool = len(pools["w45"])
    with pytest.raises(ValueError, match=rf"injection of {n_pool + 1} signal events asks for more than signal model "
                                         rf"'w45' \(.*signal_w45.h5\) holds \({n_pool}\)"):
        make_injection(settings, events, PseudoExperiment(n_pool + 1, 1, "w45"), tmp_path / "x.h5",
                       signal=tmp_path / "signal_w45.h5")
    with pytest.raises(ValueError, match=r"more than the signal pool of .*events.h5 \(data.signal_pool\) holds"):
        make_injection(settings, events, PseudoExperiment(100_000, 1), tmp_path / "x.h5")
    assert not (tmp_path / "x.h5").exists()


def test_limits_of_each_model_use_its_efficiency_and_the_shared_background_only_rows():
    settings = ScanSettings.from_config({**SMALL, "signals": {"a": {}, "b": {"m_wprime": 3.3}}})
    rows = scan_rows()
    null = rows[rows["injection"] == 0].assign(signal="")
    a = rows[rows["injection"] > 0].assign(signal="a")
    # model b: the cut keeps twice as much of it at every strength
    b = a.assign(signal="b", n_signal_selected=2 * a["n_signal_selected"], n_obs=a["n_obs"] + a["n_signal_selected"])
    table = limits_table(settings, pd.concat([null, a, b], ignore_index=True))
    assert sorted(table["signal"].unique()) == ["a", "b"] and len(table) == 2 * 4
    by = table.set_index(["signal", "window", "efficiency"])
    for window in ("w00", "w01"):
        # the same background-only counts: the same limit on the selected signal, fewer injected events for b
        assert by.loc[("b", window, 0.1), "s95_obs"] == pytest.approx(by.loc[("a", window, 0.1), "s95_obs"])
        assert by.loc[("b", window, 0.1), "limit_obs"] < by.loc[("a", window, 0.1), "limit_obs"]
    with_supervised = ScanSettings.from_config({**SMALL, "methods": ["supervised-bdt"],
                                                "signals": {"a": {}, "b": {"m_wprime": 3.3}}})
    rows = pd.concat([null, a, b], ignore_index=True).assign(method="supervised-bdt")
    notes = limits_table(with_supervised, rows).set_index("signal")["note"]
    assert notes.loc["b"].str.contains("trained on the true signal of model a").all()
    assert not notes.loc["a"].str.contains("trained on the true signal").any()


def test_a_model_appended_to_signals_extends_the_recorded_scan_and_any_other_change_stops():
    """slidescan run compares the recorded settings: an appended model adds its own jobs only; a new first model
    (the background-only splits carry the first model's reference) or a changed model is a change."""
    from slidescan import record

    recorded = ScanSettings.from_config(TWO).config
    appended = ScanSettings.from_config({**TWO, "signals": {**TWO["signals"], "w30": {"m_wprime": 3.0}}}).config
    assert record.changes(recorded, appended) == []
    first = ScanSettings.from_config({**TWO, "signals": {"w30": {"m_wprime": 3.0}, **TWO["signals"]}}).config
    assert record.changes(recorded, first) == ["signals.w30.m_wprime: (unset) -> 3.0"]
    changed = ScanSettings.from_config({**TWO, "signals": {"w35": {}, "w45": {"m_wprime": 4.6, "m_x": 0.3}}}).config
    assert record.changes(recorded, changed) == ["signals.w45.m_wprime: 4.5 -> 4.6"]
    one_model = ScanSettings.from_config(BASE).config
    assert record.changes(one_model, recorded)  # from one unnamed model to named ones: new paths
