"""State of a scan from its files: which training folds, flows and bump hunts are done, failed, interrupted or not started.

Works without Snakemake's own records, from the files every job leaves: its declared output, its
log, and its checkpoint. So it answers on a login node while a scan is still running.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from .windows import window_grid

DEFAULT_CONFIG = Path("config/config.yaml")
SCHEMA = Path("workflow/schemas/config.schema.yaml")


def load_config(workdir: Path, configfile: Path) -> dict:
    """The config as the workflow sees it: the default file, overlaid by ``configfile``, with schema defaults."""
    def read(path: Path) -> dict:
        full = workdir / path
        if not full.exists():
            raise FileNotFoundError(f"config file {full} does not exist")
        return yaml.safe_load(full.read_text()) or {}

    config = read(DEFAULT_CONFIG) if (workdir / DEFAULT_CONFIG).exists() else {}
    if Path(configfile) != DEFAULT_CONFIG:
        _deep_update(config, read(configfile))
    from snakemake.utils import validate

    validate(config, str(workdir / SCHEMA), set_default=True)
    return config


def _deep_update(base: dict, new: dict) -> None:
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _deep_update(base[key], value)
        else:
            base[key] = copy.deepcopy(value)


@dataclass
class FoldState:
    window: str
    method: str
    injection: int
    seed: int
    fold: int | None  # None for a flow or bump-hunt job
    state: str  # done | failed | interrupted | missing | stale
    reason: str
    output: Path
    log: Path
    target: Path  # the declared output of the job that trains it (what `snakemake <target>` reruns)
    job: str = "train"  # train | flow (one per window, injection, seed) | bumphunt (one per method, injection, seed)


def fold_states(workdir: Path, config: dict) -> list[FoldState]:
    results = workdir / "results" / str(config["scan"])
    states = []
    for window in (w.name for w in window_grid(config["windows"])):
        for method in config["methods"]:
            for injection in config["injections"]:
                for seed in config["seeds"]:
                    for fold in range(int(config["folds"]["k"])):
                        rel = f"{window}/{method}/inj{injection}_seed{seed}/fold{fold}"
                        output = results / "train" / f"{rel}.h5"
                        log = results / "logs" / "train" / f"{rel}.log"
                        state, reason = _classify(output, log, logged_checkpoint(log))
                        if state == "done":
                            state, reason = _settings_check(output, config, window, method, injection, seed, fold)
                        target = results / "scores" / window / method / f"inj{injection}_seed{seed}.h5"
                        states.append(FoldState(window, method, int(injection), int(seed), fold, state, reason,
                                                output, log, target))
    return states


def logged_checkpoint(log: Path) -> Path | None:
    """The checkpoint a fold's log names (``checkpoint: <path>``); folds trained together share one."""
    if not log.exists():
        return None
    found = re.findall(r"^checkpoint: (.+)$", log.read_text(errors="replace"), re.M)
    return Path(found[-1]) if found else None


def flow_states(workdir: Path, config: dict) -> list[FoldState]:
    """The CATHODE flow jobs; empty when no cathode method is configured."""
    if not any(m.startswith("cathode-") for m in config["methods"]):
        return []
    results = workdir / "results" / str(config["scan"])
    states = []
    for window in (w.name for w in window_grid(config["windows"])):
        for injection in config["injections"]:
            for seed in config["seeds"]:
                rel = f"{window}/inj{injection}_seed{seed}"
                output = results / "flows" / f"{rel}.h5"
                log = results / "logs" / "flow" / f"{rel}.log"
                state, reason = _classify(output, log, results / "checkpoints" / window / "flow" / f"inj{injection}_seed{seed}.ckpt")
                states.append(FoldState(window, "flow", int(injection), int(seed), None, state, reason, output, log,
                                        output, job="flow"))
    return states


def bumphunt_states(workdir: Path, config: dict) -> list[FoldState]:
    """The bump-hunt jobs, one per scan (method, injection, seed) over all windows."""
    results = workdir / "results" / str(config["scan"])
    states = []
    for method in config["methods"]:
        for injection in config["injections"]:
            for seed in config["seeds"]:
                rel = f"{method}/inj{injection}_seed{seed}"
                output = results / "bumphunt" / f"{rel}.csv"
                log = results / "logs" / "bumphunt" / f"{rel}.log"
                state, reason = _classify(output, log, epochs=False)
                states.append(FoldState("all", method, int(injection), int(seed), None, state, reason, output, log,
                                        output, job="bumphunt"))
    return states


