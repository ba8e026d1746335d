"""QUAK (Park et al., arXiv:2011.03550): events placed in the space of the losses of a background model and of
signal-prior models, and selected there.

Per fold, one autoencoder ensemble learns the window's sideband events of the other folds (the background model)
and one learns each signal prior's events of the window (``priors``: auxiliary samples of kind signal,
``data.samples``, e.g. the synthetic W' -> X Y at other X and Y masses). An event's coordinates are its loss under
each model; the selection keeps events far from the background and near some signal prior: the score is
log L_background - min over priors of log L_prior. With priors near the true signal it approaches a supervised
search; with priors far from it, the background loss alone (an autoencoder) carries it. The losses are the nn
engine's "vae" (the paper's choice) or "reconstruction" (``loss``): every model's folds train as one batched model,
each model with a checkpoint of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..backends.nn import NN_SCHEMA, NNSettings, nn_epoch_events
from ..checkpoint import part
from ..data import weights_of
from ..seeds import derive_seed
from ..settings import section_schema
from . import FoldData, Fitted, TrainingSet, register
from .engine_score import EngineScore

EXTRA = """
  priors:
    type: array
    items: {type: string}
    minItems: 1
    uniqueItems: true
    default: [signal_prior]
    description: "the signal priors: names of data.samples of kind signal, one autoencoder each"
  loss: {enum: [vae, reconstruction], default: vae, description: "each model's loss: a VAE's, or an autoencoder's squared error"}
"""


@dataclass(frozen=True)
class QUAKSettings(NNSettings):
    """The background and signal-prior autoencoders (the nn engine's keys) and the priors."""

    section = "quak"
    schema = section_schema("description: QUAK, a selection in the loss space of a background autoencoder and of one "
                            "per signal prior (the nn engine)"
                            + NN_SCHEMA % {"hidden": [32, 2, 32], "hidden_what": "each autoencoder, its bottleneck the "
                                           "narrowest layer", "members": 5, "epochs": 30, "batch_size": 256} + EXTRA)

    priors: list[str]
    loss: str


@dataclass
class QUAKScores(Fitted):
    """A fold's background and prior models: score = log L_background - min over priors of log L_prior."""

    background: object
    priors: list
    features: list[str]
    history: dict

    def coordinates(self, events) -> np.ndarray:
        """Each event's losses (n, 1 + priors): the background model's, then each prior's."""
        x = events[self.features].to_numpy()
        return np.stack([m.predict(x) for m in (self.background, *self.priors)], axis=1)

    def predict(self, events) -> np.ndarray:
        logs = np.log(np.maximum(self.coordinates(events), 1e-12))
        return logs[:, 0] - logs[:, 1:].min(axis=1)


class QUAK(EngineScore):
    name = "quak"
    description = "QUAK: far from a background autoencoder, near a signal prior's (auxiliary signal samples)"
    settings_type = QUAKSettings

    def samples_for(self, settings) -> tuple[str, ...]:
        return tuple(settings.priors)

    def fold_data(self, inputs, fold, settings):
        sidebands = inputs.sidebands(inputs.training_events(fold))
        if len(sidebands) < 10:
            raise ValueError(f"{inputs.window.name} fold {fold}: {len(sidebands)} sideband events are too few to "
                             "train QUAK's background model on")
        for prior in settings.priors:
            events = inputs.samples[prior]
            if (events["fold"] != fold).sum() < 10:
                raise ValueError(f"{inputs.window.name} fold {fold}: data.samples.{prior} has "
                                 f"{int((events['fold'] != fold).sum())} events in the window's other folds, too few "
                                 "to train a signal prior on; give it more events (n_events) or a wider mass range")
        train = TrainingSet(sidebands[inputs.features].to_numpy(), np.zeros(len(sidebands)),
                            weights_of(sidebands, ones=True))
        return FoldData(train, inputs.data[inputs.data["fold"] == fold])

    @staticmethod
    def prior_epoch(settings, events) -> int:
        """A prior's events per epoch: set by the window's prior sample alone (its largest "other folds" part), so
        that a fold rerun alone takes the steps it took beside the others."""
        return nn_epoch_events(settings, [TrainingSet(None, np.zeros(int((events["fold"] != k).sum())), None)
                                          for k in np.unique(events["fold"])])

    def fit(self, fits, settings, checkpoint, log, epoch_key=None):
        from ..backends.nn.engine import TrainingGroup, train_groups

        groups = [TrainingGroup(f.data.train.x, f.data.train.y, f.data.train.weight, f.member_seeds, f.name)
                  for f in fits]
        log("quak: the background autoencoders (sideband events)")
        background = train_groups(groups, settings, epoch_key, checkpoint=part(checkpoint, "background"), log=log,
                                  loss=settings.loss)
        priors = []
        for prior in settings.priors:
            groups = []
            for f in fits:
                events = f.inputs.samples[prior]
                events = events[events["fold"] != f.fold]
                groups.append(TrainingGroup(events[f.inputs.features].to_numpy(), np.zeros(len(events)),
                                            weights_of(events, ones=True),
                                            [derive_seed(s, "quak prior", prior) for s in f.member_seeds], f.name))
            log(f"quak: the autoencoders of the signal prior {prior} (data.samples.{prior})")
            priors.append(train_groups(groups, settings, self.prior_epoch(settings, fits[0].inputs.samples[prior]),
                                       checkpoint=part(checkpoint, f"prior-{prior}"), log=log, loss=settings.loss))
        return [QUAKScores(b, [p[i] for p in priors], list(f.inputs.features), b.history)
                for i, (b, f) in enumerate(zip(background, fits))]


register(QUAK())
