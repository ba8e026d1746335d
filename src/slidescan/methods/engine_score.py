"""A score whose networks train on the nn engine (``backends.nn.engine``): autoencoders, VAEs, Tag N' Train, QUAK.

What they share is the engine's contract: the folds of a job train as one batched model (``batched``), each fold's
members are the settings' ``members``, and every fold of a pseudo-experiment draws the same events per epoch
(``epoch_key``: the largest fold's training split on the engine's grid), so that a fold rerun alone takes the steps
it took beside the others.
"""

from __future__ import annotations

from ..backends.nn import nn_epoch_events
from ..windows import ANY_REGION
from .base import Score


class EngineScore(Score):
    batched = True
    weighted = True
    regions = ANY_REGION  # they read the events' region column, never mjj edges

    def members(self, settings) -> int:
        return settings.members

    def epoch_key(self, settings, folds):
        return nn_epoch_events(settings, [f.train for f in folds])
