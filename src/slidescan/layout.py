"""Every path under ``results/<scan>/``, as a function of the pseudo-experiment key; nothing else builds one.

The rules, ``slidescan status``, the summary, the report, ``launch`` and the CLI all ask a
:class:`Layout`. Its methods take a window name and a :class:`PseudoExperiment` (or, in the rules,
the wildcard patterns ``"{window}"`` and :data:`EXPERIMENT`), so the same function gives a file's
path and the rule's output pattern.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# the wildcard pattern of a pseudo-experiment in rule outputs
EXPERIMENT = "inj{injection}_seed{seed}"
_TAG = re.compile(r"^inj(\d+)_seed(\d+)$")


@dataclass(frozen=True, order=True)
class PseudoExperiment:
    """One pseudo-experiment: ``injection`` signal events drawn with seed ``seed``."""

    injection: int
    seed: int

    @property
    def tag(self) -> str:
        return f"inj{self.injection}_seed{self.seed}"

    @classmethod
    def parse(cls, tag: str) -> "PseudoExperiment":
        match = _TAG.match(tag)
        if not match:
            raise ValueError(f"not a pseudo-experiment tag (inj<I>_seed<S>): {tag!r}")
        return cls(int(match.group(1)), int(match.group(2)))

    @classmethod
    def from_attrs(cls, attrs: dict) -> "PseudoExperiment":
        return cls(int(attrs["injection"]), int(attrs["seed"]))

    def attrs(self) -> dict:
        return {"injection": self.injection, "seed": self.seed}

    def __str__(self) -> str:
        return f"injection {self.injection} seed {self.seed}"


def _tag(experiment) -> str:
    return experiment.tag if isinstance(experiment, PseudoExperiment) else str(experiment)


@dataclass(frozen=True)
class Layout:
    """The results directory of one scan, ``results/<scan>``."""

    root: Path

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root))

    @classmethod
    def of(cls, scan: str, workdir: str | Path = ".") -> "Layout":
        """The layout of scan ``scan`` in the checkout ``workdir``: ``<workdir>/results/<scan>``."""
        return cls(Path(workdir) / "results" / scan)

    def _p(self, *parts) -> Path:
        return self.root.joinpath(*map(str, parts))

    # --- data ---
    def events(self) -> Path:
        return self._p("data", "events.h5")

    def injected(self, experiment) -> Path:
        return self._p("data", f"{_tag(experiment)}.h5")

    def windows(self) -> Path:
        return self._p("windows.csv")

    def split(self, window, experiment) -> Path:
        return self._p("split", window, f"{_tag(experiment)}.h5")

    # --- per-window models (a model's ``directory`` and ``short`` name, models.Model) ---
    def model(self, model, window, experiment) -> Path:
        return self._p(model.directory, window, f"{_tag(experiment)}.h5")

    def model_plot(self, model, window, experiment) -> Path:
        return self._p("plots", model.directory, window, f"{_tag(experiment)}.png")

    def model_log(self, model, window, experiment) -> Path:
        return self._p("logs", model.short, window, f"{_tag(experiment)}.log")

    def model_checkpoint(self, model, window, experiment) -> Path:
        return self._p("checkpoints", window, model.short, f"{_tag(experiment)}.ckpt")

    def model_job_log(self, model, window="all", injection="all", seed="all") -> Path:
        """The log of one model job, which may serve many units (``packing.models``); each unit has its own too."""
        return self._p("logs", model.short, "jobs", f"{window}_inj{injection}_seed{seed}.log")

    def model_loss_plot(self, model) -> Path:
        return self._p("plots", f"loss_{model.name}.png")

    # --- training: one job per (window, method, injection); a result, log and checkpoint per fold ---
    def scores(self, window, method, experiment) -> Path:
        return self._p("scores", window, method, f"{_tag(experiment)}.h5")

    def fold_dir(self, window, method, experiment) -> Path:
        return self._p("train", window, method, _tag(experiment))

    def fold(self, window, method, experiment, fold) -> Path:
        return self.fold_dir(window, method, experiment) / f"fold{fold}.h5"

    def fold_log_dir(self, window, method, experiment) -> Path:
        return self._p("logs", "train", window, method, _tag(experiment))

    def fold_log(self, window, method, experiment, fold) -> Path:
        return self.fold_log_dir(window, method, experiment) / f"fold{fold}.log"

    def train_log(self, window, method, injection) -> Path:
        return self._p("logs", "train", window, method, f"inj{injection}.log")

    def checkpoints(self, window, method, injection) -> Path:
        return self._p("checkpoints", window, method, f"inj{injection}")

    def batch_checkpoint(self, window, method, injection, members: list[str]) -> Path:
        """The checkpoint of folds trained as one batched model, named by its folds: a rerun of the same
        folds resumes from it."""
        from .io import content_hash

        return self.checkpoints(window, method, injection) / f"batch-{content_hash(extra=members)[:16]}.ckpt"

    def fold_checkpoint(self, window, method, injection, seed, fold) -> Path:
        return self.checkpoints(window, method, injection) / f"seed{seed}_fold{fold}.ckpt"

    # --- bump hunts and the scan ---
    def bumphunt(self, method, experiment) -> Path:
        return self._p("bumphunt", method, f"{_tag(experiment)}.csv")

    def spectra(self, method, experiment) -> Path:
        return self._p("plots", "spectra", method, _tag(experiment))

    def bumphunt_log(self, method, experiment) -> Path:
        return self._p("logs", "bumphunt", method, f"{_tag(experiment)}.log")

    def pvalue_scan(self) -> Path:
        return self._p("pvalue_scan.csv")

    def scan_plot(self, method, injection) -> Path:
        return self._p("plots", f"pvalue_scan_{method}_inj{injection}.png")

    def calibration(self) -> Path:
        return self._p("calibration.csv")

    def calibration_plot(self) -> Path:
        return self._p("plots", "calibration_p0.png")

    def sensitivity_plot(self) -> Path:
        return self._p("plots", "sensitivity.png")

    def limits(self) -> Path:
        return self._p("limits.csv")

    def limit_plot(self, method) -> Path:
        return self._p("plots", f"limits_{method}.png")

    def window_map(self) -> Path:
        return self._p("plots", "window_map.png")

    def performance(self) -> Path:
        return self._p("performance.csv")

    def roc_plot(self) -> Path:
        return self._p("plots", "roc_sic.png")

    def max_sic_plot(self) -> Path:
        return self._p("plots", "max_sic_vs_sb.png")

    def loss_plot(self, method) -> Path:
        return self._p("plots", f"loss_{method}.png")

    def jobs(self) -> Path:
        return self._p("jobs.csv")

    def log(self, *parts) -> Path:
        """The log of a job without a key of its own (``log("scan")``) or with one (``log("inject", tag)``)."""
        *dirs, last = parts
        return self._p("logs", *dirs, f"{last}.log")

    # --- report and launch ---
    def report(self) -> Path:
        return self._p("report.html")

    def summary(self) -> Path:
        return self._p("summary.rst")

    def launch(self) -> Path:
        return self._p("launch")

    def settings_record(self) -> Path:
        """The settings the scan's results were made with (``slidescan.record``)."""
        return self._p("scan_settings.yaml")
