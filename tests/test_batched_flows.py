"""Many flows as one batched model: each member is the flow trained alone, and shares checkpoints with it."""

import numpy as np
import pytest

from slidescan import joblog
from slidescan.density.batched import FlowTask, train_flows
from slidescan.density.flow_settings import FlowSettings
from slidescan.density.flows import train_flow

SMALL = {"transforms": 3, "hidden": [32], "epochs": 4, "batch_size": 256, "learning_rate": 0.003, "n_best": 2}


def sample(n, seed, shift=0.0):
    g = np.random.default_rng(seed)
    m = g.uniform(1.0, 2.0, n)
    x = np.stack([g.normal(0.5 * m + shift, 0.1), g.normal(1 - 0.2 * m, 0.05), g.exponential(0.3, n)], axis=1)
    return x, m


@pytest.mark.parametrize("schedule, preprocessing", [("constant", "logit"), ("cosine", "logit"),
                                                      ("constant", "log_logit")])
def test_each_member_is_the_flow_trained_alone(schedule, preprocessing):
    settings = FlowSettings.from_config({**SMALL, "lr_schedule": schedule, "preprocessing": preprocessing})
    # members of different sizes: they take different numbers of steps per epoch
    data = [sample(n, s, shift) for n, s, shift in ((3000, 1, 0.0), (1900, 2, 0.3), (4100, 3, -0.2))]
    lines = [[] for _ in data]
    together = train_flows([FlowTask(x, m, 10 + i, log=lines[i].append) for i, (x, m) in enumerate(data)], settings)
    for i, (x, m) in enumerate(data):
        alone = train_flow(x, m, settings, 10 + i, log=lambda s: None)
        np.testing.assert_allclose(together[i].history["val_loss"], alone.history["val_loss"], rtol=2e-5)
        np.testing.assert_allclose(together[i].history["train_loss"], alone.history["train_loss"], rtol=2e-5)
        assert together[i].best_epochs == alone.best_epochs and together[i].fingerprint == alone.fingerprint
        assert together[i].pre.kind == alone.pre.kind == preprocessing
        probe = x[:500]
        np.testing.assert_allclose(together[i].log_prob(probe, m[:500]), alone.log_prob(probe, m[:500]), atol=2e-3)
        np.testing.assert_allclose(together[i].sample(m[:200], 5), alone.sample(m[:200], 5), atol=2e-3)
    assert sum(line.startswith("flow epoch ") for line in lines[1]) == 4


def test_a_member_resumes_from_its_own_checkpoint_alone_or_batched(tmp_path):
    settings = FlowSettings.from_config(SMALL)
    short = FlowSettings.from_config({**SMALL, "epochs": 2})
    data = [sample(2500, 4), sample(2000, 5, 0.2)]
    paths = [tmp_path / f"m{i}.ckpt" for i in range(2)]
    full = train_flows([FlowTask(x, m, 7 + i) for i, (x, m) in enumerate(data)], settings)
    # two epochs batched, killed; then member 0 resumes alone and member 1 in a batch of its own
    train_flows([FlowTask(x, m, 7 + i, paths[i], log=lambda s: None) for i, (x, m) in enumerate(data)], short)
    lines = []
    alone = train_flow(*data[0], settings, 7, checkpoint=paths[0], log=lines.append)
    assert f"resumed flow from checkpoint {paths[0]} after epoch 2" in lines
    np.testing.assert_allclose(alone.history["val_loss"], full[0].history["val_loss"], rtol=2e-5)
    lines.clear()
    again = train_flows([FlowTask(*data[1], 8, paths[1], log=lines.append)], settings)[0]
    assert f"resumed flow from checkpoint {paths[1]} after epoch 2" in lines
    np.testing.assert_allclose(again.history["val_loss"], full[1].history["val_loss"], rtol=2e-5)
    # a flow trained alone is resumed by the batched engine too
    single = tmp_path / "single.ckpt"
    train_flow(*data[0], short, 7, checkpoint=single, log=lambda s: None)
    lines.clear()
    resumed = train_flows([FlowTask(*data[0], 7, single, log=lines.append), FlowTask(*data[1], 8)], settings)
    assert f"resumed flow from checkpoint {single} after epoch 2" in lines
    np.testing.assert_allclose(resumed[0].history["val_loss"], full[0].history["val_loss"], rtol=2e-5)
    np.testing.assert_allclose(resumed[1].history["val_loss"], full[1].history["val_loss"], rtol=2e-5)


# --- through the model stage: a job that serves many units ---

from slidescan.io import read_table  # noqa: E402
from slidescan.layout import Layout, PseudoExperiment  # noqa: E402
from slidescan.registry import MODELS  # noqa: E402
from slidescan.settings import ScanSettings  # noqa: E402
from slidescan.stages import FAULT_ENV  # noqa: E402
from slidescan.stages.data import make_injection, prepare_data, split_window  # noqa: E402
from slidescan.stages.models import fit_model, fit_models  # noqa: E402

