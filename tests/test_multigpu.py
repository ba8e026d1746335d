"""A job with several devices: its work split into batched models, one model per device at a time, all devices at
once; every member the network it is alone, with its own result, log and checkpoint.

There is no GPU here: the same threads run on two CPU "devices" (``device: "cpu,cpu"``), and the results must
equal the serial run's. ``tests/test_cuda.py`` checks two GPUs where a machine has two.
"""

import threading
import time

import numpy as np
import pytest

from slidescan.devices import (assign_devices, describe, device_names, resolve_device, run_on_devices,
                               split_models)
from slidescan.io import read_attrs, read_table
from slidescan.layout import Layout, PseudoExperiment
from slidescan.registry import MODELS
from slidescan.settings import ScanSettings
from slidescan.stages.data import make_injection, prepare_data, split_window
from slidescan.stages.models import fit_models
from slidescan.stages.train import train

FEATURES = ["mj1", "delta_mj", "tau21_j1", "tau21_j2"]


# --- the pure parts: which devices, which models, which model on which device ---

def test_device_names_expand_auto_and_cuda_to_every_visible_gpu():
    assert device_names("auto", cuda_count=0) == ["cpu"]
    assert device_names("auto", cuda_count=2) == ["cuda:0", "cuda:1"]
    assert device_names("cuda", cuda_count=3) == ["cuda:0", "cuda:1", "cuda:2"]
    assert device_names("cuda:1", cuda_count=4) == ["cuda:1"]
    assert device_names("cuda:0, cuda:2") == ["cuda:0", "cuda:2"]
    assert device_names(["cpu", "cpu"]) == device_names("cpu,cpu") == ["cpu", "cpu"]
    assert device_names("cuda", cuda_count=0) == ["cuda"]  # torch says why where the model trains, as before
    for bad, message in (("cpu,cuda:0", "of one type"), ("gpu0", "not a device"), (" , ", "no device named")):
        with pytest.raises(ValueError, match=message):
            device_names(bad, cuda_count=0)
    assert resolve_device("cpu,cpu").type == "cpu"  # one model of a job with a device list: its first device


def test_a_jobs_log_names_its_devices_and_the_gpus_slurm_gave_it(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    assert describe(["cuda:0", "cuda:1"]) == "cuda:0, cuda:1; CUDA_VISIBLE_DEVICES=2,3"
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert describe(["cpu", "cpu"]) == "cpu, cpu"


def test_one_device_keeps_the_models_of_before():
    """On one device, models of the cap in a row: a job resumed from its checkpoints meets the same models."""
    assert split_models([10], 4, 1) == [[4, 4, 2]]
    assert split_models([3, 5], 0, 1) == [[3], [5]]
    assert split_models([0, 2], 0, 1) == [[], [2]]


@pytest.mark.parametrize("devices", [2, 3, 4])
def test_several_devices_get_a_model_each_within_the_cap(devices):
    assert split_models([10], 0, 2) == [[5, 5]]
    assert split_models([10], 4, 2) == [[3, 3, 2, 2]]  # 4+2 | 4 would leave one device idle half the time
    assert split_models([5, 1], 0, 2) == [[3, 2], [1]]
    assert split_models([2], 0, 4) == [[1, 1]]  # no more models than units
    for groups in ([1], [7], [25], [12, 3], [4, 4, 4], [1, 1, 9]):
        for cap in (0, 1, 2, 5):
            split = split_models(groups, cap, devices)
            assert [sum(s) for s in split] == groups
            sizes = [n for s in split for n in s]
            assert all(n >= 1 for n in sizes) and (not cap or max(sizes) <= cap)
            assert len(sizes) >= min(sum(groups), devices)
            assert all(max(s) - min(s) <= 1 for s in split if s)


def test_models_go_longest_first_to_the_least_loaded_device():
    assert assign_devices([4, 3, 3, 2], 2) == [0, 1, 1, 0]
    assert assign_devices([1, 1, 1, 1, 1], 2) == [0, 1, 0, 1, 0]
    assert assign_devices([5], 3) == [0]
    gen = np.random.default_rng(0)
    for _ in range(50):
        costs = gen.integers(1, 100, gen.integers(1, 12)).tolist()
        n = int(gen.integers(1, 5))
        slots = assign_devices(costs, n)
        assert slots == assign_devices(costs, n)  # a rerun puts each model where it was
        load = np.bincount(slots, weights=costs, minlength=n)
        # longest-first is within a third of the best possible busiest device
        assert load.max() <= 4 / 3 * max(sum(costs) / n, max(costs)) + 1e-9


def test_each_device_runs_its_tasks_in_order_and_the_devices_at_once():
    both = threading.Barrier(2, timeout=10)  # only passes when both device threads run at the same time
    done = []

    def task(name):
        def run():
            if name.endswith("first"):
                both.wait()
            time.sleep(0.01)
            done.append(name)
        return run

    run_on_devices(["cpu", "cpu"], [[task("a first"), task("a second")], [task("b first"), task("b second")]])
    assert done.index("a first") < done.index("a second") and done.index("b first") < done.index("b second")

    def fails():
        raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):  # raised once the other device's work is done
        run_on_devices(["cpu", "cpu"], [[fails], [task("c")]])
    assert "c" in done


