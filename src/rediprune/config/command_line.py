"""Check a command line against the config before Hydra runs it: one clear line and exit 2 on a mistake.

Usage (the entry points, before calling their ``@hydra.main`` function)::

    check_command_line(sys.argv[1:], app="sweep", config_dir=REPO / "conf")

Hydra reports its own composition errors (an unknown group option, an unknown key, a value of the wrong
type, a parse error) as several lines of text and exit status 1, with no "did you mean"; and some
mistakes it does not report at all (``+alhpa=0.5`` adds a key nobody reads, ``pruner=schema`` picks a
group's schema node). This module composes the same config with Hydra's public Compose API
(``hydra.initialize_config_dir`` + ``hydra.compose``) before Hydra's own ``main`` does, for every value of
every override, and turns each failure into ``error: <parameter>=<value> is not allowed; expected …`` with
a ``difflib`` suggestion for names. It parses overrides with Hydra's own parser, so the grammar is Hydra's.

Range checks of the values (``ratio=2``) stay in the schemas' ``__post_init__`` (``rediprune.config.load``),
which both entry points run before anything starts; this module only makes sure the config composes.
"""
from __future__ import annotations

import difflib
import sys
from pathlib import Path
from typing import Any, Iterable, NoReturn, Sequence

CONFIG_ERROR_EXIT = 2
# Hydra flags that print something and run nothing: left to Hydra unchecked.
_INFO_FLAGS = ("-h", "--help", "--hydra-help", "--version", "-c", "--cfg", "-i", "--info", "-sc",
               "--shell-completion", "-p", "--package", "--resolve", "--experimental-rerun")
# A config path relative to the app: the check then defers to Hydra (--config-dir/--config-name are followed).
_CONFIG_FLAGS = ("-cp", "--config-path")
_SCHEMA = "schema"  # the name each group's structured schema is stored under (rediprune.config); not a choice
_MISSING = object()


class CommandLineError(ValueError):
    """A mistake on the command line, as one line naming the parameter, the value and what is allowed."""


def fail(message: str) -> NoReturn:
    """Print ``error: message`` on one line and exit with status 2 (nothing ran)."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(CONFIG_ERROR_EXIT)


def did_you_mean(value: object, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices`` (case-insensitive), or ``""``."""
    choices = [str(c) for c in choices]
    lowered = {c.lower(): c for c in choices}
    typed = str(value).lower()
    longer = [c for c in lowered if c.startswith(typed)]  # a name cut short: search.skip -> skip_finished
    close = longer if len(longer) == 1 else difflib.get_close_matches(typed, list(lowered), n=1, cutoff=0.6)
    return f" (did you mean '{lowered[close[0]]}'?)" if close else ""


def choices_text(choices: Sequence[str]) -> str:
    return "one of " + ", ".join(str(c) for c in choices)


