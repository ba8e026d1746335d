"""The CATHODE path through the stages: the sideband-flow model -> SR samples -> classifier folds."""

import numpy as np
import pytest

from slidescan.backends.nn import grid_batches, nn_epoch_events
from slidescan.backends.nn import NNSettings
from slidescan.io import read_attrs, read_table
from slidescan.layout import Layout, PseudoExperiment
from slidescan.methods import TrainingSet
from slidescan.registry import MODELS
from slidescan.seeds import derive_seed
from slidescan.settings import ScanSettings
from slidescan.stages import FAULT_ENV
from slidescan.stages.data import make_injection, prepare_data, split_window
from slidescan.stages.models import fit_model
from slidescan.stages.train import train
from slidescan.windows import REGION_SR

CONFIG = {
    "scan": "cathode",
    "data": {"source": "synthetic", "seed": 4,
             "synthetic": {"n_background": 30000, "signal_pool": 1000, "reference_background": 30000,
                           "reference_signal": 2000}},
    "injections": [300],
    "seeds": [1],
    "folds": {"k": 3},
    "windows": {"spacing": "linear", "first_sr_lo": 3.1, "last_sr_lo": 3.1, "sr_width": 0.4, "step": 0.2,
                "sb_width": 0.6},
    "methods": ["cathode-nn", "idealized-nn", "idealized-bdt"],
    "flow": {"transforms": 2, "hidden": [32], "epochs": 4, "batch_size": 512, "learning_rate": 0.003, "n_best": 2,
             "oversampling": 3},
    "classifier": {"nn": {"members": 2, "epochs": 2, "batch_size": 512, "n_best": 0},
                   "bdt": {"members": 2, "max_iter": 20}},
}
SETTINGS = ScanSettings.from_config(CONFIG)
E1, E2 = PseudoExperiment(300, 1), PseudoExperiment(300, 2)
FLOW = MODELS["sideband_flow"]


def settings(**changes):
    return ScanSettings.from_config({**CONFIG, **changes})


@pytest.fixture(scope="module")
def cathode_files(tmp_path_factory):
    layout = Layout(tmp_path_factory.mktemp("cathode"))
    prepare_data(SETTINGS, layout.events())
    make_injection(SETTINGS, layout.events(), E1, layout.injected(E1))
    split_window(SETTINGS, layout.injected(E1), layout.events(), "w00", layout.split("w00", E1))
    lines = []
    fit_model(SETTINGS, layout, "sideband_flow", "w00", E1, log=lines.append)
    return layout, lines


def linked(source: Layout, root, experiments=(E1,), flow=True) -> Layout:
    """A fresh results directory with the inputs (split files, flows) of ``source`` linked in."""
    layout = Layout(root)
    for e in experiments:
        paths = [(source.split("w00", e), layout.split("w00", e))]
        if flow:
            paths.append((source.model(FLOW, "w00", e), layout.model(FLOW, "w00", e)))
        for src, dst in paths:
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.symlink_to(src)
    return layout


def test_flow_samples_fill_the_signal_region(cathode_files):
    layout, lines = cathode_files
    data = read_table(layout.split("w00", E1), "data")
    n_sr = int((data["region"] == REGION_SR).sum())
    flow_file = layout.model(FLOW, "w00", E1)
    assert flow_file == layout.root / "flows/w00/inj300_seed1.h5"  # the path of scans made before the method layer
    samples = read_table(flow_file, "samples")
    assert len(samples) == 3 * n_sr
    assert samples["mjj"].between(3.1, 3.5).all() and samples["mjj"].max() < 3.5
    np.testing.assert_allclose(samples["weight"], 1 / 3)
    assert set(samples["fold"]) == {0, 1, 2} and (samples["label"] == 0).all()
    assert np.isfinite(samples[["mj1", "delta_mj", "tau21_j1", "tau21_j2"]].to_numpy()).all()
    attrs = read_attrs(flow_file)
    assert 0.4 < attrs["sb_auc"] < 0.8
    assert len(attrs["best_epochs"].split(",")) == 2 and attrs["model"] == "sideband_flow"
    assert len(read_table(flow_file, "history")) == 4
    assert layout.model_plot(FLOW, "w00", E1).stat().st_size > 20_000
    unit_log = layout.model_log(FLOW, "w00", E1).read_text()  # the unit's own log, beside the job's
    assert unit_log.startswith("=== attempt ") and "sideband closure: classifier AUC" in unit_log
    assert unit_log.count("flow epoch ") == 4
    assert layout.model_checkpoint(FLOW, "w00", E1) == layout.root / "checkpoints/w00/flow/inj300_seed1.ckpt"
    assert layout.model_checkpoint(FLOW, "w00", E1).exists()


