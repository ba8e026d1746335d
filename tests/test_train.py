import os
import re
import signal
import subprocess
import sys

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from slidescan.backends import balanced_weights
from slidescan.backends.nn.engine import NNSettings, train_ensemble


def _toy(n=6000, seed=0):
    gen = np.random.default_rng(seed)
    x = gen.normal(size=(n, 4))
    y = (gen.random(n) < 0.3).astype(float)
    x[y == 1, 0] += 1.5
    x[y == 1, 1] -= 1.0
    return x, y


def quiet(_):
    pass


def test_balanced_weights():
    y = np.array([1, 0, 0, 0])
    w = balanced_weights(y)
    assert w[y == 1].sum() == pytest.approx(w[y == 0].sum())
    assert w.mean() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="no events of class 1"):
        balanced_weights(np.zeros(5))


def test_ensemble_learns():
    x, y = _toy()
    model = train_ensemble(x, y, None, NNSettings.from_config(dict(members=3, epochs=5, batch_size=128, n_best=2)), [1, 2, 3], log=quiet)
    xt, yt = _toy(seed=1)
    assert roc_auc_score(yt, model.predict(xt)) > 0.9
    assert model.predict(xt, per_member=True).shape == (3, len(xt))


def test_batched_member_equals_member_trained_alone():
    x, y = _toy(3000)
    settings = NNSettings.from_config(dict(members=4, epochs=2, batch_size=64, n_best=0))
    batched = train_ensemble(x, y, None, settings, [11, 12, 13, 14], log=quiet)
    alone = train_ensemble(x, y, None, NNSettings.from_config(dict(members=1, epochs=2, batch_size=64, n_best=0)), [13], log=quiet)
    xt, _ = _toy(500, seed=5)
    p_batched = batched.predict(xt, per_member=True)[2]
    p_alone = alone.predict(xt, per_member=True)[0]
    np.testing.assert_allclose(p_batched, p_alone, atol=2e-4)
    # and a different member is a different network
    assert np.abs(batched.predict(xt, per_member=True)[0] - p_alone).max() > 1e-2


def test_each_member_keeps_its_own_best_epochs_in_a_batched_model():
    """Best-epoch selection is per member: batched or alone, a member averages the same epochs."""
    x, y = _toy(3000, seed=2)
    settings = dict(epochs=5, batch_size=64, n_best=2, learning_rate=0.01)
    batched = train_ensemble(x, y, None, NNSettings.from_config(dict(members=3, **settings)), [21, 22, 23], log=quiet)
    alone = train_ensemble(x, y, None, NNSettings.from_config(dict(members=1, **settings)), [22], log=quiet)
    xt, _ = _toy(500, seed=6)
    np.testing.assert_allclose(batched.predict(xt, per_member=True)[1], alone.predict(xt, per_member=True)[0],
                               atol=2e-4)
    val = np.array(batched.history["val_loss"])  # (epochs, members)
    picks = [set(np.argsort(val[:, m])[:2]) for m in range(3)]
    assert len({frozenset(p) for p in picks}) > 1, "test data should make members prefer different epochs"


def test_precision_setting_is_checked():
    assert NNSettings.from_config({"precision": 32}).precision == "32"
    assert NNSettings.from_config({"precision": "bf16-mixed"}).precision == "bf16-mixed"
    with pytest.raises(ValueError, match=r"classifier.nn.precision: 'fp8' is not one of \['32', 32, 'bf16-mixed'\]"):
        NNSettings.from_config({"precision": "fp8"})


