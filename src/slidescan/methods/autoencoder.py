"""Autoencoders (unsupervised): events that an autoencoder of the background reconstructs badly are anomalous.

An ensemble of MLP autoencoders learns to reproduce the features of the window's sideband events of the other
folds (background, apart from the resonance's tails), or, with ``sample:``, of an auxiliary sample's SR events (a
simulated background where the signal would be); an event's score is its reconstruction error, averaged over members
and standardised like the training inputs. ``vae`` is the variational autoencoder: its score is the VAE's loss (the
negative evidence lower bound at the latent mean). No template and no signal hypothesis (Heimel et al.,
arXiv:1808.08979; Farina et al., arXiv:1808.08992; the LHC Olympics' VAEs, arXiv:2101.08320): they find what is
rare, so at a fixed S/B they are expected well below the weakly supervised methods, and they do not improve as the
signal grows. They train on the classifier engine with its "reconstruction" and "vae" losses
(``backends.nn.engine.LOSSES``): every member, fold and seed of a job is one batched model, with its checkpoints,
resume and CUDA graphs, and member m of it is the network trained alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..backends.nn import NN_SCHEMA, NNSettings
from ..data import weights_of
from ..settings import section_schema
from . import ClassifierScores, FoldData, TrainingSet, register
from .engine_score import EngineScore

SAMPLE_KEY = """
  sample:
    type: [string, "null"]
    default: null
    description: >-
      train on this auxiliary sample's SR events of the window (data.samples, e.g. simulation: a simulated
      background where the signal would be) instead of the data's sidebands
"""


def _schema(what: str, hidden: list[int]) -> dict:
    return section_schema(f"description: {what} (the nn engine)"
                          + NN_SCHEMA % {"hidden": hidden, "hidden_what": "hidden layers, the bottleneck (the narrowest) "
                                         "among them", "members": 5, "epochs": 30, "batch_size": 256} + SAMPLE_KEY)


@dataclass(frozen=True)
class AESettings(NNSettings):
    """The autoencoders' network and training (the nn engine's keys, its own defaults) and what they learn from."""

    section = "ae"
    schema = _schema("an ensemble of MLP autoencoders of the background, score = reconstruction error", [32, 2, 32])

    sample: str | None


@dataclass(frozen=True)
class VAESettings(AESettings):
    """The variational autoencoders' network and training."""

    section = "vae"
    schema = _schema("an ensemble of variational autoencoders of the background, score = the VAE loss (negative "
                     "ELBO at the latent mean); the narrowest hidden layer is the latent space", [32, 2, 32])


class Autoencoder(EngineScore):
    name = "ae"
    description = "reconstruction error of an autoencoder ensemble of the sidebands (unsupervised)"
    settings_type = AESettings
    loss = "reconstruction"

    def samples_for(self, settings) -> tuple[str, ...]:
        return (settings.sample,) if settings.sample else ()

    def background(self, inputs, fold, settings):
        """The background events the autoencoders of ``fold`` learn from."""
        if settings.sample:
            events = inputs.samples[settings.sample]
            return inputs.sr(events[events["fold"] != fold]), f"data.samples.{settings.sample}'s SR events"
        return inputs.sidebands(inputs.training_events(fold)), "sideband events"

    def fold_data(self, inputs, fold, settings):
        events, what = self.background(inputs, fold, settings)
        if len(events) < 10:
            raise ValueError(f"{inputs.window.name} fold {fold}: {len(events)} {what} are too few to train an "
                             f"autoencoder ({self.name}) on")
        train = TrainingSet(events[inputs.features].to_numpy(), np.zeros(len(events)), weights_of(events, ones=True))
        return FoldData(train, inputs.data[inputs.data["fold"] == fold])

    def fit(self, fits, settings, checkpoint, log, epoch_key=None):
        from ..backends.nn.engine import TrainingGroup, train_groups

        groups = [TrainingGroup(f.data.train.x, f.data.train.y, f.data.train.weight, f.member_seeds, f.name)
                  for f in fits]
        models = train_groups(groups, settings, epoch_key, checkpoint=checkpoint, log=log, loss=self.loss)
        return [ClassifierScores(m, f.inputs.features, m.history) for m, f in zip(models, fits)]


class VariationalAutoencoder(Autoencoder):
    name = "vae"
    description = "loss of a variational autoencoder ensemble of the sidebands (unsupervised)"
    settings_type = VAESettings
    loss = "vae"


register(Autoencoder())
register(VariationalAutoencoder())
