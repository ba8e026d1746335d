"""Training on a GPU: the classifier engine and the flow really run on CUDA, and a step replayed
from a captured CUDA graph computes what the eager step computes.

These need an NVIDIA GPU; CI has none, so they skip there with that reason. They were run on an
H100 (docs/benchmarks.md, "Training on a GPU"), except the batched flows' test and the tests of several GPUs in
one job (and of one GPU named twice) and the autoencoders', added without a GPU at hand; those of two GPUs skip on a machine with one.
"""

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from slidescan.density.flows import FlowSettings, train_flow
from slidescan.io import read_table
from slidescan.backends.nn.engine import NNSettings, train_ensemble

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none on this machine)")


def separable(n=6000, seed=0):
    gen = np.random.default_rng(seed)
    y = (gen.random(n) < 0.5).astype(float)
    x = gen.normal(size=(n, 4))
    x[y == 1, 0] += 1.5
    return x, y


def nn_settings(**kw):
    return NNSettings.from_config(dict(**{"hidden": [32, 32], "members": 3, "epochs": 4, "batch_size": 256, "device": "cuda", **kw}))


def test_classifier_trains_on_cuda_and_graph_replay_matches_eager():
    x, y = separable()
    graphed = train_ensemble(x, y, None, nn_settings(cuda_graphs=True), [1, 2, 3], log=lambda _: None)
    eager = train_ensemble(x, y, None, nn_settings(cuda_graphs=False), [1, 2, 3], log=lambda _: None)
    assert graphed.snapshots[0][0][0].device.type == "cuda"
    p_graph, p_eager = graphed.predict(x), eager.predict(x)
    assert roc_auc_score(y, p_graph) > 0.8
    np.testing.assert_allclose(p_graph, p_eager, atol=1e-4)
    np.testing.assert_allclose(graphed.history["val_loss"], eager.history["val_loss"], atol=1e-5)


def test_batched_member_equals_member_trained_alone_on_cuda():
    x, y = separable(seed=1)
    batched = train_ensemble(x, y, None, nn_settings(), [5, 7, 9], log=lambda _: None)
    alone = train_ensemble(x, y, None, nn_settings(members=1), [7], log=lambda _: None)
    np.testing.assert_allclose(batched.predict(x, per_member=True)[1], alone.predict(x, per_member=True)[0],
                               atol=1e-4)