def test_a_flows_samples_do_not_depend_on_flows_built_in_another_thread():
    """Sampling seeds torch's global generator; building a flow draws from it (its random init). Both hold
    ``devices.GLOBAL_RNG``, so another device thread's flows never fall between the seed and the draws."""
    from slidescan.density.flow_settings import FlowSettings
    from slidescan.density.flows import build_flow, train_flow

    gen = np.random.default_rng(1)
    mjj = gen.uniform(1.0, 2.0, 600)
    x = np.stack([gen.normal(0.5 * mjj, 0.1), gen.normal(1 - 0.2 * mjj, 0.05)], axis=1)
    small = FlowSettings.from_config({"transforms": 2, "hidden": [8], "epochs": 1, "batch_size": 256, "n_best": 1,
                                      "device": "cpu"})
    flow = train_flow(x, mjj, small, 3, log=lambda s: None)
    at = np.resize(mjj, 5000)  # without the lock, about one draw in five of these differs
    expected = flow.sample(at, 5)
    stop = threading.Event()

    def build():
        while not stop.is_set():
            build_flow(2, small)

    builder = threading.Thread(target=build)
    builder.start()
    try:
        draws = [flow.sample(at, 5) for _ in range(60)]
    finally:
        stop.set()
        builder.join()
    for draw in draws:
        np.testing.assert_array_equal(draw, expected)


# --- a real job on two CPU "devices" equals the serial one ---

CONFIG = {
    "scan": "devices",
    "data": {"source": "synthetic", "seed": 8, "synthetic": {"n_background": 30000, "signal_pool": 1000,
                                                             "reference_background": 5000, "reference_signal": 500}},
    "injections": [0, 300], "seeds": [1, 2], "folds": {"k": 3}, "methods": ["cwola-nn"],
    "windows": {"first_sr_lo": 3.1, "last_sr_lo": 3.3, "sr_width": 0.4, "step": 0.2, "sb_width": 0.6},
    "flow": {"transforms": 2, "hidden": [16], "epochs": 2, "batch_size": 256, "learning_rate": 0.003, "n_best": 1,
             "max_train_events": 2500, "oversampling": 1, "device": "cpu"},
    "classifier": {"nn": {"hidden": [16], "members": 2, "epochs": 2, "batch_size": 256, "device": "cpu"}},
    "packing": {"models": "scan"},
}
SEEDS = [PseudoExperiment(300, 1), PseudoExperiment(300, 2)]
UNITS = [(w, PseudoExperiment(i, 1)) for w in ("w00", "w01") for i in (0, 300)]
FLOW = MODELS["sideband_flow"]


def settings(device: str, section: str, **changes) -> ScanSettings:
    config = {**CONFIG, **changes}
    if section == "flow":
        config["flow"] = {**config["flow"], "device": device}
    else:
        config["classifier"] = {"nn": {**config["classifier"]["nn"], "device": device}}
    return ScanSettings.from_config(config)


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    scan = ScanSettings.from_config(CONFIG)
    layout = Layout(tmp_path_factory.mktemp("splits"))
    prepare_data(scan, layout.events())
    for e in {*SEEDS, *(e for _, e in UNITS)}:
        make_injection(scan, layout.events(), e, layout.injected(e))
    for w, e in {*UNITS, *(("w00", e) for e in SEEDS)}:
        split_window(scan, layout.injected(e), layout.events(), w, layout.split(w, e))
    return layout


def linked(source: Layout, root) -> Layout:
    layout = Layout(root)
    for path in [source.events(), *source.root.glob("split/*/*.h5"), *source.root.glob("flows/*/*.h5")]:
        target = layout.root / path.relative_to(source.root)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(path)
    return layout


def _train(scan, layout, lines=None):
    train(scan, layout, "w00", "cwola-nn", 300, log=(lambda s: None) if lines is None else lines.append)


def _scores(layout, e, fold):
    return read_table(layout.fold("w00", "cwola-nn", e, fold), "scores")["score"].to_numpy()


def test_a_train_job_on_two_devices_trains_a_model_on_each_and_equals_the_serial_job(splits, tmp_path):
    serial, spread = linked(splits, tmp_path / "serial"), linked(splits, tmp_path / "spread")
    _train(settings("cpu", "nn"), serial)
    lines = []
    _train(settings("cpu,cpu", "nn"), spread, lines)
    assert f"6 folds as 2 batched models on 2 devices ({describe(['cpu', 'cpu'])})" in lines
    # 2 seeds x 3 folds: one model of 3 folds per device, both at once; the job's log says which went where
    assert [line.split(":")[0] for line in lines if line.startswith("model ")] == ["model 1 of 2 on cpu",
                                                                                  "model 2 of 2 on cpu"]
    assert "model 1 of 2 on cpu: 3 folds, 6 members (seed 1 folds 0, 1, 2)" in lines
    for e in SEEDS:
        for fold in range(3):
            np.testing.assert_allclose(_scores(spread, e, fold), _scores(serial, e, fold), atol=1e-5)
            assert read_attrs(spread.fold("w00", "cwola-nn", e, fold))["fingerprint"] == \
                read_attrs(serial.fold("w00", "cwola-nn", e, fold))["fingerprint"]
            log = spread.fold_log("w00", "cwola-nn", e, fold).read_text()
            assert "3 folds as one batched model of 6 members" in log and "device: cpu (one of the job's" in log
    assert len(list(spread.checkpoints("w00", "cwola-nn", 300).glob("batch-*.ckpt"))) == 2