def test_the_stored_flow_is_the_trained_one(cathode_files):
    """Methods that evaluate the density (anode, ranode, flow-nll) read the flow back from the model's file."""
    from slidescan.methods import ModelOutput

    layout, _ = cathode_files
    flow = ModelOutput("sideband_flow", layout.model(FLOW, "w00", E1)).density()
    held = read_table(layout.model(FLOW, "w00", E1), "sb_data")
    # the closure samples the model drew with its trained flow, drawn again with the stored one
    again = flow.sample(held["mjj"].to_numpy(), derive_seed(CONFIG["data"]["seed"], "flow", "w00", 300, 1, "sb"))
    stored = read_table(layout.model(FLOW, "w00", E1), "sb_samples")
    np.testing.assert_allclose(again, stored[["mj1", "delta_mj", "tau21_j1", "tau21_j2"]].to_numpy(), atol=1e-6)
    # its held-out events are the validation split: their NLL (in the flow's space) is the kept epochs' mixture's
    x = held[["mj1", "delta_mj", "tau21_j1", "tau21_j2"]].to_numpy()
    nll = -(flow.log_prob(x, held["mjj"].to_numpy()) - flow.pre.log_jacobian(x))
    best = read_attrs(layout.model(FLOW, "w00", E1))["best_val_nll"]
    assert np.isfinite(nll).all() and abs(nll.mean() - best) < 0.05


def _train(layout, config=SETTINGS, method="cathode-nn", log=None, **kw):
    train(config, layout, "w00", method, 300, log=(lambda s: None) if log is None else log, **kw)


def test_cathode_classifier_trains_on_samples_and_scores_held_out_ones(cathode_files, tmp_path):
    layout = linked(cathode_files[0], tmp_path)
    _train(layout)
    samples = read_table(layout.model(FLOW, "w00", E1), "samples")
    ref_scores = read_table(layout.fold("w00", "cathode-nn", E1, 1), "reference_scores")
    # exactly the samples of fold 1: the model trained on the samples of folds 0 and 2
    assert len(ref_scores) == int((samples["fold"] == 1).sum())
    np.testing.assert_allclose(np.sort(ref_scores["mjj"]), np.sort(samples.loc[samples["fold"] == 1, "mjj"]))
    # the job's output: every window event once, scored by the fold model that did not train on it
    scores = layout.scores("w00", "cathode-nn", E1)
    merged = read_table(scores, "scores")
    data = read_table(layout.split("w00", E1), "data")
    assert sorted(merged["event_id"]) == sorted(data["event_id"])
    assert merged["score"].between(0, 1).all()
    assert len(read_table(scores, "reference_scores")) == len(samples)
    history = read_table(scores, "history")
    assert sorted(history["fold"].unique()) == [0, 1, 2] and len(history) == 3 * 2


