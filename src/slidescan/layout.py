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

# The wildcard patterns of a pseudo-experiment in rule outputs. The ``signal`` wildcard holds the tag's prefix: ""
# for injection 0 and for a scan of one signal model (their paths are those of every earlier scan), "<name>_" for a
# named model of ``signals:`` (layout.signal_prefix). Snakemake matches an empty wildcard where its constraint allows.
SIGNAL = "{signal}"
EXPERIMENT = SIGNAL + "inj{injection}_seed{seed}"
SIGNAL_PATTERN = "(?:[A-Za-z][A-Za-z0-9-]*_)?"  # the ``signal`` wildcard's constraint
_TAG = re.compile(r"^(?:([A-Za-z][A-Za-z0-9-]*)_)?inj(\d+)_seed(\d+)$")


def signal_prefix(signal: str) -> str:
    """The prefix of a pseudo-experiment's tag for signal model ``signal``: "" for none (the background-only
    experiments, a one-model scan), "<name>_" for a named model; the wildcard pattern stays as it is."""
    return signal if signal in ("", SIGNAL) else f"{signal}_"


@dataclass(frozen=True, order=True)
class PseudoExperiment:
    """One pseudo-experiment: ``injection`` signal events of model ``signal`` drawn with seed ``seed``.

    ``signal`` is "" for the background-only experiments (injection 0, shared by every signal model) and in a scan
    of one signal model; otherwise the name of a model in ``signals:``. Only a named model changes the tag, the
    attrs and the random streams (:attr:`key`), so a one-model scan keeps its paths and fingerprints.
    """

    injection: int
    seed: int
    signal: str = ""

    def __post_init__(self):
        if self.injection == 0 and self.signal:
            raise ValueError(f"injection 0 has no signal model (got {self.signal!r}): the background-only "
                             "pseudo-experiments are shared by every model")

    @property
    def tag(self) -> str:
        return f"{signal_prefix(self.signal)}inj{self.injection}_seed{self.seed}"

    @property
    def group(self) -> str:
        """What one training job serves: the pseudo-experiments of every seed of one model and injection."""
        return injection_group(self.injection, self.signal)

    @property
    def key(self) -> tuple:
        """The pseudo-experiment's part of every random stream's key (seeds.derive_seed)."""
        return (self.injection, self.seed) if not self.signal else (self.signal, self.injection, self.seed)

    @classmethod
    def parse(cls, tag: str) -> "PseudoExperiment":
        match = _TAG.match(tag)
        if not match:
            raise ValueError(f"not a pseudo-experiment tag ([<signal>_]inj<I>_seed<S>): {tag!r}")
        return cls(int(match.group(2)), int(match.group(3)), match.group(1) or "")

    @classmethod
    def from_wildcards(cls, wildcards) -> "PseudoExperiment":
        """From a rule's ``signal``, ``injection`` and ``seed`` wildcards (:data:`EXPERIMENT`)."""
        return cls(int(wildcards.injection), int(wildcards.seed), signal_name(getattr(wildcards, "signal", "")))

    @classmethod
    def from_attrs(cls, attrs: dict) -> "PseudoExperiment":
        return cls(int(attrs["injection"]), int(attrs["seed"]), str(attrs.get("signal", "") or ""))

    def attrs(self) -> dict:
        return {"injection": self.injection, "seed": self.seed, **({"signal": self.signal} if self.signal else {})}

    def __str__(self) -> str:
        model = f"signal {self.signal} " if self.signal else ""
        return f"{model}injection {self.injection} seed {self.seed}"


def signal_name(prefix: str) -> str:
    """The model's name from the ``signal`` wildcard's value (its tag prefix, "" or "<name>_")."""
    return str(prefix).removesuffix("_")


def injection_group(injection, signal: str = "") -> str:
    """``[<signal>_]inj<I>``: the training job of one model's injection (its log and checkpoints are named so)."""
    return f"{signal_prefix(signal)}inj{injection}"


def _suffix(signal: str) -> str:
    return f"_{signal}" if signal else ""


def _tag(experiment) -> str:
    return experiment.tag if isinstance(experiment, PseudoExperiment) else str(experiment)


WINDOW_ALONE = "window"  # the file name of a model fitted once per window (``Model.window_alone``)


