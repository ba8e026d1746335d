"""The CATHODE stage: sideband flow -> SR samples -> classifier, through the pipeline functions."""

import numpy as np
import pytest

from slidescan import pipeline
from slidescan.io import read_attrs, read_table
from slidescan.windows import REGION_SR

CONFIG = {
    "data": {"source": "synthetic", "seed": 4,
             "synthetic": {"n_background": 30000, "signal_pool": 1000, "reference_background": 30000,
                           "reference_signal": 2000}},
    "folds": {"k": 3},
    "windows": {"spacing": "linear", "first_sr_lo": 3.1, "last_sr_lo": 3.1, "sr_width": 0.4, "step": 0.2,
                "sb_width": 0.6},
    "flow": {"transforms": 2, "hidden": [32], "epochs": 4, "batch_size": 512, "learning_rate": 0.003, "n_best": 2,
             "oversampling": 3},
    "classifier": {"nn": {"members": 2, "epochs": 2, "batch_size": 512, "n_best": 0}},
}


@pytest.fixture(scope="module")
def cathode_files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cathode")
    pipeline.prepare_data(CONFIG, tmp / "events.h5")
    pipeline.make_injection(CONFIG, tmp / "events.h5", 300, 1, tmp / "inj.h5")
    pipeline.split_window(CONFIG, tmp / "inj.h5", tmp / "events.h5", "w00", tmp / "split.h5")
    lines = []
    pipeline.fit_flow(CONFIG, tmp / "split.h5", tmp / "flow.h5", checkpoint=tmp / "flow.ckpt",
                      closure_plot=tmp / "closure.png", log=lines.append)
    return tmp, lines


def test_flow_samples_fill_the_signal_region(cathode_files):
    tmp, lines = cathode_files
    data = read_table(tmp / "split.h5", "data")
    n_sr = int((data["region"] == REGION_SR).sum())
    samples = read_table(tmp / "flow.h5", "samples")
    assert len(samples) == 3 * n_sr
    assert samples["mjj"].between(3.1, 3.5).all() and samples["mjj"].max() < 3.5
    np.testing.assert_allclose(samples["weight"], 1 / 3)
    assert set(samples["fold"]) == {0, 1, 2} and (samples["label"] == 0).all()
    assert np.isfinite(samples[["mj1", "delta_mj", "tau21_j1", "tau21_j2"]].to_numpy()).all()
    attrs = read_attrs(tmp / "flow.h5")
    assert 0.4 < attrs["sb_auc"] < 0.8
    assert len(attrs["best_epochs"].split(",")) == 2
    assert len(read_table(tmp / "flow.h5", "history")) == 4
    assert (tmp / "closure.png").stat().st_size > 20_000
    assert any("sideband closure: classifier AUC" in line for line in lines)
    assert (tmp / "flow.ckpt").exists()


def _train_folds(tmp, config, method="cathode-nn", out="scores.h5", log=None, **kw):
    pipeline.train_folds(config, tmp / "split.h5", method, tmp / out, tmp / "folds", tmp / "logs", tmp / "ckpt",
                         log=(lambda s: None) if log is None else log, **kw)


def test_cathode_classifier_trains_on_samples_and_scores_held_out_ones(cathode_files):
    tmp, _ = cathode_files
    _train_folds(tmp, CONFIG, flow_samples=tmp / "flow.h5")
    samples = read_table(tmp / "flow.h5", "samples")
    ref_scores = read_table(tmp / "folds/fold1.h5", "reference_scores")
    # exactly the samples of fold 1: the model trained on the samples of folds 0 and 2
    assert len(ref_scores) == int((samples["fold"] == 1).sum())
    np.testing.assert_allclose(np.sort(ref_scores["mjj"]), np.sort(samples.loc[samples["fold"] == 1, "mjj"]))
    # the job's output: every window event once, scored by the fold model that did not train on it
    merged = read_table(tmp / "scores.h5", "scores")
    data = read_table(tmp / "split.h5", "data")
    assert sorted(merged["event_id"]) == sorted(data["event_id"])
    assert merged["score"].between(0, 1).all()
    assert len(read_table(tmp / "scores.h5", "reference_scores")) == len(samples)
    history = read_table(tmp / "scores.h5", "history")
    assert sorted(history["fold"].unique()) == [0, 1, 2] and len(history) == 3 * 2


