"""The settings a scan directory was made with, so that new settings under the same name stop first.

Snakemake reruns whatever a changed setting touches, and overwrites the finished results of the scan
with those of other settings: expected by Snakemake, a surprise to a physicist who wanted a second
scan. ``slidescan run`` records the validated config in ``results/<scan>/scan_settings.yaml`` and,
on the next run, compares: more methods, injections, seeds, signal models or auxiliary samples extend the scan; any other change of
a setting that changes results stops with the keys that differ, unless ``--force`` is given. Where
and how fast jobs run (``cluster``, ``plugins``, devices, threads, CUDA graphs) is not compared.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from .io import atomic_path
from .settings import EXECUTION_ONLY

NOT_COMPARED = ("cluster", "plugins")
EXTENDABLE = ("methods", "injections", "seeds")


def _flat(config: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(_flat(value, f"{name}."))
        elif key not in EXECUTION_ONLY:
            out[name] = value
    return out


def comparable(config: dict) -> dict:
    return _flat({k: v for k, v in config.items() if k not in NOT_COMPARED})


def _schema_default(key: str):
    """The schema's default of a dotted key (a key added after a scan was made reads as its default there)."""
    from .config import schema

    node = schema()
    for part in key.split("."):
        node = (node.get("properties") or {}).get(part)
        if node is None:
            return _NO_DEFAULT
    return node.get("default", _NO_DEFAULT)


_NO_DEFAULT = object()


def changes(recorded: dict, current: dict) -> list[str]:
    """``key: old -> new`` for every setting that differs; growing methods, injections or seeds, or appending named
    signal models, is no change, nor is a key that the recorded scan predates, at its default (a new key's default
    keeps the old behaviour)."""
    old, new = comparable(recorded), comparable(current)
    # a model appended to named signal models adds its own pseudo-experiments only. From none to named ones, or a
    # new first model, is a change: the scan's paths, or the background-only splits (they carry the first model's
    # reference signal for the supervised reference), change
    recorded_models = list(recorded.get("signals") or {})
    appended = bool(recorded_models) and list(current.get("signals") or {})[:len(recorded_models)] == recorded_models
    old_models = set(recorded_models) if appended else set()
    # a new auxiliary sample adds its own jobs (for the methods that read it); a changed one is a change
    old_samples = set((recorded.get("data") or {}).get("samples") or {})
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key, "(unset)"), new.get(key, "(unset)")
        if a == b or (key not in old and b == _schema_default(key)):
            continue
        if key == "data.samples" and a == {} and b == "(unset)":  # empty before, named samples now
            continue
        if key.startswith("data.samples.") and key.split(".")[2] not in old_samples and key not in old:
            continue
        if old_models and key.startswith("signals.") and key.split(".")[1] not in old_models and key not in old:
            continue
        if key in EXTENDABLE and isinstance(a, list) and isinstance(b, list) and set(a) <= set(b):
            continue
        out.append(f"{key}: {a} -> {b}")
    return out


def read(path: Path) -> dict | None:
    if not path.exists():
        return None
    return yaml.safe_load(path.read_text()) or {}


def write(path: Path, config: dict) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text("# the settings this scan's results were made with (slidescan run); see slidescan.record\n"
                       + yaml.safe_dump(config, sort_keys=False))


def check(path: Path, config: dict) -> list[str]:
    """The changes against the recorded settings (none when nothing was recorded yet)."""
    recorded = read(path)
    return [] if recorded is None else changes(recorded, config)


def refusal(scan: str, found: list[str], results: Path) -> str:
    listing = "\n".join(f"  {line}" for line in found[:12]) + (f"\n  ... and {len(found) - 12} more"
                                                                 if len(found) > 12 else "")
    return (f"slidescan: scan {scan!r} in {results} was made with other settings; this run would retrain and "
            f"overwrite its results:\n{listing}\nGive this scan a new name (the config's `scan:` key) to keep "
            f"both, or pass --force to replace its results.")
