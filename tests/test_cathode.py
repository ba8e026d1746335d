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


def test_cathode_classifier_trains_on_samples_and_scores_held_out_ones(cathode_files):
    tmp, _ = cathode_files
    pipeline.train_fold(CONFIG, tmp / "split.h5", "cathode-nn", 1, tmp / "fold1.h5", log=lambda s: None,
                        flow_samples=tmp / "flow.h5")
    samples = read_table(tmp / "flow.h5", "samples")
    ref_scores = read_table(tmp / "fold1.h5", "reference_scores")
    # exactly the samples of fold 1: the model trained on the samples of folds 0 and 2
    assert len(ref_scores) == int((samples["fold"] == 1).sum())
    np.testing.assert_allclose(np.sort(ref_scores["mjj"]), np.sort(samples.loc[samples["fold"] == 1, "mjj"]))
    scores = read_table(tmp / "fold1.h5", "scores")
    assert scores["score"].between(0, 1).all() and len(scores) > 0


def test_cathode_without_flow_samples_is_a_clear_error(cathode_files):
    tmp, _ = cathode_files
    with pytest.raises(ValueError, match="cathode-nn needs the flow samples of its window"):
        pipeline.train_fold(CONFIG, tmp / "split.h5", "cathode-nn", 0, tmp / "never.h5", log=lambda s: None)
    assert not (tmp / "never.h5").exists()


def test_unknown_flow_setting_names_the_section(cathode_files):
    tmp, _ = cathode_files
    bad = {**CONFIG, "flow": {**CONFIG["flow"], "blocks": 3}}
    with pytest.raises(ValueError, match=r"flow: unknown setting\(s\) \['blocks'\]"):
        pipeline.fit_flow(bad, tmp / "split.h5", tmp / "bad.h5", log=lambda s: None)
    assert not (tmp / "bad.h5").exists()
