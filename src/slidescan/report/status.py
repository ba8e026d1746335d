"""State of a scan from its files: which training folds, per-window models and bump hunts are done,
failed, interrupted or not started.

Works without Snakemake's own records, from the files every job leaves: its declared output, its
log, and its checkpoint. So it answers on a login node while a scan is still running. The jobs
come from the scan's settings and the registries (each method's folds, the models its methods
need), their files from the layout, the meaning of their log lines from ``joblog``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import re

from .. import joblog
from ..config import load_settings
from ..layout import Layout, PseudoExperiment, injection_group
from ..settings import ScanSettings

STATES = ("done", "failed", "interrupted", "missing", "stale")


@dataclass
class JobState:
    window: str
    method: str  # the method of a training fold or bump hunt, the model's name for a model job
    injection: int
    seed: int
    fold: int | None  # None for a model or bump-hunt job
    state: str  # done | failed | interrupted | missing | stale
    reason: str
    output: Path
    log: Path
    target: Path  # the declared output of the job that makes it (what `snakemake <target>` reruns)
    job: str = "train"  # train | model | bumphunt | a data or report rule (prepare_data, inject, split, scan, ...)
    signal: str = ""  # the injected signal model of a scan of several ("" for injection 0 and one-model scans)

    @property
    def what(self) -> str:
        if self.job not in ("train", "model", "bumphunt"):
            key = " ".join(part for part in (f"window {self.window}" if self.window else "",
                                             f"method {self.method}" if self.method else "",
                                             f"signal {self.signal}" if self.signal else "",
                                             f"injection {self.injection}" if self.injection is not None else "",
                                             f"seed {self.seed}" if self.seed is not None else "") if part)
            return f"job {self.job}" + (f" {key}" if key else "")
        experiment = f"{'signal ' + self.signal + ' ' if self.signal else ''}injection {self.injection} seed {self.seed}"
        if self.job == "model" and self.injection == "all":  # a model of the window alone
            experiment = "(every pseudo-experiment)"
        if self.job == "model":
            return f"window {self.window} model {self.method} {experiment}"
        if self.job == "bumphunt":
            return f"bump hunt method {self.method} {experiment} (all windows)"
        return (f"window {self.window} method {self.method} {experiment} "
                + (f"fold {self.fold}" if self.fold is not None else "(scores of all folds)"))


def fold_states(settings: ScanSettings, layout: Layout, failures: dict | None = None) -> list[JobState]:
    """Every training fold. A fold without a log of its own belongs to a job that failed before it trained
    any fold (an empty window, say) when that job's log has a traceback, or Snakemake recorded its failure."""
    from ..stages.train import fold_settings_identity

    failures = failures or {}
    states = []
    for window in settings.windows:
        for method, run in settings.methods.items():
            for signal, injection in dict.fromkeys((e.signal, e.injection) for e in settings.experiments):
                job_log = layout.train_log(window.name, method, injection, signal)
                job_error = joblog.failure(joblog.read(job_log))
                for seed in settings.seeds:
                    experiment = PseudoExperiment(injection, seed, signal)
                    target = layout.scores(window.name, method, experiment)
                    merged = target.exists()
                    folds = []
                    for fold in range(settings.k):
                        output = layout.fold(window.name, method, experiment, fold)
                        log = layout.fold_log(window.name, method, experiment, fold)
                        state, reason = _classify(output, log, joblog.logged_checkpoint(log))
                        if state == "done":
                            state, reason = _settings_check(output, fold_settings_identity(
                                settings, run, window.name, experiment, fold), run.section)
                        elif merged:  # the job finished (its scores exist), then this fold's result was deleted
                            state, reason = "missing", LOST
                        elif state == "missing" and (job_error or str(target) in failures):
                            state, reason, log = "failed", job_error or failures[str(target)], job_log
                        folds.append(JobState(window.name, method, injection, seed, fold, state, reason, output,
                                              log, target, signal=signal))
                    states.extend(folds)
    return states


