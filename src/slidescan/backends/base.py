"""What a classifier backend is: settings from its config section, an identity, a fit of many groups.

A backend fits the ensembles of several training sets (the folds of a job) and returns one model
per set, whose ``predict(x)`` gives a probability of label 1 per event and whose ``history`` holds
the loss per epoch and member. A backend that trains many sets as one batched model (``batched``)
gets them all in one call, with one checkpoint; any other gets one set per call, with its own.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Callable, ClassVar

import numpy as np

from ..settings import section_of, tunables


class Backend(ABC):
    name: ClassVar[str]
    description: ClassVar[str]
    settings_type: ClassVar[type]
    batched: ClassVar[bool] = False

    @property
    def settings_types(self) -> tuple:
        return (self.settings_type,)

    def configure(self, config: dict):
        return self.settings_type.from_config(section_of(config, self.settings_type.path()))

    def members(self, settings) -> int:
        return int(settings.members)

    def tunables(self, settings) -> dict:
        """The settings that change results (part of every fold's identity)."""
        return tunables(settings)

    def epoch_key(self, settings, sets: list) -> int | None:
        """A number every fold of a pseudo-experiment shares and its identity includes (None: nothing)."""
        return None

    @abstractmethod
    def fit(self, settings, groups: list[tuple], checkpoint: Path | None, log: Callable[[str], None],
            epoch_key: int | None = None) -> list:
        """Fit ``groups`` of ``(TrainingSet, member seeds, name)``; one model per group."""


def balanced_weights(y: np.ndarray, sample_weight: np.ndarray | None = None) -> np.ndarray:
    """Per-event weights giving both classes the same total weight, mean weight 1."""
    w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, float)
    out = np.empty(len(y))
    for label in (0, 1):
        mask = y == label
        total = w[mask].sum()
        if total <= 0:
            raise ValueError(f"training set has no events of class {label}")
        out[mask] = w[mask] * (0.5 * w.sum() / total)
    return out / out.mean()


def one_group(backend: str, groups: list) -> tuple:
    if len(groups) != 1:
        raise ValueError(f"the {backend} backend fits one training set per call, got {len(groups)}")
    return groups[0]
