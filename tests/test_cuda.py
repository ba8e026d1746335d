"""Training on a GPU: the classifier engine and the flow really run on CUDA, and a step replayed
from a captured CUDA graph computes what the eager step computes.

These need an NVIDIA GPU; CI has none, so they skip there with that reason. They were run on an
H100 (docs/benchmarks.md, "Training on a GPU"), except the batched flows' test, added without a GPU at hand.
"""

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from slidescan.density.flows import FlowSettings, train_flow
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
