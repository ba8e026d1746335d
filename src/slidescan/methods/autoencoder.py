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

from ..backends.nn import nn_epoch_events
from ..data import weights_of
from ..settings import Settings, section_schema
from . import ClassifierScores, FoldData, Score, TrainingSet, register


@dataclass(frozen=True)
class AESettings(Settings):
    section = "ae"
    schema = section_schema("""
description: an ensemble of MLP autoencoders of the sideband events, score = reconstruction error (nn engine)
properties:
  hidden: {type: array, items: {type: integer, minimum: 1}, default: [32, 2, 32], description: "hidden layers, the bottleneck among them"}
  members: {type: integer, minimum: 1, default: 5}
  epochs: {type: integer, minimum: 1, default: 30}
  batch_size: {type: integer, minimum: 1, default: 256}
  learning_rate: {type: number, exclusiveMinimum: 0, default: 0.001}
  validation_fraction: {type: number, exclusiveMinimum: 0, exclusiveMaximum: 1, default: 0.2}
  n_best: {type: integer, minimum: 0, default: 0, description: "average the n_best lowest-validation-loss epochs; 0 = last epoch"}
  precision: {enum: ["32", 32, "bf16-mixed"], default: "32"}
  cuda_graphs: {type: boolean, default: true}
  device: {type: string, default: auto}
  threads: {type: integer, minimum: 1, default: 1}
""")

    hidden: list[int]
    members: int
    epochs: int
    batch_size: int
    learning_rate: float
    validation_fraction: float
    n_best: int
    precision: str
    cuda_graphs: bool
    device: str
    threads: int

    def __post_init__(self):
        object.__setattr__(self, "precision", str(self.precision))  # YAML reads `precision: 32` as a number


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