def test_a_failed_fold_keeps_the_others_and_the_rerun_trains_only_it(cathode_files, tmp_path, monkeypatch):
    tmp, _ = cathode_files
    for name in ("split.h5", "flow.h5"):
        (tmp_path / name).symlink_to(tmp / name)
    monkeypatch.setenv(pipeline.FAULT_ENV, "*/folds/fold1.h5")
    lines = []
    with pytest.raises(RuntimeError, match=r"1 of 3 folds of w00 cathode-nn injection 300 seed 1 failed "
                                           r"\(seed 1 fold 1: RuntimeError: forced failure.*a rerun trains only the failed"):
        _train_folds(tmp_path, CONFIG, log=lines.append, flow_samples=tmp_path / "flow.h5")
    assert not (tmp_path / "scores.h5").exists()
    # fold 2 was still trained after fold 1 failed; fold 1's traceback is in its own log
    assert (tmp_path / "folds/fold0.h5").exists() and (tmp_path / "folds/fold2.h5").exists()
    assert not (tmp_path / "folds/fold1.h5").exists()
    assert "Traceback" in (tmp_path / "logs/fold1.log").read_text()
    assert any(line.startswith("seed 1 fold 1: FAILED: RuntimeError: forced failure") for line in lines)
    finished = {f: (tmp_path / f"folds/fold{f}.h5").stat().st_mtime_ns for f in (0, 2)}

    monkeypatch.delenv(pipeline.FAULT_ENV)
    lines.clear()
    _train_folds(tmp_path, CONFIG, log=lines.append, flow_samples=tmp_path / "flow.h5")
    assert [line.split(" (")[0] for line in lines] == \
        ["seed 1 fold 0: kept, finished earlier with the same data and settings", "seed 1 fold 1: training",
         "seed 1 fold 2: kept, finished earlier with the same data and settings"]
    assert {f: (tmp_path / f"folds/fold{f}.h5").stat().st_mtime_ns for f in (0, 2)} == finished
    assert len(read_table(tmp_path / "scores.h5", "scores")) == len(read_table(tmp / "split.h5", "data"))
    # folds 0 and 2 trained together, fold 1 alone: each is the network it is when all three train together
    together = tmp_path / "together"
    together.mkdir()
    for name in ("split.h5", "flow.h5"):
        (together / name).symlink_to(tmp / name)
    _train_folds(together, CONFIG, flow_samples=together / "flow.h5")
    assert "3 folds as one batched model of 6 members" in (together / "logs/fold1.log").read_text()
    for f in range(3):
        np.testing.assert_allclose(read_table(tmp_path / f"folds/fold{f}.h5", "scores")["score"],
                                   read_table(together / f"folds/fold{f}.h5", "scores")["score"], atol=1e-5)

    # changed settings: no finished fold is reused
    lines.clear()
    longer = {**CONFIG, "classifier": {"nn": {**CONFIG["classifier"]["nn"], "epochs": 3}}}
    _train_folds(tmp_path, longer, log=lines.append, flow_samples=tmp_path / "flow.h5")
    assert [line.split(" (")[0] for line in lines] == [f"seed 1 fold {f}: training" for f in range(3)]
    assert len(read_table(tmp_path / "scores.h5", "history")) == 3 * 3


def test_cathode_without_flow_samples_is_a_clear_error(cathode_files, tmp_path):
    tmp, _ = cathode_files
    (tmp_path / "split.h5").symlink_to(tmp / "split.h5")
    with pytest.raises(ValueError, match="cathode-nn needs the flow samples of its window"):
        _train_folds(tmp_path, CONFIG, out="never.h5")
    assert not (tmp_path / "never.h5").exists() and not (tmp_path / "folds").exists()


def test_unknown_flow_setting_names_the_section(cathode_files):
    tmp, _ = cathode_files
    bad = {**CONFIG, "flow": {**CONFIG["flow"], "blocks": 3}}
    with pytest.raises(ValueError, match=r"flow: unknown setting\(s\) \['blocks'\]"):
        pipeline.fit_flow(bad, tmp / "split.h5", tmp / "bad.h5", log=lambda s: None)
    assert not (tmp / "bad.h5").exists()


