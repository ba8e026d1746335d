"""The engine's loss as a choice: autoencoder ensembles trained vectorised like the classifiers (issue 30)."""

import numpy as np
import pytest

from slidescan.methods import configure


def _events(n=3000, seed=1):
    g = np.random.default_rng(seed)
    t = g.normal(0, 1, n)  # four features on a line, with a little noise: what a bottleneck of 2 holds
    return np.stack([t, 2 * t, -t, 0.5 * t], 1) + g.normal(0, 0.05, (n, 4))


def test_an_autoencoder_ensemble_trained_as_one_model_is_its_members_trained_alone_and_scores_outliers_high():
    from slidescan.backends.nn.engine import TrainingGroup, train_groups

    settings = configure("ae", {"ae": {"epochs": 12, "members": 3, "device": "cpu"}}).settings
    x = _events()
    quiet = lambda s: None  # noqa: E731
    group = TrainingGroup(x, np.zeros(len(x)), None, [11, 12, 13])
    together, = train_groups([group], settings, log=quiet, loss="reconstruction")
    alone, = train_groups([TrainingGroup(x, np.zeros(len(x)), None, [12])], settings, log=quiet,
                          loss="reconstruction")
    np.testing.assert_allclose(together.history["val_loss"][-1][1], alone.history["val_loss"][-1][0], rtol=1e-5)
    probe = np.concatenate([_events(200, seed=2), np.random.default_rng(3).normal(0, 2, (200, 4))])
    np.testing.assert_allclose(together.predict(probe, per_member=True)[1], alone.predict(probe), rtol=1e-4,
                               atol=1e-6)
    score = together.predict(probe)
    # events off the line reconstruct far worse than events on it
    assert np.median(score[200:]) > 10 * np.median(score[:200]), (np.median(score[200:]), np.median(score[:200]))
    # the loss went down: it learned to reconstruct
    val = np.array(together.history["val_loss"])
    assert (val[-1] < 0.5 * val[0]).all(), val[[0, -1]]
    with pytest.raises(ValueError, match="unknown loss 'hinge'"):
        train_groups([group], settings, log=quiet, loss="hinge")


def test_the_classifier_keeps_its_checkpoint_identity_and_a_reconstruction_has_another(tmp_path):
    from slidescan.backends.nn.engine import TrainingGroup, train_groups

    settings = configure("ae", {"ae": {"epochs": 1, "members": 1, "device": "cpu"}}).settings
    x = _events(500)
    y = (np.arange(len(x)) % 2).astype(float)
    messages = []
    train_groups([TrainingGroup(x, y, None, [5])], settings, checkpoint=tmp_path / "c.ckpt", log=messages.append)
    train_groups([TrainingGroup(x, y, None, [5])], settings, checkpoint=tmp_path / "c.ckpt", log=messages.append,
                 loss="reconstruction")
    # the reconstruction does not resume from the classifier's checkpoint of the same events and settings
    assert not any("resum" in m for m in messages), messages


def test_a_vae_ensemble_is_its_members_trained_alone_resumes_exactly_and_scores_outliers_high(tmp_path):
    """The VAE loss on the engine: each member draws its latent noise from its own generator, so member m of a
    batched model is the network trained alone, and a run extended from its checkpoint is the run trained
    straight through (the draws of an epoch depend on the member's seed and the epoch only)."""
    from slidescan.backends.nn.engine import TrainingGroup, train_groups

    quiet = lambda s: None  # noqa: E731
    x = _events()
    short = configure("vae", {"vae": {"epochs": 3, "members": 3, "device": "cpu"}}).settings
    full = configure("vae", {"vae": {"epochs": 6, "members": 3, "device": "cpu"}}).settings
    other = TrainingGroup(_events(2000, seed=9), np.zeros(2000), None, [21, 22, 23])
    group = TrainingGroup(x, np.zeros(len(x)), None, [11, 12, 13])
    straight, _ = train_groups([group, other], full, log=quiet, loss="vae")
    alone, = train_groups([TrainingGroup(x, np.zeros(len(x)), None, [12])], full, log=quiet, loss="vae")
    np.testing.assert_allclose(straight.history["val_loss"][-1][1], alone.history["val_loss"][-1][0], rtol=1e-5)
    probe = np.concatenate([_events(200, seed=2), np.random.default_rng(3).normal(0, 2, (200, 4))])
    np.testing.assert_allclose(straight.predict(probe, per_member=True)[1], alone.predict(probe), rtol=1e-4,
                               atol=1e-6)
    messages = []
    train_groups([group, other], short, checkpoint=tmp_path / "v.ckpt", log=messages.append, loss="vae")
    resumed, _ = train_groups([group, other], full, checkpoint=tmp_path / "v.ckpt", log=messages.append, loss="vae")
    assert any("resum" in m for m in messages), messages
    np.testing.assert_allclose(resumed.predict(probe), straight.predict(probe), rtol=1e-5, atol=1e-7)
    score = straight.predict(probe)
    assert np.median(score[200:]) > 5 * np.median(score[:200]), (np.median(score[200:]), np.median(score[:200]))
    val = np.array(straight.history["val_loss"])
    assert (val[-1] < 0.95 * val[0]).all(), val[[0, -1]]  # the ELBO has a floor (the KL term): a smaller fall
    # the VAE is not an autoencoder's checkpoint: a reconstruction of the same events does not resume from it
    messages.clear()
    train_groups([group, other], short, checkpoint=tmp_path / "v.ckpt", log=messages.append, loss="reconstruction")
    assert not any("resum" in m for m in messages), messages
