"""The CATHODE density estimator: normalisation, conditional sampling, preprocessing, resume."""

import numpy as np
import pytest

from slidescan.density.flows import FlowSettings, Preprocessor, sample_sr_mjj, train_flow

SMALL = dict(transforms=3, hidden=[32, 32], epochs=12, batch_size=256, learning_rate=3e-3, n_best=3)


def conditional_gaussian(n, seed):
    """x1 ~ N(0.5 m, 0.10), x2 ~ N(1 - 0.2 m, 0.05), m uniform in [1, 2]."""
    g = np.random.default_rng(seed)
    m = g.uniform(1.0, 2.0, n)
    x = np.stack([g.normal(0.5 * m, 0.10), g.normal(1 - 0.2 * m, 0.05)], axis=1)
    return x, m


@pytest.fixture(scope="module")
def gaussian_flow():
    x, m = conditional_gaussian(20000, 1)
    return train_flow(x, m, FlowSettings.from_config(SMALL), seed=3, log=lambda s: None)


def test_log_density_integrates_to_one(gaussian_flow):
    # grid wide enough to hold the density at m = 1.5: x1 around 0.75, x2 around 0.7
    g1, g2 = np.linspace(0.2, 1.3, 221), np.linspace(0.4, 1.0, 241)
    xx, yy = np.meshgrid(g1, g2, indexing="ij")
    pts = np.stack([xx.ravel(), yy.ravel()], axis=1)
    density = np.exp(gaussian_flow.log_prob(pts, np.full(len(pts), 1.5)))
    integral = density.sum() * (g1[1] - g1[0]) * (g2[1] - g2[0])
    assert integral == pytest.approx(1.0, abs=0.03)


def test_samples_reproduce_the_conditional_gaussian(gaussian_flow):
    for m in (1.2, 1.5, 1.8):
        s = gaussian_flow.sample(np.full(20000, m), seed=5)
        assert s[:, 0].mean() == pytest.approx(0.5 * m, abs=0.01)
        assert s[:, 1].mean() == pytest.approx(1 - 0.2 * m, abs=0.006)
        assert s[:, 0].std() == pytest.approx(0.10, rel=0.1)
        assert s[:, 1].std() == pytest.approx(0.05, rel=0.1)
    # same seed, same samples; the mixture keeps the best epochs
    np.testing.assert_array_equal(gaussian_flow.sample(np.full(100, 1.5), 5), gaussian_flow.sample(np.full(100, 1.5), 5))
    assert len(gaussian_flow.best_epochs) == 3
    assert gaussian_flow.best_val_loss == min(gaussian_flow.history["val_loss"])


def test_preprocessing_never_produces_inf_or_nan():
    x = np.array([[0.0, 1.0], [1.0, 2.0], [0.5, 1.5]])
    pre = Preprocessor.fit(x, np.array([3.0, 3.5, 4.0]))
    # the training extremes, and values far outside the training range
    z = pre.forward(np.array([[0.0, 1.0], [1.0, 2.0], [-100.0, 1e6]]))
    assert np.all(np.isfinite(z))
    assert np.all(np.isfinite(pre.log_jacobian(np.array([[-100.0, 1e6]]))))
    np.testing.assert_allclose(pre.inverse(pre.forward(x)), x, atol=1e-9)
    # anything mapped back lies inside the widened training range
    back = pre.inverse(np.array([[1e3, -1e3]]))
    assert np.all(back >= pre.lo) and np.all(back <= pre.hi)


def heavy_tailed(n, seed):
    """Two tau_N^beta-like features (log-normal, down to 1e-7) and one that takes negative values, m in [1, 2]."""
    g = np.random.default_rng(seed)
    m = g.uniform(1.0, 2.0, n)
    t1 = np.exp(g.normal(-1.0 + 0.3 * m, 0.3, n))
    t9 = t1 ** 2 * np.exp(g.normal(-12.0, 1.0, n))
    return np.stack([t1, t9, g.normal(0.5 * m - 0.75, 0.2, n)], axis=1), m