def test_a_failed_fold_keeps_the_others_and_the_rerun_trains_only_it(cathode_files, tmp_path, monkeypatch):
    source = cathode_files[0]
    layout = linked(source, tmp_path / "run")
    monkeypatch.setenv(FAULT_ENV, "*/inj300_seed1/fold1.h5")
    lines = []
    with pytest.raises(RuntimeError, match=r"1 of 3 folds of w00 cathode-nn injection 300 seed 1 failed "
                                           r"\(seed 1 fold 1: RuntimeError: forced failure.*a rerun trains only the failed"):
        _train(layout, log=lines.append)
    assert not layout.scores("w00", "cathode-nn", E1).exists()
    # fold 2 was still trained after fold 1 failed; fold 1's traceback is in its own log
    assert layout.fold("w00", "cathode-nn", E1, 0).exists() and layout.fold("w00", "cathode-nn", E1, 2).exists()
    assert not layout.fold("w00", "cathode-nn", E1, 1).exists()
    assert "Traceback" in layout.fold_log("w00", "cathode-nn", E1, 1).read_text()
    assert any(line.startswith("seed 1 fold 1: FAILED: RuntimeError: forced failure") for line in lines)
    finished = {f: layout.fold("w00", "cathode-nn", E1, f).stat().st_mtime_ns for f in (0, 2)}

    monkeypatch.delenv(FAULT_ENV)
    lines.clear()
    _train(layout, log=lines.append)
    assert [line.split(" (")[0] for line in lines] == \
        ["seed 1 fold 0: kept, finished earlier with the same data and settings", "seed 1 fold 1: training",
         "seed 1 fold 2: kept, finished earlier with the same data and settings"]
    assert {f: layout.fold("w00", "cathode-nn", E1, f).stat().st_mtime_ns for f in (0, 2)} == finished
    assert len(read_table(layout.scores("w00", "cathode-nn", E1), "scores")) == \
        len(read_table(source.split("w00", E1), "data"))
    # folds 0 and 2 trained together, fold 1 alone: each is the network it is when all three train together
    together = linked(source, tmp_path / "together")
    _train(together)
    assert "3 folds as one batched model of 6 members" in together.fold_log("w00", "cathode-nn", E1, 1).read_text()
    for f in range(3):
        np.testing.assert_allclose(read_table(layout.fold("w00", "cathode-nn", E1, f), "scores")["score"],
                                   read_table(together.fold("w00", "cathode-nn", E1, f), "scores")["score"], atol=1e-5)

    # changed settings: no finished fold is reused
    lines.clear()
    longer = settings(classifier={**CONFIG["classifier"], "nn": {**CONFIG["classifier"]["nn"], "epochs": 3}})
    _train(layout, config=longer, log=lines.append)
    assert [line.split(" (")[0] for line in lines] == [f"seed 1 fold {f}: training" for f in range(3)]
    assert len(read_table(layout.scores("w00", "cathode-nn", E1), "history")) == 3 * 3


def test_cathode_without_its_flow_is_a_clear_error(cathode_files, tmp_path):
    layout = linked(cathode_files[0], tmp_path, flow=False)
    with pytest.raises(ValueError, match=r"method cathode-nn needs model sideband_flow's output for w00 injection 300 "
                                         r"seed 1 \(rule sideband_flow\): .*flows/w00/inj300_seed1.h5 does not exist"):
        _train(layout)
    assert not layout.scores("w00", "cathode-nn", E1).exists() and not layout.fold_dir("w00", "cathode-nn", E1).exists()


def test_unknown_flow_setting_names_the_section(cathode_files):
    with pytest.raises(ValueError, match=r"flow: unknown key\(s\) \['blocks'\]"):
        settings(flow={**CONFIG["flow"], "blocks": 3})


def test_tree_folds_train_one_after_another_and_a_failed_one_is_named(cathode_files, tmp_path, monkeypatch):
    layout = linked(cathode_files[0], tmp_path, flow=False)
    monkeypatch.setenv(FAULT_ENV, "*/inj300_seed1/fold1.h5")
    lines = []
    with pytest.raises(RuntimeError, match=r"1 of 3 folds of w00 idealized-bdt injection 300 seed 1 failed "
                                           r"\(seed 1 fold 1: RuntimeError: forced failure"):
        _train(layout, method="idealized-bdt", log=lines.append)
    assert layout.fold("w00", "idealized-bdt", E1, 0).exists() and layout.fold("w00", "idealized-bdt", E1, 2).exists()
    assert "Traceback" in layout.fold_log("w00", "idealized-bdt", E1, 1).read_text()
    fold2 = layout.fold_log("w00", "idealized-bdt", E1, 2).read_text()
    assert "as one batched model" not in fold2
    assert f"checkpoint: {layout.fold_checkpoint('w00', 'idealized-bdt', 300, 1, 2)}" in fold2
    assert "w00 idealized-bdt injection 300 seed 1 fold 2: " in fold2 and "2 members (bdt)" in fold2
    monkeypatch.delenv(FAULT_ENV)
    lines.clear()
    _train(layout, method="idealized-bdt", log=lines.append)
    assert [line.split(" (")[0] for line in lines] == \
        ["seed 1 fold 0: kept, finished earlier with the same data and settings", "seed 1 fold 1: training",
         "seed 1 fold 2: kept, finished earlier with the same data and settings"]


