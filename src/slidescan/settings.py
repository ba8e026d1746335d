"""Settings dataclasses built from a config section, rejecting keys they do not know."""

from __future__ import annotations

from dataclasses import fields

# settings that change how fast a training runs, not what it computes: left out of every identity
EXECUTION_ONLY = ("device", "threads", "cuda_graphs")


def from_config(cls, config: dict | None, section: str):
    """``cls(**config)`` with an error that names the section and the unknown keys."""
    config = dict(config or {})
    known = sorted(f.name for f in fields(cls))
    unknown = sorted(set(config) - set(known))
    if unknown:
        raise ValueError(f"{section}: unknown setting(s) {unknown}; known: {known}")
    return cls(**config)