CONFIG = {
    "scan": "packed",
    "data": {"source": "synthetic", "seed": 6, "synthetic": {"n_background": 30000, "signal_pool": 1000,
                                                             "reference_background": 20000, "reference_signal": 1000}},
    "injections": [0, 300], "seeds": [1], "folds": {"k": 2}, "methods": ["cathode-nn"],
    "windows": {"first_sr_lo": 3.1, "last_sr_lo": 3.3, "sr_width": 0.4, "step": 0.2, "sb_width": 0.6},
    "flow": {**SMALL, "epochs": 3, "max_train_events": 4000}, "packing": {"models": "scan"},
}
UNITS = [(w, PseudoExperiment(i, 1)) for w in ("w00", "w01") for i in (0, 300)]
FLOW = MODELS["sideband_flow"]


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    settings = ScanSettings.from_config(CONFIG)
    root = tmp_path_factory.mktemp("splits")
    layout = Layout(root)
    prepare_data(settings, layout.events())
    for e in {e for _, e in UNITS}:
        make_injection(settings, layout.events(), e, layout.injected(e))
    for w, e in UNITS:
        split_window(settings, layout.injected(e), layout.events(), w, layout.split(w, e))
    return settings, layout


def linked(source: Layout, root) -> Layout:
    layout = Layout(root)
    for path in [source.events()] + [source.split(w, e) for w, e in UNITS]:
        target = layout.root / path.relative_to(source.root)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(path)
    return layout


def test_a_job_of_many_units_gives_each_unit_the_flow_it_gets_alone(splits, tmp_path):
    settings, source = splits
    packed, alone = linked(source, tmp_path / "packed"), linked(source, tmp_path / "alone")
    lines = []
    fit_models(settings, packed, "sideband_flow", UNITS, log=lines.append)
    assert lines == ["4 sideband_flow units as batched models of at most 4 members"]
    for w, e in UNITS:
        fit_model(settings, alone, "sideband_flow", w, e, log=lambda s: None)
        a, b = (read_table(x.model(FLOW, w, e), "samples") for x in (packed, alone))
        np.testing.assert_allclose(a[["mj1", "delta_mj", "tau21_j1", "tau21_j2"]], b[["mj1", "delta_mj", "tau21_j1",
                                                                                    "tau21_j2"]], atol=5e-3)
        np.testing.assert_array_equal(a["mjj"], b["mjj"])
        log = packed.model_log(FLOW, w, e).read_text()
        assert log.startswith("=== attempt ") and f"{w} injection {e.injection} seed 1: flow on" in log
        assert log.count("flow epoch ") == 3
    # each unit's epoch lines time the batch of 4: the jobs table gives each unit a quarter of them
    from slidescan.report.status import jobs_table

    for layout, sharing in ((packed, 4), (alone, 1)):
        models = jobs_table(settings, layout, layout.root).query("job == 'model'")
        assert len(models) == len(UNITS) and models["shared_by"].tolist() == [sharing] * len(UNITS)
        for row in models.itertuples():
            seconds = joblog.epoch_seconds(joblog.read(layout.root / row.log))
            assert len(seconds) == 3 and row.train_seconds == pytest.approx(sum(seconds) / sharing, abs=0.01)


def test_a_failed_unit_leaves_the_others_written_and_their_rerun_trains_nothing(splits, tmp_path, monkeypatch):
    settings, source = splits
    layout = linked(source, tmp_path)
    monkeypatch.setenv(FAULT_ENV, "*/flows/w01/inj300_seed1.h5")
    lines = []
    with pytest.raises(RuntimeError, match=r"1 of 4 sideband_flow units failed \(w01 injection 300 seed 1: "
                                           r"RuntimeError: forced failure"):
        fit_models(settings, layout, "sideband_flow", UNITS, log=lines.append)
    assert "3 sideband_flow units as batched models of at most 3 members" in lines
    assert [layout.model(FLOW, w, e).exists() for w, e in UNITS] == [True, True, True, False]
    assert "Traceback" in layout.model_log(FLOW, "w01", PseudoExperiment(300, 1)).read_text()
    monkeypatch.delenv(FAULT_ENV)
    fit_models(settings, layout, "sideband_flow", UNITS, log=lambda s: None)
    for w, e in UNITS[:3]:  # their second attempt resumed at their last epoch: no epoch trained again
        attempt = layout.model_log(FLOW, w, e).read_text().rsplit("=== attempt ", 1)[1]
        assert "resumed flow from checkpoint" in attempt and "after epoch 3" in attempt and "flow epoch" not in attempt
    assert layout.model(FLOW, "w01", PseudoExperiment(300, 1)).exists()


def test_the_cpu_cap_splits_the_units_into_smaller_models(splits, tmp_path):
    settings = ScanSettings.from_config({**CONFIG, "packing": {"models": "scan", "cpu_members": 3}})
    lines = []
    fit_models(settings, linked(splits[1], tmp_path), "sideband_flow", UNITS, log=lines.append)
    assert lines == ["4 sideband_flow units as batched models of at most 3 members"]