def test_the_seeds_of_a_window_share_one_model_and_each_fold_is_the_network_it_is_alone(cathode_files, tmp_path):
    """One job per (window, method, injection): every seed's folds in one batched model."""
    source = cathode_files[0]
    two = settings(seeds=[1, 2])
    make_injection(two, source.events(), E2, tmp_path / "inj2.h5")
    layout = linked(source, tmp_path / "both", flow=False)
    split_window(two, tmp_path / "inj2.h5", source.events(), "w00", layout.split("w00", E2))
    lines = []
    train(two, layout, "w00", "idealized-nn", 300, log=lines.append)
    assert [line.split(" (")[0] for line in lines] == [f"seed {s} fold {f}: training" for s in (1, 2) for f in range(3)]
    log = layout.fold_log("w00", "idealized-nn", E2, 0).read_text()
    assert ("6 folds as one batched model of 12 members (w00 idealized-nn injection 300: seed 1 folds 0, 1, 2; "
            "seed 2 folds 0, 1, 2)") in log
    # every fold of the model has the same header lines (the attempt line first: a log keeps every attempt)
    head = log.splitlines()[:3]
    assert head[0].startswith("=== attempt ") and head[2].startswith("checkpoint: ")
    assert layout.fold_log("w00", "idealized-nn", E1, 2).read_text().splitlines()[1:3] == head[1:3]
    for e in (E1, E2):
        merged = read_table(layout.scores("w00", "idealized-nn", e), "scores")
        assert sorted(merged["event_id"]) == sorted(read_table(layout.split("w00", e), "data")["event_id"])
    # seed 2 trained alone: the same networks, the same scores
    alone = Layout(tmp_path / "alone")
    alone.split("w00", E2).parent.mkdir(parents=True)
    alone.split("w00", E2).symlink_to(layout.split("w00", E2))
    train(two, alone, "w00", "idealized-nn", 300, seeds=[2], log=lambda s: None)
    assert "3 folds as one batched model of 6 members (w00 idealized-nn injection 300: seed 2 folds 0, 1, 2)" in \
        alone.fold_log("w00", "idealized-nn", E2, 0).read_text()
    for f in range(3):
        np.testing.assert_allclose(read_table(alone.fold("w00", "idealized-nn", E2, f), "scores")["score"],
                                   read_table(layout.fold("w00", "idealized-nn", E2, f), "scores")["score"], atol=1e-5)


def test_epoch_length_is_the_largest_fold_rounded_up_to_the_batch_grid():
    assert [grid_batches(b) for b in (1, 2, 57, 99)] == [1, 2, 57, 99]  # every count up to about 100
    grid = sorted({grid_batches(b) for b in range(600, 700)})
    assert all(0 < later - earlier <= 0.0101 * earlier + 1 for earlier, later in zip(grid, grid[1:]))
    assert len(grid) < 20 and all(grid_batches(b) >= b for b in range(1, 5000))
    nn = NNSettings.from_config({"batch_size": 128, "validation_fraction": 0.2})

    def epoch(*sizes):
        return nn_epoch_events(nn, [TrainingSet(np.zeros((n, 4)), np.zeros(n), np.ones(n)) for n in sizes])

    # largest training splits of 63,824 and 64,256 events (499 and 502 batches): both 503 batches on the grid,
    # so the two seeds share one model; 64,400 events (504 batches) rounds up to 508
    assert epoch(79_780, 79_000, 78_500) == epoch(78_000, 80_320) == 503 * 128
    assert epoch(80_500, 79_000) == 508 * 128


def test_the_cpu_cap_trains_the_folds_in_smaller_models_with_the_same_networks(cathode_files, tmp_path):
    """packing.cpu_members: on a CPU, at most that many members per batched model (whole folds)."""
    together = linked(cathode_files[0], tmp_path / "together", flow=False)
    _train(together, method="idealized-nn")
    capped = linked(cathode_files[0], tmp_path / "capped", flow=False)
    cpu = {**CONFIG["classifier"], "nn": {**CONFIG["classifier"]["nn"], "device": "cpu"}}  # the cap is the CPU's
    _train(capped, config=settings(packing={"cpu_members": 4}, classifier=cpu), method="idealized-nn")
    logs = [capped.fold_log("w00", "idealized-nn", E1, f).read_text() for f in range(3)]
    assert "2 folds as one batched model of 4 members" in logs[0] and "1 folds as one batched model of 2 members" \
        in logs[2]
    for f in range(3):
        np.testing.assert_allclose(read_table(capped.fold("w00", "idealized-nn", E1, f), "scores")["score"],
                                   read_table(together.fold("w00", "idealized-nn", E1, f), "scores")["score"],
                                   atol=1e-5)