def test_tree_folds_train_one_after_another_and_a_failed_one_is_named(cathode_files, tmp_path, monkeypatch):
    tmp, _ = cathode_files
    (tmp_path / "split.h5").symlink_to(tmp / "split.h5")
    config = {**CONFIG, "classifier": {**CONFIG["classifier"], "bdt": {"members": 2, "max_iter": 20}}}
    monkeypatch.setenv(pipeline.FAULT_ENV, "*/folds/fold1.h5")
    lines = []
    with pytest.raises(RuntimeError, match=r"1 of 3 folds of w00 idealized-bdt injection 300 seed 1 failed "
                                           r"\(seed 1 fold 1: RuntimeError: forced failure"):
        _train_folds(tmp_path, config, method="idealized-bdt", log=lines.append)
    assert (tmp_path / "folds/fold0.h5").exists() and (tmp_path / "folds/fold2.h5").exists()
    assert "Traceback" in (tmp_path / "logs/fold1.log").read_text()
    assert "as one batched model" not in (tmp_path / "logs/fold2.log").read_text()
    monkeypatch.delenv(pipeline.FAULT_ENV)
    lines.clear()
    _train_folds(tmp_path, config, method="idealized-bdt", log=lines.append)
    assert [line.split(" (")[0] for line in lines] == \
        ["seed 1 fold 0: kept, finished earlier with the same data and settings", "seed 1 fold 1: training",
         "seed 1 fold 2: kept, finished earlier with the same data and settings"]


def test_the_seeds_of_a_window_share_one_model_and_each_fold_is_the_network_it_is_alone(cathode_files, tmp_path):
    """One job per (window, method, injection): every seed's folds in one batched model."""
    tmp, _ = cathode_files
    pipeline.make_injection(CONFIG, tmp / "events.h5", 300, 2, tmp_path / "inj2.h5")
    pipeline.split_window(CONFIG, tmp_path / "inj2.h5", tmp / "events.h5", "w00", tmp_path / "split2.h5")
    splits = {1: tmp / "split.h5", 2: tmp_path / "split2.h5"}

    def experiment(seed, where):
        return pipeline.Experiment(splits[seed], where / f"scores{seed}.h5", where / f"folds{seed}", where / f"logs{seed}")

    lines = []
    pipeline.train_experiments(CONFIG, "idealized-nn", [experiment(1, tmp_path), experiment(2, tmp_path)],
                               tmp_path / "ckpt", log=lines.append)
    assert [line.split(" (")[0] for line in lines] == [f"seed {s} fold {f}: training" for s in (1, 2) for f in range(3)]
    log = (tmp_path / "logs2/fold0.log").read_text()
    assert ("6 folds as one batched model of 12 members (w00 idealized-nn injection 300: seed 1 folds 0, 1, 2; "
            "seed 2 folds 0, 1, 2)") in log
    assert (tmp_path / "logs1/fold2.log").read_text().splitlines()[:2] == log.splitlines()[:2]
    for seed in (1, 2):
        merged = read_table(tmp_path / f"scores{seed}.h5", "scores")
        assert sorted(merged["event_id"]) == sorted(read_table(splits[seed], "data")["event_id"])
    # seed 2 trained alone: the same networks, the same scores
    alone = tmp_path / "alone"
    pipeline.train_experiments(CONFIG, "idealized-nn", [experiment(2, alone)], alone / "ckpt", log=lambda s: None)
    assert "3 folds as one batched model of 6 members (w00 idealized-nn injection 300: seed 2 folds 0, 1, 2)" in \
        (alone / "logs2/fold0.log").read_text()
    for f in range(3):
        np.testing.assert_allclose(read_table(alone / f"folds2/fold{f}.h5", "scores")["score"],
                                   read_table(tmp_path / f"folds2/fold{f}.h5", "scores")["score"], atol=1e-5)


def test_epoch_length_is_the_largest_fold_rounded_up_to_the_batch_grid():
    assert [pipeline.grid_batches(b) for b in (1, 2, 57, 99)] == [1, 2, 57, 99]  # every count up to about 100
    grid = sorted({pipeline.grid_batches(b) for b in range(600, 700)})
    assert all(0 < later - earlier <= 0.0101 * earlier + 1 for earlier, later in zip(grid, grid[1:]))
    assert len(grid) < 20 and all(pipeline.grid_batches(b) >= b for b in range(1, 5000))
    config = {**CONFIG, "classifier": {"nn": {"batch_size": 128, "validation_fraction": 0.2}}}

    def epoch(*sizes):
        return pipeline.nn_epoch_events(config, [pipeline.TrainingSet(np.zeros((n, 4)), np.zeros(n), np.ones(n))
                                                 for n in sizes])

    # largest training splits of 63,824 and 64,256 events (499 and 502 batches): both 503 batches on the grid,
    # so the two seeds share one model; 64,400 events (504 batches) rounds up to 508
    assert epoch(79_780, 79_000, 78_500) == epoch(78_000, 80_320) == 503 * 128
    assert epoch(80_500, 79_000) == 508 * 128