def test_log_logit_preprocessing_is_invertible_and_its_jacobian_exact():
    x, m = heavy_tailed(5000, 1)
    pre = Preprocessor.fit(x, m, kind="log_logit")
    assert pre.kind == "log_logit" and pre.log.tolist() == [True, True, False]  # strictly positive features only
    z = pre.forward(x)
    assert np.all(np.isfinite(z))
    assert np.abs(z.mean(0)).max() < 1e-6 and np.allclose(z.std(0), 1, atol=1e-6)
    np.testing.assert_allclose(pre.inverse(z), x, rtol=1e-9, atol=1e-12)
    # log |dz/dx| against central differences of each feature (z_j depends on x_j alone)
    sample = x[:50]
    numeric = np.zeros(len(sample))
    for j in range(x.shape[1]):
        h = 1e-6 * np.abs(sample[:, j]) + 1e-12
        up, down = sample.copy(), sample.copy()
        up[:, j] += h
        down[:, j] -= h
        numeric += np.log((pre.forward(up)[:, j] - pre.forward(down)[:, j]) / (2 * h))
    np.testing.assert_allclose(pre.log_jacobian(sample), numeric, rtol=1e-6, atol=1e-5)
    # outside the training range (x <= 0 in a log feature included): finite, as the clamped logit is
    far = np.array([[0.0, -1.0, 1e6], [1e9, 1e-300, -1e6]])
    assert np.all(np.isfinite(pre.forward(far))) and np.all(np.isfinite(pre.log_jacobian(far)))
    back = pre.inverse(np.array([[1e3, -1e3, 0.0]]))
    assert back[0, 0] <= np.exp(pre.hi[0]) and back[0, 1] >= np.exp(pre.lo[1])


def test_default_preprocessing_is_unchanged():
    """logit: the map, Jacobian and identity every flow had before the setting existed."""
    from dataclasses import asdict

    from slidescan.settings import identity_values, tunables

    x, m = heavy_tailed(2000, 2)
    pre = Preprocessor.fit(x, m)
    assert pre.log is None and pre.kind == "logit"
    margin = 0.05 * (x.max(0) - x.min(0))
    lo, hi = x.min(0) - margin, x.max(0) + margin
    u = np.clip((x - lo) / (hi - lo), 1e-6, 1 - 1e-6)
    logit = np.log(u) - np.log1p(-u)
    np.testing.assert_allclose(pre.forward(x), (logit - logit.mean(0)) / (logit.std(0) + 1e-8), rtol=1e-12)
    np.testing.assert_allclose(pre.log_jacobian(x), (-np.log(u) - np.log1p(-u) - np.log(hi - lo)
                                                     - np.log(logit.std(0) + 1e-8)).sum(1), rtol=1e-12)
    settings = FlowSettings.from_config(SMALL)
    assert settings.preprocessing == "logit"
    # the default is left out of every identity (fingerprints, checkpoints, rule parameters): old scans are kept
    assert "preprocessing" not in identity_values(settings) and "preprocessing" not in tunables(settings)
    assert list(identity_values(settings)) == [k for k in asdict(settings) if k != "preprocessing"]
    assert identity_values(settings.replace(preprocessing="log_logit"))["preprocessing"] == "log_logit"
    with pytest.raises(ValueError, match="flow.preprocessing"):
        FlowSettings.from_config({"preprocessing": "rank"})


@pytest.fixture(scope="module")
def log_logit_flow():
    x, m = heavy_tailed(20000, 3)
    settings = FlowSettings.from_config(dict(SMALL, preprocessing="log_logit"))
    return train_flow(x, m, settings, seed=1, log=lambda s: None), x, m