@pytest.mark.parametrize("loss", ["reconstruction", "vae"])
def test_autoencoders_train_graphed_like_eager_and_a_member_alone_on_cuda(loss):
    """The engine's autoencoder losses on a GPU: the VAE's latent noise is read from a buffer the graph captured,
    refilled in place every epoch, so the replayed steps are the eager ones; member 1 is the network alone."""
    from slidescan.backends.nn.engine import TrainingGroup, train_groups

    x, _ = separable(seed=2)
    group = TrainingGroup(x, np.zeros(len(x)), None, [5, 7, 9])
    settings = nn_settings(hidden=[16, 2, 16])
    graphed, = train_groups([group], settings, log=lambda _: None, loss=loss)
    eager, = train_groups([group], nn_settings(hidden=[16, 2, 16], cuda_graphs=False), log=lambda _: None, loss=loss)
    alone, = train_groups([TrainingGroup(x, np.zeros(len(x)), None, [7])], nn_settings(hidden=[16, 2, 16], members=1),
                          log=lambda _: None, loss=loss)
    np.testing.assert_allclose(graphed.predict(x), eager.predict(x), rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(graphed.predict(x, per_member=True)[1], alone.predict(x), rtol=1e-3, atol=1e-4)


def test_bf16_classifier_keeps_its_quality():
    x, y = separable(seed=2)
    fp32 = train_ensemble(x, y, None, nn_settings(), [1, 2, 3], log=lambda _: None)
    bf16 = train_ensemble(x, y, None, nn_settings(precision="bf16-mixed"), [1, 2, 3], log=lambda _: None)
    assert abs(roc_auc_score(y, bf16.predict(x)) - roc_auc_score(y, fp32.predict(x))) < 0.01


def test_flow_graph_replay_follows_the_cosine_schedule_like_eager():
    gen = np.random.default_rng(3)
    mjj = gen.uniform(2.7, 4.3, 5000)
    x = np.column_stack([gen.normal(mjj, 1.0), gen.exponential(1.0, 5000)])
    kw = {"transforms": 2, "hidden": [32], "epochs": 3, "batch_size": 512, "learning_rate": 3e-3,
          "lr_schedule": "cosine", "n_best": 1, "device": "cuda"}
    runs = {graphs: train_flow(x, mjj, FlowSettings.from_config(dict(**kw, cuda_graphs=graphs)), seed=4, log=lambda _: None)
            for graphs in (True, False)}
    # a rate frozen into the captured step would leave the graphed training on another path
    np.testing.assert_allclose(runs[True].history["val_loss"], runs[False].history["val_loss"], atol=1e-4)
    assert runs[True].history["val_loss"][-1] < runs[True].history["val_loss"][0]


def test_flow_samples_on_the_gpu_reproduce_the_density_and_the_seed():
    gen = np.random.default_rng(5)
    mjj = gen.uniform(1.0, 2.0, 20000)
    x = np.column_stack([gen.normal(0.5 * mjj, 0.1), gen.normal(1 - 0.2 * mjj, 0.05)])
    kw = {"transforms": 3, "hidden": [32, 32], "epochs": 8, "batch_size": 256, "learning_rate": 3e-3, "n_best": 3,
          "device": "cuda"}
    trained = train_flow(x, mjj, FlowSettings.from_config(kw), seed=3, log=lambda _: None)
    assert next(trained.flows[0].parameters()).device.type == "cuda"
    m = np.full(20000, 1.5)
    samples = trained.sample(m, seed=11)
    np.testing.assert_array_equal(samples, trained.sample(m, seed=11))
    np.testing.assert_allclose(samples.mean(0), [0.75, 0.70], atol=0.01)
    np.testing.assert_allclose(samples.std(0), [0.10, 0.05], rtol=0.1)
    assert np.isfinite(trained.log_prob(x[:100], mjj[:100])).all()


def test_batched_flows_on_the_gpu_equal_each_flow_alone_graphed_or_eager():
    from slidescan.density.batched import FlowTask, train_flows

    gen = np.random.default_rng(6)
    data = []
    for n in (4000, 2600, 5200):
        mjj = gen.uniform(2.7, 4.3, n)
        data.append((np.column_stack([gen.normal(mjj, 1.0), gen.exponential(1.0, n)]), mjj))
    kw = {"transforms": 3, "hidden": [32], "epochs": 3, "batch_size": 512, "learning_rate": 3e-3,
          "lr_schedule": "cosine", "n_best": 2, "device": "cuda"}
    for graphs in (True, False):
        settings = FlowSettings.from_config(dict(**kw, cuda_graphs=graphs))
        together = train_flows([FlowTask(x, m, 20 + i) for i, (x, m) in enumerate(data)], settings)
        for i, (x, m) in enumerate(data):
            alone = train_flow(x, m, settings, 20 + i, log=lambda _: None)
            np.testing.assert_allclose(together[i].history["val_loss"], alone.history["val_loss"], rtol=1e-4)


# --- several GPUs in one job (slidescan.devices): one batched model per GPU, all at once ---
# The stage-level checks reuse the data of tests/test_multigpu.py, which runs the same path on two CPU "devices".

from test_multigpu import SEEDS, UNITS, FEATURES, FLOW, linked, settings as scan_on, splits  # noqa: E402,F401

two_gpus = pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA GPUs")
GPU0, GPU1, ALL = "cuda:0", "cuda:1", "auto"


@two_gpus
def test_a_member_is_the_same_network_on_either_gpu():
    x, y = separable(seed=7)
    on = {d: train_ensemble(x, y, None, nn_settings(device=d), [5, 7, 9], log=lambda _: None) for d in (GPU0, GPU1)}
    assert on[GPU1].snapshots[0][0][0].device == torch.device(GPU1)
    np.testing.assert_allclose(on[GPU0].predict(x, per_member=True), on[GPU1].predict(x, per_member=True), atol=1e-5)


def _cwola(layout, scan, lines):
    from slidescan.stages.train import train

    train(scan, layout, "w00", "cwola-nn", 300, log=lines.append)
    return [read_table(layout.fold("w00", "cwola-nn", e, f), "scores")["score"].to_numpy() for e in SEEDS
            for f in range(3)]


def _models_on(lines: list[str]) -> list[str]:
    return [line.split(": ")[0].rsplit(" on ", 1)[1] for line in lines if line.startswith("model ")]


@two_gpus
def test_a_train_job_on_two_gpus_trains_a_model_on_each_and_equals_one_gpu(splits, tmp_path):
    one, lines = _cwola(linked(splits, tmp_path / "one"), scan_on(GPU0, "nn"), []), []
    both = _cwola(linked(splits, tmp_path / "both"), scan_on(ALL, "nn"), lines)
    assert sorted(_models_on(lines)) == [GPU0, GPU1]  # `auto` is every visible GPU
    for a, b in zip(both, one):
        np.testing.assert_allclose(a, b, atol=1e-4)


@two_gpus
def test_a_flow_job_on_two_gpus_gives_each_unit_its_one_gpu_flow_graphed(splits, tmp_path, monkeypatch):
    from slidescan.stages.models import fit_models

    monkeypatch.setattr("slidescan.plots.flow_closure", lambda *a, **k: None)
    one, both, lines = linked(splits, tmp_path / "one"), linked(splits, tmp_path / "both"), []
    fit_models(scan_on(GPU0, "flow"), one, "sideband_flow", UNITS, log=lambda s: None)
    fit_models(scan_on(ALL, "flow"), both, "sideband_flow", UNITS, log=lines.append)
    assert sorted(_models_on(lines)) == [GPU0, GPU1]
    for w, e in UNITS:
        a, b = (read_table(x.model(FLOW, w, e), "samples") for x in (both, one))
        np.testing.assert_allclose(a[FEATURES], b[FEATURES], atol=5e-3)


@two_gpus
def test_anode_folds_on_two_gpus_share_the_sideband_flow_and_equal_one_gpu(splits, tmp_path, monkeypatch):
    _anode_on(splits, tmp_path, monkeypatch, ALL, [GPU0, GPU1])


def test_two_models_at_once_on_one_gpu_equal_the_serial_job(splits, tmp_path, monkeypatch):
    """A GPU named twice takes two models at once (two threads, two streams, captures one at a time)."""
    _anode_on(splits, tmp_path, monkeypatch, f"{GPU0},{GPU0}", [GPU0, GPU0])
    one, lines = _cwola(linked(splits, tmp_path / "nn1"), scan_on(GPU0, "nn"), []), []
    for a, b in zip(_cwola(linked(splits, tmp_path / "nn2"), scan_on(f"{GPU0},{GPU0}", "nn"), lines), one):
        np.testing.assert_allclose(a, b, atol=1e-4)
    assert _models_on(lines) == [GPU0, GPU0]


def _anode_on(splits, tmp_path, monkeypatch, device, expected):
    from slidescan.settings import ScanSettings
    from slidescan.stages.models import fit_models
    from slidescan.stages.train import train
    from test_multigpu import CONFIG

    monkeypatch.setattr("slidescan.plots.flow_closure", lambda *a, **k: None)
    flows = linked(splits, tmp_path / "flows")
    fit_models(scan_on(GPU0, "flow"), flows, "sideband_flow", [("w00", SEEDS[0])], log=lambda s: None)
    anode = {"transforms": 2, "hidden": [16], "epochs": 2, "batch_size": 256, "learning_rate": 0.003, "n_best": 1}
    scores, lines = {}, []
    for name, dev in (("one", GPU0), ("many", device)):
        layout = linked(flows, tmp_path / name)
        scan = ScanSettings.from_config({**CONFIG, "methods": ["anode"], "anode": {**anode, "device": dev}})
        train(scan, layout, "w00", "anode", 300, seeds=[1], log=(lines.append if name == "many" else print))
        scores[name] = [read_table(layout.fold("w00", "anode", SEEDS[0], f), "scores")["score"].to_numpy()
                        for f in range(3)]
    assert sorted(_models_on(lines)) == sorted(expected)
    for a, b in zip(scores["many"], scores["one"]):
        np.testing.assert_allclose(a, b, atol=1e-3)