def test_resume_from_checkpoint_equals_uninterrupted(tmp_path):
    x, y = _toy(3000)
    settings = NNSettings.from_config(dict(members=2, epochs=4, batch_size=128, n_best=2))
    full = train_ensemble(x, y, None, settings, [1, 2], log=quiet)
    ckpt = tmp_path / "fold.pt"
    part = NNSettings.from_config(dict(**{**settings.__dict__, "epochs": 2}))
    train_ensemble(x, y, None, part, [1, 2], checkpoint=ckpt, log=quiet)
    messages = []
    resumed = train_ensemble(x, y, None, settings, [1, 2], checkpoint=ckpt, log=messages.append)
    assert any("resumed from checkpoint" in m and "after epoch 2" in m for m in messages)
    assert sum(m.startswith("epoch ") for m in messages) == 2
    xt, _ = _toy(500, seed=9)
    np.testing.assert_allclose(resumed.predict(xt), full.predict(xt), atol=1e-6)
    # Lightning's checkpoint layout
    import torch
    state = torch.load(ckpt, weights_only=False)
    assert {"state_dict", "optimizer_states", "epoch", "global_step"} <= set(state)
    n_train = 3000 - round(0.2 * 3000)
    assert state["epoch"] == 4 and state["global_step"] == 4 * -(-n_train // 128)


def test_checkpoint_of_other_data_is_not_resumed(tmp_path):
    x, y = _toy(2000)
    ckpt = tmp_path / "fold.pt"
    settings = NNSettings.from_config(dict(members=1, epochs=1, batch_size=128, n_best=1))
    train_ensemble(x, y, None, settings, [1], checkpoint=ckpt, log=quiet)
    messages = []
    train_ensemble(x + 1, y, None, settings, [1], checkpoint=ckpt, log=messages.append)
    assert any("belongs to other data" in m for m in messages)


KILL_SCRIPT = """
import sys, numpy as np
from slidescan.backends.nn.engine import NNSettings, train_ensemble
gen = np.random.default_rng(0)
x = gen.normal(size=(20000, 4)); y = (gen.random(20000) < 0.5).astype(float); x[y == 1, 0] += 1
m = train_ensemble(x, y, None, NNSettings.from_config(dict(members=2, epochs=int(sys.argv[2]), batch_size=64, n_best=3)), [5, 6],
                   checkpoint=sys.argv[1] if sys.argv[1] != "-" else None, log=lambda s: print(s, flush=True))
np.save(sys.argv[3], m.predict(x[:2000]))
"""


def test_sigkill_mid_training_then_rerun_gives_same_scores(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(KILL_SCRIPT)
    ckpt = tmp_path / "ck.pt"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, str(script), str(ckpt), "6", str(tmp_path / "a.npy")],
                            stdout=subprocess.PIPE, text=True, env=env)
    epochs_before = 0
    for line in proc.stdout:
        if line.startswith("epoch "):
            epochs_before += 1
        if epochs_before == 2:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL and ckpt.exists()
    rerun = subprocess.run([sys.executable, str(script), str(ckpt), "6", str(tmp_path / "a.npy")],
                           capture_output=True, text=True, env=env, check=True)
    resumed_after = int(re.search(r"resumed from checkpoint .* after epoch (\d+)", rerun.stdout).group(1))
    redone = sum(line.startswith("epoch ") for line in rerun.stdout.splitlines())
    assert resumed_after >= 1 and redone == 6 - resumed_after
    subprocess.run([sys.executable, str(script), "-", "6", str(tmp_path / "b.npy")], env=env, check=True,
                   capture_output=True)
    np.testing.assert_allclose(np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy"), atol=1e-6)


def test_a_fold_trained_with_others_equals_the_fold_trained_alone():
    """The folds of a job share one batched model; each must be the network it would be alone."""
    from slidescan.backends.nn.engine import TrainingGroup, train_groups

    settings = NNSettings.from_config(dict(members=2, epochs=3, batch_size=64, n_best=2, learning_rate=0.01))
    sets = [_toy(n, seed=s) for n, s in ((2600, 1), (3000, 2), (2900, 3))]
    groups = [TrainingGroup(x, y, None, [10 * i + 1, 10 * i + 2], f"fold{i}") for i, (x, y) in enumerate(sets)]
    longest = 3000 - round(0.2 * 3000)
    together = train_groups(groups, settings, epoch_events=longest, log=quiet)
    alone = train_groups([groups[0]], settings, epoch_events=longest, log=quiet)[0]
    xt, _ = _toy(500, seed=7)
    np.testing.assert_allclose(together[0].predict(xt, per_member=True), alone.predict(xt, per_member=True), atol=2e-4)
    # same validation losses (the shorter validation split is padded with zero-weight events)
    np.testing.assert_allclose(together[0].history["val_loss"], alone.history["val_loss"], rtol=1e-5)
    assert np.array(together[1].history["val_loss"]).shape == (3, 2)
    # a group is standardised with its own training set
    np.testing.assert_allclose(together[2].mean, sets[2][0].astype(np.float32).mean(0), rtol=1e-6)
    # the default epoch is the largest group's training split; a shorter one is refused
    default = train_groups(groups, settings, log=quiet)
    np.testing.assert_allclose(default[0].predict(xt), together[0].predict(xt), atol=1e-6)
    with pytest.raises(ValueError, match=r"epoch_events=100 is shorter than the largest training split \(2400 events\)"):
        train_groups(groups, settings, epoch_events=100, log=quiet)


def test_a_shorter_training_set_fills_the_epoch_with_its_own_events():
    from slidescan.backends.nn.ensemble import member_permutations

    rows = member_permutations([1, 2], [5, 12], 12, torch_device("cpu"))
    assert rows.shape == (2, 12)
    assert sorted(rows[0, :5].tolist()) == list(range(5)) and sorted(rows[0, 5:10].tolist()) == list(range(5))
    assert rows[0, 10:].max() < 5 and len(set(rows[0, 10:].tolist())) == 2
    assert sorted(rows[1].tolist()) == list(range(12))
    # a row is the same whatever the other rows are
    assert member_permutations([2], [12], 12, torch_device("cpu"))[0].tolist() == rows[1].tolist()


def torch_device(name):
    import torch

    return torch.device(name)
