import numpy as np
import pandas as pd
import pytest

from slidescan.io import read_table, write_tables
from slidescan.settings import ScanSettings
from slidescan.stages.data import prepare_data
from slidescan.stages.train import merge_folds
from test_data import _lhco_table


def _config(tmp_path, **data):
    return ScanSettings.from_config({
        "scan": "pipeline", "data": {"seed": 5, **data}, "folds": {"k": 3}, "injections": [0], "methods": ["cwola-nn"],
        # inside the mjj range of the small random LHCO tables of these tests, with few events per region
        "windows": {"first_sr_lo": 3.5, "last_sr_lo": 3.5, "sr_width": 0.4, "step": 0.2, "sb_width": 0.4,
                    "min_events": 1}})


def test_prepare_from_lhco_file_splits_background_and_signal(tmp_path):
    table = _lhco_table(n=2000)
    path = tmp_path / "events_anomalydetection_v2.features.h5"
    table.to_hdf(path, key="df", format="table")
    config = _config(tmp_path, source="lhco_h5", lhco_h5={"path": str(path), "reference_fraction": 0.5})
    out = tmp_path / "events.h5"
    prepare_data(config, out)
    bkg, ref = read_table(out, "background"), read_table(out, "reference_background")
    pool, ref_sig = read_table(out, "signal_pool"), read_table(out, "reference_signal")
    n_sig = int(table["label"].sum())
    assert len(bkg) + len(ref) == len(table) - n_sig
    assert len(pool) + len(ref_sig) == n_sig
    assert (bkg["label"] == 0).all() and (pool["label"] == 1).all()
    assert 0.4 < len(ref) / (len(bkg) + len(ref)) < 0.6
    assert set(ref["fold"]) == {0, 1, 2}


def test_prepare_names_a_missing_input_file(tmp_path):
    config = _config(tmp_path, source="lhco_h5", lhco_h5={"path": str(tmp_path / "missing.h5"), "reference_fraction": 0.5})
    with pytest.raises(FileNotFoundError, match="missing.h5: LHCO features file does not exist"):
        prepare_data(config, tmp_path / "events.h5")
    assert not (tmp_path / "events.h5").exists()


def test_merge_refuses_an_event_scored_twice(tmp_path):
    scores = pd.DataFrame({"event_id": [1, 2], "mjj": [3.0, 3.1], "region": [0, 0], "label": [0, 0], "score": [0.1, 0.2]})
    for k in (0, 1):
        write_tables(tmp_path / f"fold{k}.h5", {"scores": scores}, attrs={"fold": k})
    with pytest.raises(ValueError, match="scored by more than one fold"):
        merge_folds([str(tmp_path / "fold0.h5"), str(tmp_path / "fold1.h5")], tmp_path / "merged.h5")
    assert not (tmp_path / "merged.h5").exists()


def test_read_table_errors_name_file_and_key(tmp_path):
    write_tables(tmp_path / "a.h5", {"events": pd.DataFrame({"x": np.arange(3)})})
    with pytest.raises(KeyError, match=r"a\.h5: no table 'scores' \(found: \['events'\]\)"):
        read_table(tmp_path / "a.h5", "scores")
    with pytest.raises(FileNotFoundError, match="b.h5: file does not exist"):
        read_table(tmp_path / "b.h5", "events")


def test_atomic_write_leaves_no_partial_file(tmp_path):
    class Boom(Exception):
        pass

    df = pd.DataFrame({"x": np.arange(3)})
    write_tables(tmp_path / "done.h5", {"events": df})
    before = (tmp_path / "done.h5").read_bytes()
    from slidescan.io import atomic_path
    with pytest.raises(Boom):
        with atomic_path(tmp_path / "done.h5") as tmp:
            tmp.write_bytes(b"half")
            raise Boom
    assert (tmp_path / "done.h5").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["done.h5"]