def test_a_killed_job_on_two_devices_resumes_each_model_from_its_checkpoint(splits, tmp_path):
    """Two epochs, then (as after a kill) the same job asked for three: each model resumes from its checkpoint
    (a model's checkpoint leaves the number of epochs out) and ends where a serial three-epoch job ends."""
    spread, serial = linked(splits, tmp_path / "spread"), linked(splits, tmp_path / "serial")
    three = {"nn": {**CONFIG["classifier"]["nn"], "epochs": 3}}
    _train(settings("cpu,cpu", "nn"), spread)
    _train(settings("cpu,cpu", "nn", classifier=three), spread)
    _train(settings("cpu", "nn", classifier=three), serial)
    for e in SEEDS:
        for fold in range(3):
            attempt = spread.fold_log("w00", "cwola-nn", e, fold).read_text().rsplit("=== attempt ", 1)[1]
            assert "after epoch 2" in attempt and attempt.count("epoch 3/3") == 1 and "epoch 2/3" not in attempt
            np.testing.assert_allclose(_scores(spread, e, fold), _scores(serial, e, fold), atol=1e-5)


def test_a_model_job_on_two_devices_gives_each_unit_its_serial_flow(splits, tmp_path, monkeypatch):
    monkeypatch.setattr("slidescan.plots.flow_closure", lambda *a, **k: None)  # 3/4 of the time; drawn after training
    serial, spread = linked(splits, tmp_path / "serial"), linked(splits, tmp_path / "spread")
    fit_models(settings("cpu", "flow"), serial, "sideband_flow", UNITS, log=lambda s: None)
    lines = []
    fit_models(settings("cpu,cpu", "flow"), spread, "sideband_flow", UNITS, log=lines.append)
    assert lines[0] == ("4 sideband_flow units as 2 batched models of at most 2 members on 2 devices "
                        f"({describe(['cpu', 'cpu'])})")
    assert lines[1:] == ["model 1 of 2 on cpu: 2 units (w00 injection 0 seed 1, w00 injection 300 seed 1)",
                         "model 2 of 2 on cpu: 2 units (w01 injection 0 seed 1, w01 injection 300 seed 1)"]
    for w, e in UNITS:
        a, b = (read_table(x.model(FLOW, w, e), "samples") for x in (spread, serial))
        np.testing.assert_allclose(a[FEATURES], b[FEATURES], atol=5e-3)
        np.testing.assert_array_equal(a["mjj"], b["mjj"])
        fingerprints = {read_attrs(x.model(FLOW, w, e))["fingerprint"] for x in (spread, serial)}
        assert len(fingerprints) == 1
        log = spread.model_log(FLOW, w, e).read_text()
        assert "trained on cpu, in model" in log and log.count("flow epoch ") == 2
        assert spread.model_checkpoint(FLOW, w, e).exists()


def test_anode_folds_on_two_devices_are_the_flows_of_the_serial_job(splits, tmp_path, monkeypatch):
    """ANODE's SR flows through the same path: a model of two folds on one device and one fold alone on the other
    (``train_flow``), each seeded under the global-generator lock, and the sideband flow shared by both threads."""
    monkeypatch.setattr("slidescan.plots.flow_closure", lambda *a, **k: None)
    flows = linked(splits, tmp_path / "flows")
    fit_models(settings("cpu", "flow"), flows, "sideband_flow", [("w00", SEEDS[0])], log=lambda s: None)
    anode = {"transforms": 2, "hidden": [16], "epochs": 2, "batch_size": 256, "learning_rate": 0.003, "n_best": 1}
    scores, lines = {}, []
    for device in ("cpu", "cpu,cpu"):
        layout = linked(flows, tmp_path / device)
        scan = ScanSettings.from_config({**CONFIG, "methods": ["anode"], "anode": {**anode, "device": device}})
        train(scan, layout, "w00", "anode", 300, seeds=[1], log=lines.append)
        scores[device] = [read_table(layout.fold("w00", "anode", SEEDS[0], f), "scores")["score"].to_numpy()
                          for f in range(3)]
    assert [line.split(":")[0] for line in lines if line.startswith("model ")] == ["model 1 of 2 on cpu",
                                                                                  "model 2 of 2 on cpu"]
    for spread, serial in zip(scores["cpu,cpu"], scores["cpu"]):
        np.testing.assert_allclose(spread, serial, atol=1e-3)