def merged_states(layout: Layout, folds: list[JobState]) -> list[JobState]:
    """The training jobs' scores files that are missing while every fold of theirs is done (deleted by hand)."""
    jobs: dict = {}
    for f in folds:
        jobs.setdefault(f.target, []).append(f)
    return [JobState(f[0].window, f[0].method, f[0].injection, f[0].seed, None, "missing", MERGED_MISSING, target,
                     layout.train_log(f[0].window, f[0].method, f[0].injection, f[0].signal), target,
                     signal=f[0].signal)
            for target, f in jobs.items() if not target.exists() and all(x.state == "done" for x in f)]


# a finished job's fold result deleted by hand: Snakemake sees the job's output and reruns nothing by itself
LOST = "its result was deleted after its job finished: a plain run does not see it (the job's scores file exists)"
# the folds are there, their merged scores file is not: a plain run makes it from them (no fold is retrained)
MERGED_MISSING = "the scores file of its finished folds is missing; `slidescan run` makes it from them"


def lost(state: JobState) -> bool:
    """A finished result deleted by hand, which only a forced rerun of its job remakes."""
    return state.reason == LOST


def data_states(settings: ScanSettings, layout: Layout, failures: dict | None = None) -> list[JobState]:
    """prepare_data, prepare_signal (per named model), prepare_sample and split_sample (per auxiliary sample a method
    reads, and window), inject (per pseudo-experiment) and split (per window and pseudo-experiment)."""
    states = [_job("prepare_data", "", "", None, None, layout.events(), layout.log("prepare_data"), failures)]
    states += [_job("prepare_signal", "", "", None, None, layout.signal_events(s.name),
                    layout.log("prepare_signal", s.name), failures, s.name) for s in settings.signals if s.name]
    samples = settings.used_samples()
    states += [_job("prepare_sample", "", "", None, None, layout.sample_events(n), layout.log("prepare_sample", n),
                    failures) for n in samples]
    states += [_job("split_sample", w.name, "", None, None, layout.sample_split(n, w.name),
                    layout.log("split_sample", n, w.name), failures) for n in samples for w in settings.windows]
    jobs = [("inject", "", e, layout.injected(e), layout.log("inject", e.tag)) for e in settings.experiments]
    jobs += [("split", w.name, e, layout.split(w.name, e), layout.log("split", w.name, e.tag))
             for w in settings.windows for e in settings.experiments]
    return states + [_job(rule, window, "", e.injection, e.seed, output, log, failures, e.signal)
                     for rule, window, e, output, log in jobs]


def report_states(settings: ScanSettings, layout: Layout, failures: dict | None = None) -> list[JobState]:
    """The jobs after the bump hunts: the scan table, calibration and the report's figures."""
    jobs = [("scan", "", layout.pvalue_scan(), layout.log("scan")),
            ("calibration", "", layout.calibration(), layout.log("calibration")),
            ("window_map", "", layout.window_map(), layout.log("window_map")),
            ("jobs", "", layout.jobs(), layout.log("jobs"))]
    jobs += [("sensitivity", "", layout.sensitivity_plot(s.name), layout.log("sensitivity")) for s in settings.signals]
    groups = dict.fromkeys((e.signal, e.injection) for e in settings.experiments)
    jobs += [("plot_scan", m, layout.scan_plot(m, i, s), layout.log("plot_scan", f"{m}_{injection_group(i, s)}"))
             for m in settings.methods for s, i in groups]
    jobs += [("loss_curves", m, layout.loss_plot(m), layout.log("loss_curves", m)) for m in settings.methods]
    if any(i > 0 for i in settings.injections):
        jobs.append(("performance", "", layout.performance(), layout.log("performance")))
        if 0 in settings.injections:
            jobs.append(("limits", "", layout.limits(), layout.log("limits")))
    return [_job(rule, "", method, None, None, output, log, failures) for rule, method, output, log in jobs]


def _job(rule, window, method, injection, seed, output: Path, log: Path, failures: dict | None,
         signal: str | None = "") -> JobState:
    state, reason = _classify(output, log, epochs=False)
    if state in ("missing", "interrupted") and failures and str(output) in failures:
        state, reason = "failed", failures[str(output)]
    return JobState(window, method, injection, seed, None, state, reason, output, log, output, job=rule,
                    signal=signal or "")


