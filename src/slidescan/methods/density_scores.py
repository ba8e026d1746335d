"""What the density-based scores share: SR training sets, fold flows, and scores from log densities.

ANODE and R-ANODE fit flows on the SR data of the other folds and compare them with the sideband
flow's density interpolated into the SR. Every window event needs a score for the bump hunt, also
in the sidebands, where a flow fitted in the SR would extrapolate in mjj. By default every event is
scored at the SR's centre mass (``score_mjj: centre``): the score is then a function of the
features alone, as a classifier's is, and sideband and SR events are scored alike, so the cut
sculpts the selected spectrum smoothly. Scoring at each event's own mjj, clipped into the SR
(``clipped``), is the likelihood ratio R(x|m) of the papers in the SR, but it scores sideband events
at the SR's edges only, and the cut then steps at the SR's boundaries: on the benchmark's
background-only pseudo-experiments R-ANODE found local Z up to 8.4 that way (docs/benchmarks.md).
A score is a log density ratio: higher is more signal-like.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..data import weights_of
from .base import FoldData, Fitted, Score, TrainingSet, WindowInputs


def sr_fold_data(inputs: WindowInputs, fold: int, models: tuple[str, ...]) -> FoldData:
    """The SR data of the other folds (what an SR density learns), the fold's events (what it scores)."""
    sr = inputs.sr(inputs.training_events(fold))
    if len(sr) == 0:
        raise ValueError(f"{inputs.window.name} fold {fold}: no SR events to fit an SR density on")
    train = TrainingSet(sr[inputs.features].to_numpy(), np.ones(len(sr)), weights_of(sr, ones=True),
                        sr["mjj"].to_numpy())
    return FoldData(train, inputs.data[inputs.data["fold"] == fold], None,
                    tuple(inputs.model(m).fingerprint for m in models))


def flow_weight(train: TrainingSet) -> np.ndarray | None:
    """The SR events' weights for ``train_flow``; None when all are 1, so an unweighted scan's flows (and
    their checkpoints) are the ones they were before weights existed."""
    return None if np.all(train.weight == 1.0) else train.weight


def clipped_mjj(mjj: np.ndarray, window) -> np.ndarray:
    """mjj moved into the SR [sr_lo, sr_hi): where the SR densities are defined."""
    return np.clip(np.asarray(mjj, float), window.sr_lo, np.nextafter(window.sr_hi, window.sr_lo))


SCORE_MJJ = {"centre": lambda mjj, window: np.full(len(mjj), window.sr_centre), "clipped": clipped_mjj}
SCORE_MJJ_SCHEMA = """
  score_mjj:
    enum: [centre, clipped]
    default: centre
    description: "the mjj at which every event is scored: the SR's centre (a function of the features alone), or its own, clipped into the SR"
"""


def mixture_log_prob(flows: list, x: np.ndarray, mjj: np.ndarray) -> np.ndarray:
    """log of the members' mean density (each member is itself a mixture of its best epochs)."""
    per = np.stack([f.log_prob(x, mjj) for f in flows])
    top = per.max(0)
    return top + np.log(np.exp(per - top).mean(0))


def stacked_history(flows: list) -> dict:
    """Per epoch, each member's training and validation loss (the members' epochs agree)."""
    epochs = min(len(f.history["val_loss"]) for f in flows)
    return {key: [[f.history[key][e] for f in flows] for e in range(epochs)] for key in ("train_loss", "val_loss")}


@dataclass
class LogRatio(Fitted):
    """score = log p_numerator(x | m~) - log p_denominator(x | m~), m~ the mjj at which events are scored
    (``at``: the SR's centre, the event's own clipped into the SR, or, ``own``, the event's own)."""

    numerator: list  # flows (ensemble members)
    denominator: object | None  # a flow; None: score = log p_numerator alone
    window: object
    features: list[str]
    history: dict
    sign: float = 1.0
    at: str = "centre"

    def predict(self, events: pd.DataFrame) -> np.ndarray:
        x = events[self.features].to_numpy()
        mjj = events["mjj"].to_numpy()
        m = mjj if self.at == "own" else SCORE_MJJ[self.at](mjj, self.window)
        score = mixture_log_prob(self.numerator, x, m)
        if self.denominator is not None:
            score = score - self.denominator.log_prob(x, m)
        return self.sign * score


def member_checkpoint(checkpoint, member: int) -> Path | None:
    from ..checkpoint import part

    return part(checkpoint, f"member{member}")



class SRDensityScore(Score):
    """ANODE and R-ANODE: flows fitted per fold on the other folds' SR data, against the sideband flow.

    ANODE's flows of all pending folds of a job (and their members) train as one batched model
    (``density.batched``; at most ``packing.cpu_members`` on a CPU, by the training stage), each the
    flow it is alone. R-ANODE's mixture fit trains fold by fold. With per-event weights both maximise
    the weighted likelihood of the SR data (the sideband flow does the same in the sidebands).
    """

    models = ("sideband_flow",)
    weighted = True
    # R-ANODE: the SR flow is the signal component of a mixture with the sideband flow held fixed
    mixture = False

    @property
    def batched(self) -> bool:
        return not self.mixture

    def fold_data(self, inputs, fold, settings):
        return sr_fold_data(inputs, fold, self.models)

    def fit(self, fits, settings, checkpoint, log):
        if not self.mixture:
            return self._fit_batched(fits, settings)
        from ..density.flows import train_flow

        out = []
        for f in fits:
            train = f.data.train
            background = f.inputs.model("sideband_flow").density()
            log_background = background.log_prob(train.x, train.mjj)
            weight, flows = flow_weight(train), []
            n_events = len(train.x) if weight is None else float(weight.sum())
            for m, seed in enumerate(f.member_seeds):
                flow = train_flow(train.x, train.mjj, settings, seed, checkpoint=member_checkpoint(f.checkpoint, m),
                                  log=f.log, background=log_background,
                                  signal_fraction=settings.initial_signal_fraction, what="signal flow", weight=weight)
                f.log(f"member {m}: fitted signal fraction in the SR {flow.signal_fraction:.4g} "
                      f"({flow.signal_fraction * n_events:.0f} of {n_events:.0f} training events"
                      f"{'' if weight is None else ', weighted'})")
                flows.append(flow)
            out.append(LogRatio(flows, background, f.inputs.window, f.inputs.features, stacked_history(flows),
                                at=settings.score_mjj))
        return out

    def _fit_batched(self, fits, settings):
        """Every fold's members as one batched model: each flow is the one ``train_flow`` gives alone."""
        from ..density.batched import FlowTask, train_flows

        tasks = [FlowTask(f.data.train.x, f.data.train.mjj, seed, member_checkpoint(f.checkpoint, m), f.log,
                          what="SR flow", weight=flow_weight(f.data.train))
                 for f in fits for m, seed in enumerate(f.member_seeds)]
        flows = train_flows(tasks, settings) if len(tasks) > 1 else [_alone(tasks[0], settings)]
        out, start = [], 0
        for f in fits:
            own = flows[start:start + len(f.member_seeds)]
            start += len(own)
            out.append(LogRatio(own, f.inputs.model("sideband_flow").density(), f.inputs.window, f.inputs.features,
                                stacked_history(own), at=settings.score_mjj))
        return out


def _alone(task, settings):
    from ..density.flows import train_flow

    return train_flow(task.x, task.mjj, settings, task.seed, checkpoint=task.checkpoint, log=task.log, what=task.what,
                      weight=task.weight)