def test_log_logit_flow_density_is_normalised_in_the_original_space(log_logit_flow):
    """log_prob includes the log's Jacobian: the flow's density of x integrates to one (importance sampling:
    the mean of p(x) / q(x) over x ~ q, q a wide log-normal proposal around the data)."""
    flow, x, m = log_logit_flow
    g = np.random.default_rng(4)
    n = 200_000
    logs = np.log(x[:, :2])
    mu, sd = logs.mean(0), 2.0 * logs.std(0)
    mu3, sd3 = x[:, 2].mean(), 2.0 * x[:, 2].std()
    y = g.normal(mu, sd, (n, 2))
    pts = np.column_stack([np.exp(y), g.normal(mu3, sd3, n)])
    log_q = (-0.5 * ((y - mu) / sd) ** 2 - np.log(sd * np.sqrt(2 * np.pi)) - y).sum(1) \
        - 0.5 * ((pts[:, 2] - mu3) / sd3) ** 2 - np.log(sd3 * np.sqrt(2 * np.pi))
    ratio = np.exp(flow.log_prob(pts, np.full(n, 1.5)) - log_q)
    assert ratio.mean() == pytest.approx(1.0, abs=4 * ratio.std() / np.sqrt(n) + 0.02)
    # and its samples follow the data: log-normal features, means in log space at m = 1.5
    s = flow.sample(np.full(20000, 1.5), seed=2)
    assert np.all(s[:, :2] > 0)
    assert np.log(s[:, 0]).mean() == pytest.approx(-1.0 + 0.45, abs=0.03)
    assert np.log(s[:, 1]).mean() == pytest.approx(2 * (-1.0 + 0.45) - 12.0, abs=0.1)


def test_log_logit_flow_saves_and_loads(log_logit_flow, tmp_path):
    from slidescan.density.flows import load_flow
    from slidescan.io import write_tables

    flow, x, m = log_logit_flow
    arrays, attrs = flow.arrays(), flow.attrs()
    assert arrays["pre_log"].tolist() == [1, 1, 0] and attrs["flow_preprocessing"] == "log_logit"
    write_tables(tmp_path / "flow.h5", {}, attrs=attrs, arrays=arrays)
    loaded = load_flow(tmp_path / "flow.h5", device="cpu")
    assert loaded.pre.kind == "log_logit"
    np.testing.assert_allclose(loaded.log_prob(x[:500], m[:500]), flow.log_prob(x[:500], m[:500]), rtol=1e-6)
    np.testing.assert_array_equal(loaded.sample(m[:200], 3), flow.sample(m[:200], 3))


def test_default_flow_arrays_are_unchanged(gaussian_flow):
    assert "pre_log" not in gaussian_flow.arrays() and "flow_preprocessing" not in gaussian_flow.attrs()


def test_resumed_training_equals_uninterrupted(tmp_path):
    x, m = conditional_gaussian(3000, 2)
    settings = dict(SMALL, epochs=4)
    full = train_flow(x, m, FlowSettings.from_config(settings), seed=1, log=lambda s: None)
    ckpt = tmp_path / "flow.ckpt"
    train_flow(x, m, FlowSettings.from_config(dict(**dict(settings, epochs=2))), seed=1, checkpoint=ckpt, log=lambda s: None)
    lines = []
    resumed = train_flow(x, m, FlowSettings.from_config(settings), seed=1, checkpoint=ckpt, log=lines.append)
    assert any("resumed flow from checkpoint" in line and "after epoch 2" in line for line in lines)
    assert sum("flow epoch" in line for line in lines) == 2
    np.testing.assert_allclose(resumed.history["val_loss"], full.history["val_loss"], rtol=1e-5)
    np.testing.assert_allclose(resumed.sample(np.full(50, 1.5), 1), full.sample(np.full(50, 1.5), 1), atol=1e-4)


class Killed(Exception):
    pass


def test_killed_cosine_training_resumes_exactly(tmp_path):
    x, m = conditional_gaussian(3000, 4)
    settings = FlowSettings.from_config(dict(**dict(SMALL, epochs=4, lr_schedule="cosine", learning_rate=0.01)))
    full = train_flow(x, m, settings, seed=2, log=lambda s: None)

    def killed_in_epoch_2(line):
        # the log line comes before the epoch's checkpoint: the kill loses epoch 2
        if line.startswith("flow epoch 2/"):
            raise Killed

    ckpt = tmp_path / "flow.ckpt"
    with pytest.raises(Killed):
        train_flow(x, m, settings, seed=2, checkpoint=ckpt, log=killed_in_epoch_2)
    lines = []
    resumed = train_flow(x, m, settings, seed=2, checkpoint=ckpt, log=lines.append)
    assert any("after epoch 1" in line for line in lines)
    assert sum(line.startswith("flow epoch") for line in lines) == 3
    np.testing.assert_allclose(resumed.history["val_loss"], full.history["val_loss"], rtol=1e-5)
    # the schedule resumed too: a restarted schedule would give other losses in epochs 3 and 4
    assert resumed.history["val_loss"][-1] == pytest.approx(full.history["val_loss"][-1], rel=1e-6)