def snakemake_failures(workdir: Path) -> dict[str, str]:
    """Output path -> Snakemake's message, for every job its newest run reported failed ("Error in rule")."""
    logs = sorted((Path(workdir) / ".snakemake" / "log").glob("*.snakemake.log"))
    if not logs:
        return {}
    failures = {}
    for block in joblog.read(logs[-1]).split("Error in rule ")[1:]:
        rule = block.split(":", 1)[0].strip()
        fields = dict(re.findall(r"^\s+(message|output): (.*)$", block, re.M))
        message = fields.get("message", "").strip()
        reason = f"Snakemake: rule {rule} failed" + (f": {message}" if message and message != "None" else "")
        for output in fields.get("output", "").split(", "):
            if output.strip():
                failures[output.strip()] = reason
    return failures


def model_states(settings: ScanSettings, layout: Layout, failures: dict | None = None) -> dict[str, list[JobState]]:
    """Per model the scan's methods need, its jobs (one per window and pseudo-experiment; one per window for a model
    of the window alone, listed as injection and seed "all")."""
    out = {}
    for name, configured in settings.models().items():
        model = configured.model
        out[name] = []
        for window in settings.windows:
            for experiment in settings.experiments[:1] if model.window_alone else settings.experiments:
                output = layout.model(model, window.name, experiment)
                log = layout.model_log(model, window.name, experiment)
                state, reason = _classify(output, log, layout.model_checkpoint(model, window.name, experiment))
                if state in ("missing", "interrupted") and failures and str(output) in failures:
                    state, reason = "failed", failures[str(output)]
                injection, seed, signal = ("all", "all", "") if model.window_alone else \
                    (experiment.injection, experiment.seed, experiment.signal)
                out[name].append(JobState(window.name, name, injection, seed, None, state, reason, output, log, output,
                                          job="model", signal=signal))
    return out


def bumphunt_states(settings: ScanSettings, layout: Layout, failures: dict | None = None) -> list[JobState]:
    """The bump-hunt jobs, one per scan (method, pseudo-experiment) over all windows."""
    states = []
    for method in settings.methods:
        for experiment in settings.experiments:
            job = _job("bumphunt", "all", method, experiment.injection, experiment.seed,
                       layout.bumphunt(method, experiment), layout.bumphunt_log(method, experiment), failures,
                       experiment.signal)
            states.append(job)
    return states


def jobs_table(settings: ScanSettings, layout: Layout, workdir: Path):
    """Every per-window model and training fold with its state, epochs logged, training seconds, reason and log."""
    import pandas as pd

    rows = []
    models = [s for group in model_states(settings, layout).values() for s in group]
    for f in models + fold_states(settings, layout):
        text = joblog.read(f.log)
        seconds = joblog.epoch_seconds(text)
        # folds or flows trained as one batched model share its epochs: each is given its share of the seconds
        sharing = joblog.shared_by(text)
        rows.append({"job": f.job, "window": f.window, "method": f.method, "signal": f.signal,
                     "injection": f.injection, "seed": f.seed, "fold": "" if f.fold is None else f.fold,
                     "state": f.state, "epochs": len(seconds), "train_seconds": round(sum(seconds) / sharing, 2),
                     "shared_by": sharing, "reason": f.reason, "log": str(_relative(f.log, workdir))})
    return pd.DataFrame(rows)


def _relative(path: Path, workdir: Path) -> Path:
    try:
        return Path(path).resolve().relative_to(Path(workdir).resolve())
    except ValueError:
        return Path(path)


def count_states(states: list[JobState]) -> dict[str, int]:
    return {s: sum(f.state == s for f in states) for s in STATES}


def _settings_check(output: Path, expected: str, section: str) -> tuple[str, str]:
    """``stale`` when a finished fold was trained with other settings or seeds than the config's.

    Only the settings are compared (one HDF5 attribute per fold, no data is read): a changed input
    (data, windows, a model) is found by the run itself, which checks the full fingerprint.
    """
    from ..io import read_attrs

    stored = read_attrs(output).get("settings_fingerprint")
    if stored is None or stored == expected:  # None: written before slidescan stored it, cannot tell
        return "done", ""
    return "stale", f"trained with other {section} settings or data.seed than the config's; the next run retrains it"