def _model_tag(model, experiment) -> str:
    return WINDOW_ALONE if getattr(model, "window_alone", False) else _tag(experiment)


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

    def signal_events(self, signal) -> Path:
        """A named signal model's pool and reference (``signals.<name>``); a one-model scan's are in :meth:`events`."""
        return self._p("data", f"signal_{signal}.h5")

    def sample_events(self, name) -> Path:
        """An auxiliary sample's events (``data.samples.<name>``), with their folds."""
        return self._p("data", f"sample_{name}.h5")

    def sample_split(self, name, window) -> Path:
        """An auxiliary sample's events of one window, with their region: once per window, for every experiment."""
        return self._p("samples", name, f"{window}.h5")

    def windows(self) -> Path:
        return self._p("windows.csv")

    def split(self, window, experiment) -> Path:
        return self._p("split", window, f"{_tag(experiment)}.h5")

    # --- per-window models (a model's ``directory`` and ``short`` name, models.Model); a model of the window alone
    # (``Model.window_alone``) has one file per window, ``window``, whatever pseudo-experiment asks for it ---
    def model(self, model, window, experiment) -> Path:
        return self._p(model.directory, window, f"{_model_tag(model, experiment)}.h5")

    def model_plot(self, model, window, experiment) -> Path:
        return self._p("plots", model.directory, window, f"{_model_tag(model, experiment)}.png")

    def model_log(self, model, window, experiment) -> Path:
        return self._p("logs", model.short, window, f"{_model_tag(model, experiment)}.log")

    def model_checkpoint(self, model, window, experiment) -> Path:
        return self._p("checkpoints", window, model.short, f"{_model_tag(model, experiment)}.ckpt")

    def model_job_log(self, model, window="all", injection="all", seed="all", signal="") -> Path:
        """The log of one model job, which may serve many units (``packing.models``); each unit has its own too."""
        return self._p("logs", model.short, "jobs", f"{window}_{signal_prefix(signal)}inj{injection}_seed{seed}.log")

    def template_plot(self, method, window) -> Path:
        """SR data against a method's template, background only (the report's template page; report.templates)."""
        return self._p("plots", "templates", method, f"{window}.png")

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

    def train_log(self, window, method, injection, signal="") -> Path:
        return self._p("logs", "train", window, method, f"{injection_group(injection, signal)}.log")

    def checkpoints(self, window, method, injection, signal="") -> Path:
        return self._p("checkpoints", window, method, injection_group(injection, signal))

    def batch_checkpoint(self, window, method, injection, members: list[str], signal="") -> Path:
        """The checkpoint of folds trained as one batched model, named by its folds: a rerun of the same
        folds resumes from it."""
        from .io import content_hash

        return self.checkpoints(window, method, injection, signal) / f"batch-{content_hash(extra=members)[:16]}.ckpt"

    def fold_checkpoint(self, window, method, injection, seed, fold, signal="") -> Path:
        return self.checkpoints(window, method, injection, signal) / f"seed{seed}_fold{fold}.ckpt"

    # --- bump hunts and the scan ---
    def bumphunt(self, method, experiment) -> Path:
        return self._p("bumphunt", method, f"{_tag(experiment)}.csv")

    def spectra(self, method, experiment) -> Path:
        return self._p("plots", "spectra", method, _tag(experiment))

    def bumphunt_log(self, method, experiment) -> Path:
        return self._p("logs", "bumphunt", method, f"{_tag(experiment)}.log")

    def pvalue_scan(self) -> Path:
        return self._p("pvalue_scan.csv")

    def scan_plot(self, method, injection, signal="") -> Path:
        return self._p("plots", f"pvalue_scan_{method}_{injection_group(injection, signal)}.png")

    def calibration(self) -> Path:
        return self._p("calibration.csv")

    def calibration_plot(self) -> Path:
        return self._p("plots", "calibration_p0.png")

    def sensitivity_plot(self, signal="") -> Path:
        return self._p("plots", f"sensitivity{_suffix(signal)}.png")

    def limits(self) -> Path:
        return self._p("limits.csv")

    def limit_plot(self, method, signal="") -> Path:
        return self._p("plots", f"limits_{method}{_suffix(signal)}.png")

    def window_map(self) -> Path:
        return self._p("plots", "window_map.png")

    def performance(self) -> Path:
        return self._p("performance.csv")

    def methods_overview(self) -> Path:
        return self._p("methods.csv")

    def methods_plot(self) -> Path:
        return self._p("plots", "methods_z.png")

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
