"""Typed settings, parsed once from the validated config at a job's boundary.

Defaults live in the schema only: the scan-level keys in ``config.schema.yaml``, each method's,
model's and backend's own section in the schema it registers (:class:`Settings`). A settings class
is a dataclass whose fields are exactly its section's keys; ``from_config`` fills the schema's
defaults, rejects unknown keys naming the section, and checks types and ranges.
:class:`ScanSettings` is the whole scan: windows, folds, configured methods, bump hunt, cluster.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from pathlib import Path
from typing import ClassVar

import numpy as np
import yaml

# settings that change how fast a training runs, not what it computes: left out of every identity
EXECUTION_ONLY = ("device", "threads", "cuda_graphs")


def section_schema(text: str) -> dict:
    """A section's JSON schema written as YAML (with ``default:`` for every optional key)."""
    schema = yaml.safe_load(text)
    schema.setdefault("type", "object")
    schema.setdefault("additionalProperties", False)
    schema.setdefault("default", {})
    return schema


def from_config(cls, config: dict | None, section: str):
    """``cls(**config)`` with an error that names the section and the unknown keys."""
    config = dict(config or {})
    known = sorted(f.name for f in fields(cls))
    unknown = sorted(set(config) - set(known))
    if unknown:
        raise ValueError(f"{section}: unknown setting(s) {unknown}; known: {known}")
    return cls(**config)


class Settings:
    """Base of a registered section's settings (a dataclass): ``section`` is its dotted path in the
    config (``classifier.nn``), ``schema`` its JSON schema with the defaults."""

    section: ClassVar[str]
    schema: ClassVar[dict]

    @classmethod
    def from_config(cls, config: dict | None):
        from .config import apply_defaults

        _check_fields(cls)
        from .config import unaliased

        values = apply_defaults(cls.schema, unaliased(dict(config or {})), cls.section,
                                known=sorted(f.name for f in fields(cls)))
        return cls(**values)

    @classmethod
    def path(cls) -> tuple[str, ...]:
        return tuple(cls.section.split("."))

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)


def _check_fields(cls) -> None:
    """A settings class and its schema name the same keys (defaults are in the schema, types in the class)."""
    declared = {f.name for f in fields(cls)}
    in_schema = set(cls.schema.get("properties", {}))
    if declared != in_schema:
        raise TypeError(f"{cls.__name__}: fields {sorted(declared ^ in_schema)} are in only one of the dataclass "
                        f"and the schema of section {cls.section}")


def identity_values(settings) -> dict:
    """``asdict(settings)`` without the keys added after results existed that hold their old behaviour
    (the class's ``late_defaults``): a scan made before a key existed keeps its fingerprints and is not rerun."""
    late = getattr(settings, "late_defaults", {})
    return {k: v for k, v in dataclasses.asdict(settings).items() if not (k in late and v == late[k])}


def tunables(settings) -> dict:
    """The settings that change results (``EXECUTION_ONLY`` left out), in field order: part of identities."""
    return {k: v for k, v in identity_values(settings).items() if k not in EXECUTION_ONLY}


def section_of(config: dict, path: tuple[str, ...]) -> dict:
    node = config
    for key in path:
        node = (node or {}).get(key) or {}
    return node


# --- the scan as a whole ---


def _base(section: str) -> dict:
    from .config import base_section_schema

    return base_section_schema(section)


@dataclass(frozen=True)
class BumphuntSettings(Settings):
    section = "bumphunt"
    schema = _base("bumphunt")

    efficiencies: list[float]
    bin_width: float
    fit_parameters: int | str
    p0_calculator: str
    p0_toys: int
    global_toys: int
    statistic: str  # a name in registry.STATISTICS (null in the config: the regions' own, ScanSettings)


@dataclass(frozen=True)
class LimitsSettings(Settings):
    section = "limits"
    schema = _base("limits")

    efficiency: float | None  # the declared cut; None: the loosest below 1 (ScanSettings.limit_efficiency)
    calculator: str
    cl: float
    luminosity: float | None  # fb^-1