def _split(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    flags, overrides = [], []
    skip_next = False
    for arg in argv:
        if skip_next:
            flags.append(arg)
            skip_next = False
        elif arg.startswith("-") and "=" in arg:  # --config-name=x
            flags.extend(arg.split("=", 1))
        elif arg.startswith("-"):
            flags.append(arg)
            skip_next = arg in ("-c", "--cfg", "-p", "--package", "-cp", "--config-path", "-cn", "--config-name",
                                "-cd", "--config-dir", "--experimental-rerun")
        else:
            overrides.append(arg)
    return flags, overrides


def _parse(text: str) -> Any:
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    try:
        return OverridesParser.create().parse_overrides([text])[0]
    except OverrideParseException as exc:
        key, _, value = text.partition("=")
        hint = str(exc).splitlines()[0]
        raise CommandLineError(
            f"{key}={value!r} is not allowed; expected key=value, a comma list without empty items "
            f"(key=a,b), or range(…)/choice(…)/interval(…) (Hydra's parser: {hint})"
        ) from None


def _render(override: Any, value: str) -> str:
    """``override`` with one value (Hydra's grammar), keeping its +/++/@package."""
    prefix = "++" if override.is_force_add() else "+" if override.is_add() else ""
    package = f"@{override.package}" if override.package else ""
    return f"{prefix}{override.key_or_group}{package}={value}"


def _values(override: Any) -> list[str]:
    """The value strings an override stands for (each value of a list or range sweep)."""
    if override.is_delete():
        return []
    if override.is_sweep_override():
        if override.is_interval_sweep():
            return []
        return [str(v) for v in override.sweep_string_iterator()]
    return [override.get_value_string()]


def _first(overrides: Sequence[Any]) -> list[str]:
    """Each override with its first value: one config that stands for the whole sweep."""
    out = []
    for override in overrides:
        if override.is_delete():
            out.append(override.input_line)
            continue
        values = _values(override)
        if values:
            out.append(_render(override, values[0]))
    return out


def _yaml_error(exc: BaseException) -> str | None:
    import yaml

    seen: set[int] = set()
    node: BaseException | None = exc
    while node is not None and id(node) not in seen:
        seen.add(id(node))
        if isinstance(node, yaml.MarkedYAMLError) and node.problem_mark is not None:
            mark = node.problem_mark
            return f"{mark.name}:{mark.line + 1}: invalid YAML ({node.problem}); expected a valid YAML config file"
        node = node.__cause__ or node.__context__
    return None


def _allowed_from(msg: str) -> str:
    """What OmegaConf's validation message says is allowed, in this project's words."""
    import re

    enum = re.search(r"expected one of \[(.*?)\]", msg)
    if enum:
        return choices_text([c.strip() for c in enum.group(1).split(",")])
    for kind, words in (("Float", "a number"), ("Integer", "an integer"), ("Boolean", "true or false")):
        if f"converted to {kind}" in msg:
            return words
    return msg.splitlines()[0]


def explain(exc: BaseException, overrides: Sequence[str]) -> str:
    """One line for a Hydra/OmegaConf composition error, naming the override that caused it."""
    from hydra.errors import MissingConfigException
    from omegaconf.errors import OmegaConfBaseException

    yaml_text = _yaml_error(exc)
    if yaml_text:
        return yaml_text
    if isinstance(exc, MissingConfigException) and exc.missing_cfg_file and "/" in str(exc.missing_cfg_file):
        group, _, name = str(exc.missing_cfg_file).rpartition("/")
        options = [o for o in (exc.options or []) if o != _SCHEMA]
        return f"{group}={name!r} is not allowed; expected {choices_text(options)}{did_you_mean(name, options)}"
    if isinstance(exc, MissingConfigException) and exc.missing_cfg_file:
        return (f"--config-name={str(exc.missing_cfg_file)!r} is not allowed; expected the name of a YAML file in "
                "--config-dir (such as sweeps/) or conf/")
    cause = exc.__cause__ if isinstance(exc.__cause__, OmegaConfBaseException) else exc
    full_key = getattr(cause, "full_key", None)
    msg = getattr(cause, "msg", None) or str(cause)
    if full_key:
        values = [v for k, _, v in (o.partition("=") for o in overrides) if k.lstrip("+~").split("@")[0] == full_key]
        if values:
            return f"{full_key}={values[-1]!r} is not allowed; expected {_allowed_from(str(msg))}"
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return "; ".join(lines[:2]) if lines else type(exc).__name__


def _leaf_names(node: Any, prefix: str) -> list[str]:
    from omegaconf import DictConfig, OmegaConf

    names = []
    for key in node.keys():
        if str(key) == "hydra":
            continue
        child = OmegaConf.select(node, str(key), default=None, throw_on_missing=False)
        is_dict = isinstance(child, DictConfig)
        names.append(f"{prefix}{key}" + (".…" if is_dict else ""))
    return names


def _check_key(cfg: Any, override: Any) -> None:
    """An override's key must exist in the composed config (``+key`` only where the schema takes new keys)."""
    from omegaconf import DictConfig, OmegaConf

    key = str(override.key_or_group)
    value = override.get_value_string() if not override.is_delete() else None
    present = OmegaConf.select(cfg, key, default=_MISSING, throw_on_missing=False) is not _MISSING
    if present or override.is_delete():
        return
    parent_key, _, leaf = key.rpartition(".")
    parent = cfg if not parent_key else OmegaConf.select(cfg, parent_key, default=None, throw_on_missing=False)
    if override.is_add() or override.is_force_add():
        # a free-form mapping (search.space) takes new keys; a schema's fields are fixed
        if isinstance(parent, DictConfig) and OmegaConf.get_type(parent) is dict and parent_key:
            return
    # the deepest existing parent and its keys, for "expected" and "did you mean"
    parts = key.split(".")
    depth = len(parts) - 1
    node: Any = cfg
    for i, part in enumerate(parts[:-1]):
        child = OmegaConf.select(node, part, default=None, throw_on_missing=False) if isinstance(node, DictConfig) else None
        if not isinstance(child, DictConfig):
            depth = i
            break
        node = child
    prefix = ".".join(parts[:depth]) + ("." if depth else "")
    names = [n for n in _leaf_names(node, prefix)]
    plain = [n.removesuffix(".…") for n in names]
    shown = f"{override.input_line.split('=', 1)[0]}={value}" if value is not None else key
    raise CommandLineError(
        f"{shown} is not allowed; {key!r} is not a parameter of this config; expected {choices_text(names)}"
        f"{did_you_mean(key, plain)}"
    )


def _is_grid(cfg: Any) -> bool:
    from omegaconf import OmegaConf

    kind = OmegaConf.select(cfg, "search.kind", default=None, throw_on_missing=False)
    return str(getattr(kind, "value", kind)) != "pareto"


def check_overrides(overrides: Sequence[str], *, app: str, multirun: bool, config_dir: Path,
                    config_name: str = "config", extra_dir: str | None = None) -> None:
    """Raise CommandLineError for the first mistake in ``overrides`` (see the module docstring)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    parsed = [_parse(text) for text in overrides]
    if not multirun:
        for override in parsed:
            if override.is_sweep_override():
                hint = ("python src/sweep.py -m " + override.input_line) if app == "evaluate" else "add -m"
                raise CommandLineError(f"{override.input_line} is not allowed without -m (several values); "
                                       f"expected one value, or a sweep: {hint}")
    GlobalHydra.instance().clear()
    primary = Path(extra_dir) if extra_dir is not None else config_dir
    with initialize_config_dir(config_dir=str(primary.resolve()), version_base="1.3", job_name=app):

        # --config-dir: its folder holds the primary config (a pinned sweep), conf/ stays searched
        searchpath = [] if extra_dir is None else [f"hydra.searchpath=[file://{config_dir.resolve()}]"]

        def composed(items: Sequence[Any], extra: Sequence[str] = ()) -> Any:
            lines = searchpath + _first(items) + list(extra)
            try:
                return compose(config_name, overrides=lines, return_hydra_config=True)
            except Exception as exc:  # noqa: BLE001 - Hydra/OmegaConf/YAML composition errors, explained
                raise CommandLineError(explain(exc, lines)) from None

        hydra_items = [o for o in parsed if o.is_hydra_override() or str(o.key_or_group).startswith("hydra/")]
        base = composed(hydra_items)
        groups = {str(g) for g in base.hydra.runtime.choices.keys()}
        taken = {id(o) for o in hydra_items}
        group_items = [o for o in parsed if id(o) not in taken and (str(o.key_or_group) in groups or o.package)]
        taken |= {id(o) for o in group_items}
        loader = GlobalHydra.instance().config_loader()
        for override in group_items:
            known = loader.get_group_options(str(override.key_or_group))
            for value in _values(override):
                if value == _SCHEMA:
                    options = [o for o in known if o != _SCHEMA]
                    raise CommandLineError(f"{override.key_or_group}={value!r} is not allowed; expected "
                                           f"{choices_text(options)}")
                if value not in known:  # Hydra says what is missing (and finds --config-dir/searchpath options)
                    composed(hydra_items, [_render(override, value)])
        cfg = composed(hydra_items + group_items)
        key_items = [o for o in parsed if id(o) not in taken]
        for override in key_items:
            _check_key(cfg, override)
            if override.is_interval_sweep() and (app != "sweep" or _is_grid(cfg)):
                raise CommandLineError(
                    f"{override.input_line} is not allowed in a grid; expected values (a,b), range(…) or "
                    f"choice(…); interval(…) is a range for search=pareto"
                )
        # every value of every override, each in a config with the first value of all the others
        composed(parsed)
        for override in parsed:
            if override.is_sweep_override() and not override.is_interval_sweep():
                others = [o for o in parsed if o is not override]
                for value in _values(override)[1:]:
                    composed(others, [_render(override, value)])


def check_command_line(argv: Sequence[str], *, app: str, config_dir: Path, config_name: str = "config") -> None:
    """Check ``argv`` as Hydra will read it; print one line and exit 2 on a mistake (see module doc).

    ``app`` is ``"evaluate"`` (one evaluation: ``-m`` is refused, pointing to sweep.py) or ``"sweep"``
    (``-m`` is required, so every trial goes through the sweeper, which writes the reports and W&B runs).
    """
    flags, overrides = _split(argv)
    if any(f in _INFO_FLAGS or f.startswith(("--cfg=", "--info=")) for f in flags):
        return
    if any(f in _CONFIG_FLAGS for f in flags):
        return  # another config: Hydra composes and reports it
    multirun = "-m" in flags or "--multirun" in flags
    extra_dir = None
    for i, flag in enumerate(flags[:-1]):  # --config-dir/--config-name as Hydra reads them (a pinned sweep)
        if flag in ("-cn", "--config-name"):
            config_name = flags[i + 1]
        elif flag in ("-cd", "--config-dir"):
            extra_dir = flags[i + 1]
    if extra_dir is not None and any(o.startswith("hydra.searchpath") for o in overrides):
        return  # both: Hydra merges them its own way
    for override in overrides:  # sweep.py runs its trials with its own sweeper (reports, W&B); no other
        key = override.split("=", 1)[0].lstrip("+~")
        if app == "sweep" and key in ("hydra/sweeper", "hydra/launcher"):
            fail(f"{override} is not allowed; expected sweep.py's own sweeper (search=grid or search=pareto; "
                 "launch=local or launch=cluster for where trials run)")
    if app == "sweep" and not multirun:  # every trial of a sweep goes through its sweeper: reports, W&B
        shown = " ".join(overrides)
        fail(f"src/sweep.py without -m is not allowed; expected python src/sweep.py -m {shown} (a sweep of one or "
             f"more trials, with reports) or python src/evaluate.py {shown} (one evaluation)".replace("  ", " "))
    if app == "evaluate" and multirun:
        fail("-m is not allowed with src/evaluate.py (one evaluation); expected python src/sweep.py -m "
             + " ".join(overrides) + " for a sweep over several values")
    try:
        check_overrides(overrides, app=app, multirun=multirun, config_dir=config_dir, config_name=config_name,
                        extra_dir=extra_dir)
    except CommandLineError as exc:
        fail(str(exc))


__all__ = ["CommandLineError", "check_command_line", "check_overrides", "did_you_mean", "explain", "fail"]
