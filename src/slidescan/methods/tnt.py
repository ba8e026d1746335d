"""Tag N' Train (Amram & Mantilla Suarez, arXiv:2002.12376): one jet's autoencoder tags the samples that train a
classifier of the other jet.

Per fold, an autoencoder of each jet learns the window's sideband events of the other folds (jet 1's features, jet
2's: the scan's feature groups, ``features.resolve_groups``). In the SR events of the other folds, the events whose
jet 1 reconstructs worst (the top ``tag_fraction``) are the signal-rich sample and the rest the background-rich
one; a classifier of jet 2's features learns to tell them apart (classification without labels on two mixtures),
and likewise a classifier of jet 1 on the samples that jet 2's autoencoder tags. An event's score is the sum of
the two classifiers' log-odds: both jets must look like the signal. Where signal is rare, the tag enriches it far
more than the SR does alone, so the classifiers beat an autoencoder's score (the paper's claim).

Both stages train on the nn engine (the autoencoders with its "reconstruction" loss), every fold of a job as one
batched model, each stage with a checkpoint of its own; all stages of a fold draw the events per epoch that the
fold's whole training sample sets (``epoch_key``), so a fold rerun alone takes the steps it took beside the others.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..backends.nn import NN_SCHEMA, NNSettings
from ..checkpoint import part
from ..data import weights_of
from ..seeds import derive_seed
from ..settings import section_schema
from ..windows import REGION_SR
from . import FoldData, Fitted, TrainingSet, register
from .engine_score import EngineScore

EXTRA = """
  tag_fraction:
    type: number
    exclusiveMinimum: 0
    exclusiveMaximum: 1
    default: 0.2
    description: "the fraction of SR events whose other jet reconstructs worst: the signal-rich sample"
  autoencoder_hidden:
    type: array
    items: {type: integer, minimum: 1}
    default: [16, 1, 16]
    description: "each jet's autoencoder, its bottleneck the narrowest layer"
  autoencoder_epochs: {type: integer, minimum: 1, default: 20}
"""


@dataclass(frozen=True)
class TNTSettings(NNSettings):
    """The per-jet classifiers (the nn engine's keys) and the per-jet autoencoders that tag their samples."""

    section = "tnt"
    schema = section_schema("description: Tag N' Train, per-jet autoencoders tagging the samples of per-jet "
                            "classifiers (the nn engine)"
                            + NN_SCHEMA % {"hidden": [64, 64, 64], "hidden_what": "each jet's classifier", "members": 5,
                                           "epochs": 20, "batch_size": 256} + EXTRA)

    tag_fraction: float
    autoencoder_hidden: list[int]
    autoencoder_epochs: int


JETS = ("jet1", "jet2")


def jet_columns(inputs) -> dict[str, list[int]]:
    """The positions, in the scan's features, of each jet's columns; a jet without any stops the method."""
    groups = inputs.feature_groups or {}
    out = {}
    for jet in JETS:
        columns = groups.get(jet, ())
        if not columns:
            raise ValueError(f"tnt: the scan's features {list(inputs.features)} have no column of {jet} (feature "
                             f"groups {dict(groups)}); Tag N' Train needs each jet's features, e.g. features: "
                             "[mj1, tau21_j1, mj2, tau21_j2], with data.synthetic.substructure: true for a synthetic mj2 "
                             "(docs/features.md, \"Which jet a feature describes\")")
        out[jet] = [inputs.features.index(c) for c in columns]
    return out


@dataclass
class TNTScores(Fitted):
    """The two per-jet classifiers of a fold: an event's score is the sum of their log-odds."""

    classifiers: dict  # jet -> TrainedEnsemble of that jet's features
    columns: dict  # jet -> its feature names
    history: dict

    def predict(self, events) -> np.ndarray:
        total = 0.0
        for jet, model in self.classifiers.items():
            p = np.clip(model.predict(events[self.columns[jet]].to_numpy()), 1e-7, 1 - 1e-7)
            total = total + np.log(p) - np.log1p(-p)
        return total


class TagNTrain(EngineScore):
    name = "tnt"
    description = "Tag N' Train: each jet's classifier trained on the samples the other jet's autoencoder tags"
    settings_type = TNTSettings

    def fold_data(self, inputs, fold, settings):
        jet_columns(inputs)
        train = inputs.training_events(fold)
        sr = (train["region"] == REGION_SR).to_numpy()
        if sr.sum() < 20 or (~sr).sum() < 20:
            raise ValueError(f"{inputs.window.name} fold {fold}: {sr.sum()} SR and {(~sr).sum()} sideband events are "
                             "too few for Tag N' Train")
        # y: 1 for the SR events (the classifiers' sample), 0 for the sidebands (the autoencoders')
        return FoldData(TrainingSet(train[inputs.features].to_numpy(), sr.astype(float), weights_of(train, ones=True)),
                        inputs.data[inputs.data["fold"] == fold])

    def fit(self, fits, settings, checkpoint, log, epoch_key=None):
        from ..backends.nn.engine import TrainingGroup, train_groups

        columns = [jet_columns(f.inputs) for f in fits]
        autoencoder = dataclasses.replace(settings, hidden=list(settings.autoencoder_hidden),
                                          epochs=settings.autoencoder_epochs)
        tagged = {}
        for jet in JETS:
            groups = []
            for f, cols in zip(fits, columns):
                train, sb = f.data.train, f.data.train.y == 0
                groups.append(TrainingGroup(train.x[sb][:, cols[jet]], np.zeros(int(sb.sum())), train.weight[sb],
                                            [derive_seed(s, "tnt autoencoder", jet) for s in f.member_seeds], f.name))
            log(f"tnt: the {jet} autoencoders (sideband events)")
            models = train_groups(groups, autoencoder, epoch_key, checkpoint=part(checkpoint, f"ae-{jet}"), log=log,
                                  loss="reconstruction")
            tagged[jet] = []
            for f, cols, model in zip(fits, columns, models):
                sr = f.data.train.y == 1
                loss = model.predict(f.data.train.x[sr][:, cols[jet]])
                tagged[jet].append(loss >= np.quantile(loss, 1 - settings.tag_fraction))
        classifiers: list[dict] = [{} for _ in fits]
        for jet, other in zip(JETS, reversed(JETS)):
            groups = []
            for f, cols, tag in zip(fits, columns, tagged[other]):
                train, sr = f.data.train, f.data.train.y == 1
                groups.append(TrainingGroup(train.x[sr][:, cols[jet]], tag.astype(float), train.weight[sr],
                                            f.member_seeds, f.name))
            log(f"tnt: the {jet} classifiers (SR events, signal-rich where {other} is tagged)")
            models = train_groups(groups, settings, epoch_key, checkpoint=part(checkpoint, f"clf-{jet}"), log=log)
            for i, model in enumerate(models):
                classifiers[i][jet] = model
        # the fold's loss per epoch: both classifiers' members side by side
        history = [{key: [a + b for a, b in zip(*(c[jet].history[key] for jet in JETS))]
                    for key in ("train_loss", "val_loss")} for c in classifiers]
        return [TNTScores(c, {jet: [f.inputs.features[i] for i in cols[jet]] for jet in JETS}, h)
                for c, h, f, cols in zip(classifiers, history, fits, columns)]


register(TagNTrain())