def _classify(output: Path, log: Path, checkpoint: Path | None = None, epochs: bool = True) -> tuple[str, str]:
    if output.exists():
        return "done", ""
    if not log.exists():
        return "missing", "not started"
    text = joblog.read(log)
    error = joblog.failure(text)
    if error is not None:
        return "failed", error
    if not epochs:  # a job without epochs (bump hunt)
        return "interrupted", "no result: running, killed or timed out"
    saved = " (checkpoint saved)" if checkpoint is not None and checkpoint.exists() else ""
    return "interrupted", f"stopped after {joblog.logged_epochs(text)} logged epochs{saved}: running, killed or timed out"


def report(workdir: Path, configfile: Path, profile: str) -> tuple[str, dict]:
    """Human-readable status and the count of jobs in each state (``counts["failed"]``: any job of the DAG;
    ``counts["stale_lock"]``: 1 when a dead run left its lock)."""
    from ..cluster.lock import lock_state

    settings = load_settings(workdir, configfile)
    layout = settings.layout(workdir)
    failures = snakemake_failures(workdir)
    states = fold_states(settings, layout, failures)
    models = model_states(settings, layout, failures)
    counts = count_states(states)
    lines = [f"scan {settings.scan}: {len(states)} training folds: "
             + ", ".join(f"{n} {s}" for s, n in counts.items())]
    data, bumps = data_states(settings, layout, failures), bumphunt_states(settings, layout, failures)
    reports = report_states(settings, layout, failures)
    data_rules = ", ".join(["prepare_data", *(["prepare_signal"] if any(s.name for s in settings.signals) else []),
                            *(["prepare_sample", "split_sample"] if settings.used_samples() else []), "inject", "split"])
    groups = [(f"data jobs ({data_rules})", data)]
    groups += [(f"{name} models ({settings.models()[name].model.description})", group) for name, group in models.items()]
    groups += [("bump-hunt jobs (one per method and pseudo-experiment)", bumps),
               ("report jobs (scan table, calibration, figures)", reports)]
    for name, group in groups:
        if group:
            group_counts = count_states(group)
            lines.append(f"{len(group)} {name}: " + ", ".join(f"{n} {s}" for s, n in group_counts.items()))
            counts = {s: counts[s] + group_counts[s] for s in counts}
    ordered = data + [f for group in models.values() for f in group] + states + merged_states(layout, states) + bumps + reports
    pending = [f for f in ordered if f.state != "done"]
    for f in pending:
        if f.state in ("missing", "stale") and counts[f.state] > 20:
            continue  # a scan not yet run, or new settings for all of it: the count says it
        if f.job in REPORT_RULES and f.state == "missing":
            continue  # they follow from the rest
        lines.append(f"  {f.state:11s} {f.what}: {f.reason}\n              log: {f.log}")
    lock = lock_state(workdir, layout.launch())
    counts["stale_lock"] = int(lock.state == "stale")
    counts["lost"] = sum(map(lost, states))
    if lock.state != "none":
        lines.append(("STALE LOCK: " if lock.state == "stale" else "") + lock.text)
    if pending:
        lines += rerun_commands(pending, workdir, configfile, profile)
    return "\n".join(lines), counts


def rerun_commands(pending: list[JobState], workdir: Path, configfile: Path, profile: str) -> list[str]:
    """The commands that redo exactly the unfinished jobs (a training job's target is its scores file, which all its
    folds make): the run, which reruns them and what depends on them, and a Snakemake call for them alone. A job
    whose fold result was deleted after it finished is forced (``--forcerun``), since its output exists. Targets
    come first: ``--configfile`` takes several values and would swallow them."""
    def targets(states) -> list[str]:
        return list(dict.fromkeys(str(_relative(f.target, workdir)) for f in states))

    redo = targets(f for f in pending if f.state in ("failed", "interrupted", "stale") and not lost(f))
    forced = targets(f for f in pending if lost(f))
    force = f" --forcerun {' '.join(forced)}" if forced else ""
    lines = ["rerun exactly these jobs and what depends on them (finished folds are kept, not retrained):",
             f"  slidescan run --configfile {configfile} --profile {profile}" + (f" --{force}" if force else "")]
    if redo or forced:
        lines.append("only these jobs, nothing downstream:")
        lines.append(f"  snakemake {' '.join(redo + [t for t in forced if t not in redo])}{force} --profile {profile} "
                     f"--configfile {configfile}")
    return lines


REPORT_RULES = ("scan", "calibration", "limits", "sensitivity", "window_map", "jobs", "plot_scan", "loss_curves", "performance")