def jobs_table(workdir: Path, config: dict):
    """Every training fold and flow with its state, epochs logged, training seconds, reason and log."""
    import re

    import pandas as pd

    rows = []
    for f in flow_states(workdir, config) + fold_states(workdir, config):
        text = f.log.read_text(errors="replace") if f.log.exists() else ""
        seconds = [float(x) for x in re.findall(r"^(?:flow )?epoch \d+/\d+:.*\(([\d.]+) s\)$", text, re.M)]
        # folds trained as one batched model share its epochs: each is given its share of the seconds
        sharing = re.findall(r"^(\d+) folds as one batched model", text, re.M)
        share = 1 / int(sharing[-1]) if sharing else 1.0
        rows.append({"job": f.job, "window": f.window, "method": f.method,
                     "injection": f.injection, "seed": f.seed, "fold": "" if f.fold is None else f.fold,
                     "state": f.state, "epochs": len(seconds), "train_seconds": round(share * sum(seconds), 2),
                     "batch_folds": int(sharing[-1]) if sharing else 1,
                     "reason": f.reason, "log": str(f.log.relative_to(workdir))})
    return pd.DataFrame(rows)


def count_states(states: list[FoldState]) -> dict[str, int]:
    return {s: sum(f.state == s for f in states) for s in ("done", "failed", "interrupted", "missing", "stale")}


def _settings_check(output: Path, config: dict, window: str, method: str, injection, seed, fold: int) -> tuple[str, str]:
    """``stale`` when a finished fold was trained with other classifier settings or seeds than the config's.

    Only the settings are compared (one HDF5 attribute per fold, no data is read): a changed input
    (data, windows, flow) is found by the run itself, which checks the full fingerprint.
    """
    from .io import read_attrs
    from .methods import parse_method
    from .pipeline import fold_settings_identity

    stored = read_attrs(output).get("settings_fingerprint")
    if stored is None:  # written before slidescan stored it: cannot tell
        return "done", ""
    expected = fold_settings_identity(config, method, {"window": window, "injection": injection, "seed": seed}, fold)
    if stored == expected:
        return "done", ""
    backend = parse_method(method)[1]
    return "stale", (f"trained with other classifier.{backend} settings or data.seed than the config's; "
                     "the next run retrains it")


def _classify(output: Path, log: Path, checkpoint: Path | None = None, epochs: bool = True) -> tuple[str, str]:
    if output.exists():
        return "done", ""
    if not log.exists():
        return "missing", "not started"
    text = log.read_text(errors="replace").strip().splitlines()
    if any(line.startswith("Traceback") for line in text):
        errors = [line for line in text if line and not line.startswith(" ") and ":" in line
                  and not line.startswith(("Traceback", "epoch ", "flow epoch "))]
        return "failed", errors[-1] if errors else "see log"
    if not epochs:  # a job without epochs (bump hunt)
        return "interrupted", "no result: running, killed or timed out"
    logged = sum(line.startswith(("epoch ", "flow epoch ")) for line in text)
    saved = " (checkpoint saved)" if checkpoint is not None and checkpoint.exists() else ""
    return "interrupted", f"stopped after {logged} logged epochs{saved}: running, killed or timed out"


def report(workdir: Path, configfile: Path, profile: str) -> tuple[str, dict]:
    """Human-readable status and the count of jobs (folds, flows, bump hunts) in each state."""
    config = load_config(workdir, configfile)
    states = fold_states(workdir, config)
    flows = flow_states(workdir, config)
    bumphunts = bumphunt_states(workdir, config)
    counts = count_states(states)
    lines = [f"scan {config['scan']}: {len(states)} training folds: "
             + ", ".join(f"{n} {s}" for s, n in counts.items())]
    for name, group in (("CATHODE flows", flows), ("bump-hunt jobs (one per method, injection and seed)", bumphunts)):
        if group:
            group_counts = count_states(group)
            lines.append(f"{len(group)} {name}: " + ", ".join(f"{n} {s}" for s, n in group_counts.items()))
            counts = {s: counts[s] + group_counts[s] for s in counts}
    pending = [f for f in flows + states + bumphunts if f.state != "done"]
    for f in pending:
        if f.state in ("missing", "stale") and counts[f.state] > 20:
            continue  # a scan not yet run, or new settings for all of it: the count says it
        if f.job == "flow":
            what = f"window {f.window} flow injection {f.injection} seed {f.seed}"
        elif f.job == "bumphunt":
            what = f"bump hunt method {f.method} injection {f.injection} seed {f.seed} (all windows)"
        else:
            what = f"window {f.window} method {f.method} injection {f.injection} seed {f.seed} fold {f.fold}"
        lines.append(f"  {f.state:11s} {what}: {f.reason}\n              log: {f.log}")
    if pending:
        # a training job trains all folds of its pseudo-experiment: its target is the merged scores file
        rerun = dict.fromkeys(str(f.target.relative_to(workdir)) for f in pending
                              if f.state in ("failed", "interrupted", "stale"))
        targets = " ".join(rerun) or "(all of them)"
        lines.append("rerun exactly these jobs and what depends on them (finished folds are kept, not retrained):")
        lines.append(f"  slidescan run --configfile {configfile} --profile {profile}")
        lines.append(f"only these jobs, nothing downstream:\n  snakemake --profile {profile} "
                     f"--configfile {configfile} {targets}")
    return "\n".join(lines), counts
