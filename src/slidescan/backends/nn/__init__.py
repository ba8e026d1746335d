"""The ``nn`` backend: the vectorised MLP ensemble (``engine``), every fold of a job in one batched model.

A GPU is only busy with hundreds of members, so the folds of all seeds of a training job train as
one model (``engine.train_groups``). Members of one model take the same steps, so every fold of a
pseudo-experiment draws the same number of events per epoch (:func:`nn_epoch_events`), which is
part of its identity; a fold rerun alone thus takes the very steps it took with the others.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...settings import Settings, section_schema
from ..base import Backend


# the keys of every network section trained by the nn engine (the classifier's, the autoencoders'); each section
# declares its own defaults of the first five
NN_SCHEMA = """
properties:
  hidden: {type: array, items: {type: integer, minimum: 1}, default: %(hidden)s, description: "%(hidden_what)s"}
  members: {type: integer, minimum: 1, default: %(members)s}
  epochs: {type: integer, minimum: 1, default: %(epochs)s}
  batch_size: {type: integer, minimum: 1, default: %(batch_size)s}
  learning_rate: {type: number, exclusiveMinimum: 0, default: 0.001}
  validation_fraction: {type: number, exclusiveMinimum: 0, exclusiveMaximum: 1, default: 0.2}
  n_best: {type: integer, minimum: 0, default: 0, description: "average the n_best lowest-validation-loss epochs; 0 = last epoch"}
  precision: {enum: ["32", 32, "bf16-mixed"], default: "32", description: "bf16-mixed: bf16 autocast of the matmuls (about 2x on an H100 at batch 1024)"}
  cuda_graphs: {type: boolean, default: true, description: "on CUDA, replay each training step as one captured CUDA graph"}
  device: {type: string, default: auto, description: "auto (every visible GPU, else the CPU), cpu, cuda (every visible GPU), cuda:N, or a comma-separated list (cuda:0,cuda:2); a job with several devices trains one batched model per device at once (docs/cluster.md)"}
  threads: {type: integer, minimum: 1, default: 1}
"""


@dataclass(frozen=True)
class NNSettings(Settings):
    """Classifier training settings; defaults follow the CATHODE classifier (arXiv:2109.00546)."""

    section = "classifier.nn"
    schema = section_schema("description: vectorised MLP ensemble (PyTorch), the CATHODE classifier by default"
                            + NN_SCHEMA % {"hidden": [64, 64, 64], "hidden_what": "hidden layers", "members": 10,
                                           "epochs": 100, "batch_size": 128})

    hidden: list[int]
    members: int
    epochs: int
    batch_size: int
    learning_rate: float
    validation_fraction: float
    # average the predictions of each member's n_best epochs of lowest validation loss; 0: last epoch
    n_best: int
    # "32" or "bf16-mixed" (Lightning's names): bf16 autocast of the matmuls, losses in float32
    precision: str
    # on CUDA, replay each training step as one captured CUDA graph (slidescan.cudagraph)
    cuda_graphs: bool
    device: str
    threads: int

    def __post_init__(self):
        object.__setattr__(self, "precision", str(self.precision))  # YAML reads `precision: 32` as a number


def n_train_events(n: int, settings: NNSettings) -> int:
    """Events a member trains on out of ``n``; the rest is its validation split."""
    return n - max(1, int(round(settings.validation_fraction * n)))


# epochs are rounded up to this grid of batch counts, ceil(1.01**j): at most 1 % more steps
EPOCH_GRID = 1.01


def nn_epoch_events(settings: NNSettings, sets: list) -> int:
    """Events per epoch of every member of a pseudo-experiment's folds.

    The largest fold's training split, rounded up to whole batches and then to the next count of
    batches on the grid ``ceil(1.01**j)``. Fixed by the pseudo-experiment's data alone, not by which
    folds or seeds train together, so a fold rerun alone takes the very steps it took with the
    others; the grid gives the seeds of a window (a few hundred events apart) the same length, so
    they can share one batched model.
    """
    largest = max(n_train_events(len(ts.y), settings) for ts in sets)
    return grid_batches(-(-largest // settings.batch_size)) * settings.batch_size


def grid_batches(batches: int) -> int:
    """The smallest ``ceil(EPOCH_GRID**j)`` that is at least ``batches`` (every count up to about 100)."""
    j = max(0, int(np.log(batches) / np.log(EPOCH_GRID)) - 2)
    while int(np.ceil(EPOCH_GRID ** j)) < batches:
        j += 1
    return int(np.ceil(EPOCH_GRID ** j))


class NNBackend(Backend):
    name = "nn"
    description = "vectorised MLP ensemble (PyTorch)"
    settings_type = NNSettings
    batched = True

    def epoch_key(self, settings: NNSettings, sets: list) -> int:
        return nn_epoch_events(settings, sets)

    def fit(self, settings, groups, checkpoint, log, epoch_key=None):
        from .engine import TrainingGroup, train_groups

        return train_groups([TrainingGroup(ts.x, ts.y, ts.weight, seeds, name) for ts, seeds, name in groups],
                            settings, epoch_key, checkpoint=checkpoint, log=log)


from .. import register_backend  # noqa: E402

register_backend(NNBackend())
