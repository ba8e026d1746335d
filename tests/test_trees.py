import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from slidescan.backends.bdt import BDTSettings, train_bdt_ensemble


def _toy(n=6000, seed=0):
    gen = np.random.default_rng(seed)
    x = gen.normal(size=(n, 4))
    y = (gen.random(n) < 0.2).astype(int)
    x[y == 1, 0] += 1.5
    return x, y


def test_tree_ensemble_learns_and_members_differ():
    x, y = _toy()
    model = train_bdt_ensemble(x, y, None, BDTSettings.from_config(dict(members=3, max_iter=50)), [1, 2, 3], log=lambda s: None)
    xt, yt = _toy(seed=1)
    assert roc_auc_score(yt, model.predict(xt)) > 0.8
    per = model.predict(xt, per_member=True)
    assert per.shape == (3, len(xt))
    assert np.abs(per[0] - per[1]).max() > 1e-3  # own train/validation split per member


def test_early_stopping_stops_before_max_iter():
    x, y = _toy(4000)
    model = train_bdt_ensemble(x, y, None, BDTSettings.from_config(dict(members=1, max_iter=500, n_iter_no_change=5)), [7],
                               log=lambda s: None)
    assert model.members[0].n_iter_ < 500


def test_checkpoint_keeps_finished_members(tmp_path):
    x, y = _toy(3000)
    ckpt = tmp_path / "fold.ckpt"
    settings = BDTSettings.from_config(dict(members=2, max_iter=30))
    full = train_bdt_ensemble(x, y, None, settings, [1, 2], checkpoint=ckpt, log=lambda s: None)
    messages = []
    again = train_bdt_ensemble(x, y, None, settings, [1, 2], checkpoint=ckpt, log=messages.append)
    assert any("with 2 of 2 members done" in m for m in messages)
    assert not any(m.startswith("member ") for m in messages)
    np.testing.assert_allclose(again.predict(x[:100]), full.predict(x[:100]))


def test_unknown_setting_is_named():
    with pytest.raises(ValueError, match="classifier.bdt: unknown setting.*depth"):
        BDTSettings.from_config({"depth": 3})