@dataclass(frozen=True)
class PackingSettings(Settings):
    section = "packing"
    schema = _base("packing")

    models: str
    model_members: int
    cpu_members: int

    def members_per_model(self, device: str, batched: int = 0) -> int:
        """The most members one batched model may hold on ``device`` (0: no cap), given a batch size ``batched``
        of the caller's own (``model_members`` for flows)."""
        caps = [n for n in (batched, self.cpu_members if device == "cpu" else 0) if n]
        return min(caps) if caps else 0


@dataclass(frozen=True)
class ClusterSettings(Settings):
    section = "cluster"
    schema = _base("cluster")

    account: str | None
    partition: str | None
    gpu_partition: str | None
    qos: str | None
    runtime: int
    mem_mb: int
    gpu_runtime: int
    gpus: int
    gpu_shards: int  # > 0: a share of one GPU (Slurm's gres/shard) instead of `gpus` whole GPUs
    gpu_mem_mb: int
    container: str  # an Apptainer image for every job's script ("": none); the Snakefile's `container:`


@dataclass(frozen=True)
class ScanSettings:
    """Everything a job needs to know about its scan, parsed once from the validated config."""

    config: dict  # the validated config with every default filled in (rule params, identities)
    scan: str
    data: "DataSettings"  # noqa: F821
    injections: tuple[int, ...]
    seeds: tuple[int, ...]
    windows: tuple  # of windows.Window
    min_events: int  # per region of a window
    k: int
    features: tuple[str, ...]  # what classifiers and density models see (features.resolve)
    methods: dict  # name -> methods.MethodRun
    bumphunt: BumphuntSettings
    limits: LimitsSettings
    cluster: ClusterSettings
    packing: PackingSettings
    truth_mass: float  # the first signal model's mass: the window of the ROC, SIC and loss figures
    signals: tuple = ()  # of data.SignalModel; one unnamed model unless ``signals:`` names several
    # which features describe jet 1, jet 2 and the event (features.resolve_groups): every group, maybe empty
    feature_groups: dict = dataclasses.field(default_factory=dict)

    @classmethod
    def from_config(cls, config: dict, source: str = "config", workdir: str | Path = ".",
                    validated: bool = False) -> "ScanSettings":
        """The typed scan. ``validated``: ``config`` was checked and its defaults filled already (a workflow
        job's config, which the Snakefile validated): only its plugins are imported."""
        from .config import import_plugins, unaliased, validate
        from .data import DataSettings, signal_models
        from .features import resolve_groups
        from .methods import configure
        from .windows import region_grid

        if validated:
            config = {k: unaliased(v) for k, v in dict(config).items()}
            import_plugins(config.get("plugins") or [], workdir, source)
        else:
            config = validate(dict(config), source=source, workdir=workdir)  # validate copies every section
        from .config import ConfigError

        source_section = config["data"]["source"]
        if source_section in ("lhco_h5", "table") and not config["data"].get(source_section):
            raise ConfigError(f"{source}: data.{source_section}: data.source is {source_section}, but the section "
                              f"data.{source_section} (its path) is missing")
        data = DataSettings.from_config(config["data"])
        truth = config.get("truth_mass")
        if truth is None:
            truth = data.synthetic.model.m_wprime if data.source == "synthetic" else 3.5
        signals = signal_models(config.get("signals") or {}, data, float(truth), source)
        if config.get("signals") and config.get("truth_mass") is not None:
            raise ConfigError(f"{source}: truth_mass is the mass of a one-model scan; with signals: give each "
                              "model's mass (signals.<name>.mass)")
        methods = {name: configure(name, config) for name in config["methods"]}
        try:
            features, groups = resolve_groups(config["features"])
            windows = tuple(region_grid(config["windows"]))
        except ValueError as err:
            raise ConfigError(f"{source}: {err}") from None
        if data.source == "table" and data.table.weight:
            unweighted = [what for run in methods.values() for what in run.unweighted()]
            if unweighted:
                raise ConfigError(f"{source}: data.table.weight is set, but {', '.join(dict.fromkeys(unweighted))} "
                                  "would ignore per-event weights; remove those methods or the weights "
                                  "(docs/features.md)")
        for sample in data.samples:
            sample.check(data, source)
        named = {sample.name for sample in data.samples}
        for name, run in methods.items():
            missing: dict[str, list[str]] = {}
            for who, needs in run.sample_needs().items():
                for sample in needs:
                    if sample not in named:
                        missing.setdefault(sample, []).append(who)
            if missing:
                listing = "; ".join(f"{s} ({', '.join(w)})" for s, w in missing.items())
                raise ConfigError(f"{source}: method {name} needs the sample(s) {listing}, but data.samples has "
                                  f"{sorted(named) or 'none'}; add data.samples.{next(iter(missing))} "
                                  "(docs/plugins.md, \"Auxiliary samples\")")
        settings = cls(config=config, scan=str(config["scan"]), data=data,
                   injections=tuple(int(i) for i in config["injections"]),
                   seeds=tuple(int(s) for s in config["seeds"]),
                   windows=windows, min_events=int(config["windows"]["min_events"]),
                   k=int(config["folds"]["k"]), features=features, methods=methods,
                   bumphunt=BumphuntSettings(**{**config["bumphunt"],
                                                "statistic": config["bumphunt"]["statistic"] or windows[0].statistic}),
                   limits=LimitsSettings(**config["limits"]),
                   cluster=ClusterSettings(**config["cluster"]),
                   packing=PackingSettings(**config["packing"]),
                   truth_mass=signals[0].mass, signals=signals, feature_groups=groups)
        settings.check_regions(source)
        settings.check_statistic(source)
        declared = settings.limits.efficiency
        if declared is not None and not any(np.isclose(declared, e) for e in settings.bumphunt.efficiencies):
            raise ConfigError(f"{source}: limits.efficiency: {declared:g} is not one of bumphunt.efficiencies "
                              f"{list(settings.bumphunt.efficiencies)}; the limit is declared for a cut the bump "
                              "hunt makes")
        if data.source == "table" and data.table.label is None and settings.truth_needs():
            raise ConfigError(f"{source}: data.table.label is null (data without truth labels), so "
                              f"{settings.refusal_without_labels()}")
        return settings

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns every source reads besides mjj and the truth: the features, then the regions' context
        columns (``windows.thresholds``), which no classifier sees unless they are features too."""
        context = dict.fromkeys(c for w in self.windows for c in w.context if c != "mjj" and c not in self.features)
        return (*self.features, *context)

    def check_regions(self, source: str = "config") -> None:
        """Every method and model of the scan works in its kind of region (``regions`` of each)."""
        from .config import ConfigError
        from .registry import MODELS

        kind = self.windows[0].kind
        refused = [f"method {name}" for name, run in self.methods.items() if kind not in run.method.regions]
        refused += [f"model {m} (of {name})" for name, run in self.methods.items() for m in run.all_models()
                    if kind not in MODELS[m].regions]
        if refused:
            raise ConfigError(f"{source}: windows.kind is {kind}, but these work only in mjj windows (they read a "
                              f"window's mjj edges or its two sidebands): {', '.join(dict.fromkeys(refused))}; remove "
                              "them (docs/plugins.md, \"Regions\")")

    def check_statistic(self, source: str = "config") -> None:
        """``bumphunt.statistic`` is a registered test, and a test that predicts from a template gets methods with
        one."""
        from .config import ConfigError
        from .registry import STATISTICS, load_builtins

        load_builtins()
        name = self.bumphunt.statistic
        if name not in STATISTICS:
            raise ConfigError(f"{source}: bumphunt.statistic: {name!r} is not a registered test; known: "
                              f"{sorted(s.name for s in STATISTICS)}")
        kinds = STATISTICS[name].regions
        if kinds is not None and self.windows[0].kind not in kinds:
            raise ConfigError(f"{source}: bumphunt.statistic: {name} tests regions of kind {', '.join(kinds)}, and "
                              f"windows.kind is {self.windows[0].kind}; use template_count (or null: the regions' "
                              "own)")
        if STATISTICS[name].needs_template:
            without = [m for m, run in self.methods.items() if not run.has_template]
            if without:
                raise ConfigError(f"{source}: bumphunt.statistic is {name}, which predicts the background from each "
                                  f"method's held-out SR template, but {', '.join(without)} have none; remove them"
                                  + (f" or use {self.windows[0].statistic}"
                                     if not STATISTICS[self.windows[0].statistic].needs_template else "")
                                  + " (docs/architecture.md, \"Statistics\")")

    @property
    def limit_efficiency(self) -> float:
        """The cut whose limits are the scan's result (``limits.efficiency``, declared in advance): by default the
        loosest efficiency below 1 (no cut when the bump hunt makes none)."""
        if self.limits.efficiency is not None:
            return float(self.limits.efficiency)
        cuts = [e for e in self.bumphunt.efficiencies if e < 1]
        return float(max(cuts)) if cuts else 1.0

    def used_samples(self) -> tuple[str, ...]:
        """The auxiliary samples (``data.samples``) that the scan's methods or their models read: those the DAG
        prepares."""
        return tuple(dict.fromkeys(s for run in self.methods.values() for s in run.samples()))

    def truth_needs(self) -> list[str]:
        """What of this scan needs truth labels: injections of signal, and methods (or their models) that declare
        ``needs_truth`` (the idealized and supervised references)."""
        from .registry import MODELS

        needs = []
        injected = [i for i in self.injections if i > 0]
        if injected:
            needs.append(f"injections {injected} need labelled signal events")
        users = [name for name, run in self.methods.items()
                 if run.method.needs_truth or any(MODELS[m].needs_truth for m in run.models)]
        if users:
            needs.append(f"{', '.join(users)} need{'s' if len(users) == 1 else ''} truth labels")
        return needs

    def refusal_without_labels(self) -> str:
        """Why this scan cannot run on events without labels, and what to do (the tail of a message)."""
        return (" and ".join(self.truth_needs()) + "; on data, run injections [0] and methods that need no truth, "
                "or add the labels")

    def method(self, name: str):
        if name not in self.methods:
            raise KeyError(f"method {name!r} is not in this scan's methods {list(self.methods)}")
        return self.methods[name]

    def window(self, name: str):
        from .windows import window_by_name

        return window_by_name(list(self.windows), name)

    @property
    def experiments(self) -> list:
        """Every pseudo-experiment: the background-only ones once, each signal model's at every injection."""
        from .layout import PseudoExperiment

        return [PseudoExperiment(i, s, m.name if i else "") for i in self.injections
                for m in (self.signals if i else self.signals[:1]) for s in self.seeds]

    def signal(self, name: str = ""):
        """The signal model ``name`` ("" in a one-model scan)."""
        for model in self.signals:
            if model.name == name:
                return model
        raise KeyError(f"no signal model {name!r} in this scan (signals: {[m.name for m in self.signals]})")

    @property
    def labels(self) -> tuple[int, ...]:
        """The values a file's label column may hold: 0 (background), 1 (signal) and each ``signals.<name>.label``."""
        return (0, 1, *(m.label for m in self.signals if m.label is not None and m.label != 1))

    def signal_file(self, experiment):
        """The file of the signal model a pseudo-experiment's split needs (None: the scan's events hold it): its
        own model's, or at injection 0 of a scan of several models the first model's."""
        name = experiment.signal or self.signals[0].name
        return self.layout().signal_events(name) if name else None

    def truth_window_of(self, name: str = ""):
        """The window whose SR centre is nearest to signal model ``name``'s mass; among threshold regions (a
        non-resonant search, whose signal is in every one of them) the loosest, the first."""
        return self.windows[0].truth(self.windows, lambda: self.signal(name).mass)

    def models(self) -> dict:
        """The per-window models the scan's methods need (and the models those read, first), configured: name ->
        models.ConfiguredModel."""
        from .density import configure_model

        needed: dict = {}
        for run in self.methods.values():
            for name in run.all_models():  # the models the methods' models read, too
                if name not in needed:
                    needed[name] = configure_model(name, self.config)
        return needed

    @property
    def truth_window(self):
        """The window whose SR centre is nearest to the injected mass (among threshold regions the loosest): where
        ROC, SIC and loss curves are drawn."""
        return self.windows[0].truth(self.windows, lambda: self.truth_mass)

    def layout(self, workdir: str | Path = "."):
        from .layout import Layout

        return Layout.of(self.scan, workdir)