def test_bad_settings_and_inputs_are_rejected():
    with pytest.raises(ValueError, match="flow: unknown setting"):
        FlowSettings.from_config({"layers": 3})
    with pytest.raises(ValueError, match="flow.n_best: 0 is less than the minimum of 1"):
        FlowSettings.from_config({"n_best": 0})
    with pytest.raises(ValueError, match=r"flow.lr_schedule: 'step' is not one of \['constant', 'cosine'\]"):
        FlowSettings.from_config({"lr_schedule": "step"})
    x, m = conditional_gaussian(1000, 3)
    x[5, 0] = np.nan
    with pytest.raises(ValueError, match="inf or NaN"):
        train_flow(x, m, FlowSettings.from_config(SMALL), seed=1)


def test_sr_mjj_samples_follow_the_data_and_stay_inside():
    mjj = np.random.default_rng(1).exponential(0.3, 20000) + 3.3
    mjj = mjj[mjj < 3.7]
    s = sample_sr_mjj(mjj, 40000, 3.3, 3.7, seed=2)
    assert len(s) == 40000 and s.min() >= 3.3 and s.max() < 3.7
    assert np.median(s) == pytest.approx(np.median(mjj), abs=0.01)


def test_a_deep_untrained_flow_starts_near_the_base_density():
    """The published 15-block flow must not start with exploding densities (it once did: NLL 1e27 for
    ordinary events, and training never recovered); at init each transform has scale 1."""
    import torch

    from slidescan.density.flows import build_flow

    z = torch.as_tensor(np.random.default_rng(0).normal(size=(20000, 4)), dtype=torch.float32)
    c = torch.as_tensor(np.random.default_rng(1).normal(size=(20000, 1)), dtype=torch.float32)
    for seed in range(5):
        torch.manual_seed(seed)
        flow = build_flow(4, FlowSettings.from_config(dict(transforms=15, hidden=[128])))
        with torch.no_grad():
            nll = -flow(c).log_prob(z).numpy()
        # a standard normal in 4 dimensions has a mean NLL of 5.68; random shifts move it, scales do not blow it up
        assert np.all(np.isfinite(nll)) and nll.max() < 100, (seed, nll.max())


def test_an_epoch_with_an_infinite_validation_density_is_left_out(monkeypatch):
    """A deep stack can push one tail event past float32 (seen on a GPU at lr 2e-3): that epoch is
    dropped from the mixture and the training goes on instead of failing the job."""
    import torch

    import slidescan.density.flows as flows

    build = flows.build_flow
    validations = []

    class PoisonedAtEpoch2(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, c):
            dist = self.inner(c)
            if self.training or torch.is_grad_enabled():
                return dist
            validations.append(1)
            if len(validations) != 2:
                return dist

            class Poisoned:
                def log_prob(self, z):
                    out = dist.log_prob(z).clone()
                    out[0] = -torch.inf
                    return out
            return Poisoned()

    monkeypatch.setattr(flows, "build_flow", lambda n, s, c=1: PoisonedAtEpoch2(build(n, s, c)))
    x, m = conditional_gaussian(3000, 5)
    lines = []
    trained = train_flow(x, m, FlowSettings.from_config(dict(**dict(SMALL, epochs=4))), seed=2, log=lines.append)
    assert "flow: epoch 2 not kept: 1 of 600 validation events have no finite density" in lines
    assert trained.history["val_loss"][1] == float("inf")
    assert 2 not in trained.best_epochs and len(trained.best_epochs) == 3
    assert np.isfinite(trained.best_val_loss)
