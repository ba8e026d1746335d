"""Autoencoders (unsupervised): events that an autoencoder of the background reconstructs badly are anomalous.

An ensemble of MLP autoencoders learns to reproduce the features of the window's sideband events of the other
folds (background, apart from the resonance's tails); an event's score is its reconstruction error, averaged over
members and standardised like the training inputs. No template and no signal hypothesis (Heimel et al.,
arXiv:1808.08979; Farina et al., arXiv:1808.08992): it finds what is rare, so at a fixed S/B it is expected well
below the weakly supervised methods, and it does not improve as the signal grows. It trains on the classifier
engine with the "reconstruction" loss (``backends.nn.engine.LOSSES``): every member, fold and seed of a job is one
batched model, with its checkpoints, resume and CUDA graphs, and member m of it is the network trained alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..backends.nn import NN_SCHEMA, NNSettings, nn_epoch_events
from ..data import weights_of
from ..settings import section_schema
from . import ClassifierScores, FoldData, Score, TrainingSet, register


@dataclass(frozen=True)
class AESettings(NNSettings):
    """The autoencoders' network and training (the nn engine's keys, its own defaults)."""

    section = "ae"
    schema = section_schema("description: an ensemble of MLP autoencoders of the sideband events, score = "
                            "reconstruction error (the nn engine)"
                            + NN_SCHEMA % {"hidden": [32, 2, 32], "hidden_what": "hidden layers, the bottleneck among "
                                           "them", "members": 5, "epochs": 30, "batch_size": 256})


class Autoencoder(Score):
    name = "ae"
    description = "reconstruction error of an autoencoder ensemble of the sidebands (unsupervised)"
    settings_type = AESettings
    batched = True
    weighted = True

    def members(self, settings) -> int:
        return settings.members

    def fold_data(self, inputs, fold, settings):
        sidebands = inputs.sidebands(inputs.training_events(fold))
        if len(sidebands) < 10:
            raise ValueError(f"{inputs.window.name} fold {fold}: {len(sidebands)} sideband events are too few to "
                             "train an autoencoder on")
        train = TrainingSet(sidebands[inputs.features].to_numpy(), np.zeros(len(sidebands)),
                            weights_of(sidebands, ones=True))
        return FoldData(train, inputs.data[inputs.data["fold"] == fold])

    def epoch_key(self, settings, folds):
        return nn_epoch_events(settings, [f.train for f in folds])

    def fit(self, fits, settings, checkpoint, log, epoch_key=None):
        from ..backends.nn.engine import TrainingGroup, train_groups

        groups = [TrainingGroup(f.data.train.x, f.data.train.y, f.data.train.weight, f.member_seeds, f.name)
                  for f in fits]
        models = train_groups(groups, settings, epoch_key, checkpoint=checkpoint, log=log, loss="reconstruction")
        return [ClassifierScores(m, f.inputs.features, m.history) for m, f in zip(models, fits)]


register(Autoencoder())