def _experiments(settings, tmp_path, experiments):
    from slidescan.layout import PseudoExperiment
    from slidescan.stages.data import make_injection

    events = tmp_path / "events.h5"
    if not events.exists():
        prepare_data(settings, events, log=lambda m: None)
    out = {}
    for injection, seed in experiments:
        path = tmp_path / f"inj{injection}_seed{seed}.h5"
        make_injection(settings, events, PseudoExperiment(injection, seed), path)
        out[injection, seed] = read_table(path, "events")
    return out


def test_independent_backgrounds_give_each_seed_its_own_synthetic_background(tmp_path):
    config = {"scan": "indep", "data": {"seed": 5, "backgrounds": "independent",
                                        "synthetic": {"n_background": 20000, "signal_pool": 300,
                                                      "reference_background": 2000, "reference_signal": 200}},
              "folds": {"k": 3}, "injections": [0, 100], "seeds": [1, 2], "methods": ["cwola-nn"],
              "windows": {"first_sr_lo": 3.3, "last_sr_lo": 3.3, "sr_width": 0.4, "step": 0.2, "sb_width": 0.6,
                          "min_events": 10}}
    runs = _experiments(ScanSettings.from_config(config), tmp_path, [(0, 1), (0, 2), (100, 1)])
    bkg = {key: df[df["label"] == 0].reset_index(drop=True) for key, df in runs.items()}
    # seeds differ in their background, an injection of one seed searches that seed's background
    assert not np.allclose(bkg[0, 1]["mjj"], bkg[0, 2]["mjj"])
    pd.testing.assert_frame_equal(bkg[0, 1].drop(columns="fold"), bkg[100, 1].drop(columns="fold"))
    assert len(bkg[0, 1]) == len(bkg[0, 2]) == 20000 and (runs[100, 1]["label"] == 1).sum() == 100


def test_shared_backgrounds_are_one_sample_for_every_seed(tmp_path):
    config = {"scan": "shared", "data": {"seed": 5, "synthetic": {"n_background": 20000, "signal_pool": 300,
                                                                  "reference_background": 2000,
                                                                  "reference_signal": 200}},
              "folds": {"k": 3}, "injections": [0], "seeds": [1, 2], "methods": ["cwola-nn"],
              "windows": {"first_sr_lo": 3.3, "last_sr_lo": 3.3, "sr_width": 0.4, "step": 0.2, "sb_width": 0.6,
                          "min_events": 10}}
    runs = _experiments(ScanSettings.from_config(config), tmp_path, [(0, 1), (0, 2)])
    np.testing.assert_array_equal(runs[0, 1]["mjj"], runs[0, 2]["mjj"])
    assert not np.array_equal(runs[0, 1]["fold"], runs[0, 2]["fold"])


def test_a_file_is_bootstrapped_per_seed_with_each_events_copies_in_one_fold(tmp_path):
    table = _lhco_table(n=8000)
    path = tmp_path / "events_anomalydetection_v2.features.h5"
    table.to_hdf(path, key="df", format="table")
    settings = _config(tmp_path, source="lhco_h5", backgrounds="independent",
                       lhco_h5={"path": str(path), "reference_fraction": 0.5})
    runs = _experiments(settings, tmp_path, [(0, 1), (0, 2)])
    source = read_table(tmp_path / "events.h5", "background")
    for df in runs.values():
        key = ["mjj", "mj1", "delta_mj", "tau21_j1", "tau21_j2"]
        copies = df.groupby(key).agg(n=("fold", "size"), folds=("fold", "nunique"))
        # every copy of an event sits in one fold; the numbers of copies are Poisson(1)
        assert (copies["folds"] == 1).all()
        n = copies["n"].reindex(pd.MultiIndex.from_frame(source[key]), fill_value=0).to_numpy()
        assert n.mean() == pytest.approx(1.0, abs=0.06) and n.var() == pytest.approx(1.0, abs=0.1)
        assert (n == 0).mean() == pytest.approx(np.exp(-1), abs=0.03)
        assert df["event_id"].is_unique
    assert len(runs[0, 1]) != len(runs[0, 2])
