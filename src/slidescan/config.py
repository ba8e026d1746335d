"""The config: reading, the assembled schema, validation with the schema's defaults, plugins.

The schema is assembled: the scan-level keys from ``config.schema.yaml``, plus the section of every
registered method, model and backend (``Settings.schema``), plus the list of valid method names.
A plugin (``plugins:``) is imported first, so its sections and names are part of the schema too.
Validation fills every default in place, as Snakemake's ``validate`` does, and an error names the
file and the key on its first line instead of printing the schema.
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import sys
from pathlib import Path

import yaml

SCHEMA_FILE = Path(__file__).with_name("config.schema.yaml")
DEFAULT_CONFIG = Path("config/config.yaml")


class ConfigError(ValueError):
    """A config that does not fit the schema: ``<file>: <key>: <what is wrong>``."""


def _validator(schema: dict):
    """A draft 2020-12 validator that fills in each property's ``default`` before checking it."""
    from jsonschema import Draft202012Validator, validators

    check_properties = Draft202012Validator.VALIDATORS["properties"]

    def properties_with_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for key, sub in properties.items():
                if "default" in sub and key not in instance:
                    instance[key] = copy.deepcopy(sub["default"])
        yield from check_properties(validator, properties, instance, schema)

    return validators.extend(Draft202012Validator, {"properties": properties_with_defaults})(schema)


def _key(path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _message(error) -> str:
    if error.validator == "additionalProperties":
        known = sorted(error.schema.get("properties", {}))
        unexpected = sorted(set(error.instance) - set(known))
        import difflib

        close = {u: difflib.get_close_matches(u, known, n=1) for u in unexpected}
        hints = "; ".join(f"did you mean {c[0]!r} for {u!r}?" for u, c in close.items() if c)
        return f"unknown key(s) {unexpected}" + (f" ({hints})" if hints else "") + f"; known: {known}"
    if error.validator == "enum" and len(error.validator_value) > 12:
        return f"{error.instance!r} is not one of the {len(error.validator_value)} valid values {error.validator_value}"
    if error.validator == "not" and error.schema.get("description"):  # a value excluded: the key says why
        return f"{error.instance!r} is not allowed ({error.schema['description']})"
    return error.message


def _check(schema: dict, instance, where: str) -> None:
    errors = sorted(_validator(schema).iter_errors(instance), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        lines = []
        for error in errors:
            key = _key(error.absolute_path)
            lines.append(f"{where}: {key or '(top level)'}: {_message(error)}")
        raise ConfigError("\n".join(lines))


def apply_defaults(schema: dict, values: dict, section: str, known: list[str] | None = None) -> dict:
    """``values`` of one section with the schema's defaults filled in, checked against the schema."""
    if known is not None:
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigError(f"{section}: unknown setting(s) {unknown}; known: {known}")
    errors = sorted(_validator(schema).iter_errors(values), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        raise ConfigError("\n".join(f"{section}.{_key(e.absolute_path)}: {_message(e)}" if e.absolute_path
                                    else f"{section}: {_message(e)}" for e in errors))
    return values


def base_section_schema(section: str) -> dict:
    """The schema of a scan-level section of ``config.schema.yaml`` (dotted path, e.g. ``data.synthetic.model``)."""
    node = yaml.safe_load(SCHEMA_FILE.read_text())
    for key in section.split("."):
        node = node["properties"][key]
    return node


def schema() -> dict:
    """The whole schema: the scan-level keys and every registered section, with their defaults."""
    from .methods import method_names
    from .registry import BACKENDS, METHODS, MODELS

    full = yaml.safe_load(SCHEMA_FILE.read_text())
    placed: dict[tuple, tuple] = {}
    for registry in (BACKENDS, MODELS, METHODS):
        for entry in registry:
            for settings in getattr(entry, "settings_types", ()):
                path = settings.path()
                if path in placed:
                    if placed[path][0] is not settings.schema:
                        raise ValueError(f"section {settings.section} is declared by both {placed[path][1]} and "
                                         f"{registry.kind} {entry.name}")
                    continue
                placed[path] = (settings.schema, f"{registry.kind} {entry.name}")
                node = full
                for key in path[:-1]:
                    node = node["properties"][key]
                node["properties"][path[-1]] = settings.schema
    full["properties"]["methods"]["items"]["enum"] = method_names()
    return full


def import_plugins(names: list[str], workdir: str | Path = ".", where: str = "config") -> None:
    """Import each plugin (a module name or a ``.py`` file relative to ``workdir``): it registers its entries."""
    for i, name in enumerate(names or []):
        try:
            if name.endswith(".py"):
                path = (Path(workdir) / name).resolve()
                if not path.exists():
                    raise FileNotFoundError(f"no such file {path}")
                module = f"slidescan_plugin_{path.stem}"
                loaded = sys.modules.get(module)
                if loaded is not None and Path(getattr(loaded, "__file__", "")).resolve() == path:
                    continue
                spec = importlib.util.spec_from_file_location(module, path)
                mod = importlib.util.module_from_spec(spec)
                sys.modules[module] = mod
                spec.loader.exec_module(mod)
            else:
                importlib.import_module(name)
        except Exception as err:
            raise ConfigError(f"{where}: plugins[{i}]: cannot import {name!r}: {type(err).__name__}: {err}") from err


def unaliased(value):
    """A copy in which no two keys share a dict or list (YAML anchors do, and defaults are filled in place)."""
    if isinstance(value, dict):
        return {k: unaliased(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unaliased(v) for v in value]
    return value


def validate(config: dict, source: str = "config", workdir: str | Path = ".") -> dict:
    """Import the config's plugins, then check ``config`` and fill in every default (in place)."""
    if not isinstance(config, dict):
        raise ConfigError(f"{source}: expected a mapping of keys, got {type(config).__name__}")
    for key in list(config):
        config[key] = unaliased(config[key])
    import_plugins(config.get("plugins") or [], workdir, source)
    _check(schema(), config, source)
    return config


def read_yaml(path: Path) -> dict:
    """A YAML file as a dict, with the file, line and column of a syntax error."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file {path} does not exist")
    try:
        loaded = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise ConfigError(f"{where}: YAML syntax error: {getattr(err, 'problem', None) or err}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: expected a mapping of keys, got {type(loaded).__name__}")
    return loaded


def deep_update(base: dict, new: dict) -> dict:
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            deep_update(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def load_config(workdir: str | Path, configfile: str | Path = DEFAULT_CONFIG) -> dict:
    """The config as the workflow sees it: the default file, overlaid by ``configfile``, validated."""
    workdir = Path(workdir)
    config = read_yaml(workdir / DEFAULT_CONFIG) if (workdir / DEFAULT_CONFIG).exists() else {}
    if Path(configfile) != DEFAULT_CONFIG:
        deep_update(config, read_yaml(workdir / configfile))
    return validate(config, source=str(configfile), workdir=workdir)


def load_settings(workdir: str | Path, configfile: str | Path = DEFAULT_CONFIG):
    from .settings import ScanSettings

    return ScanSettings.from_config(load_config(workdir, configfile), source=str(configfile), workdir=workdir)
