"""``--help`` of the entry points, built from the composed config, the schemas and the pruner registry.

Hydra prints ``hydra.help.template`` for ``--help``; the root config sets it to
``${rediprune_help:${hydra:job.name}}`` and this resolver writes it for the command's own config
(``python src/sweep.py pruner=divprune --help`` shows what applies to DivPrune). Nothing is restated here:

- groups and their options: Hydra's config loader (the ``schema`` nodes are not options);
- each setting's default: the composed config; its meaning: the comment on its schema field;
- each hyperparameter's range, default and meaning: its row in ``rediprune.pruning.hyperparameters``;
  which pruners read it: each pruner's ``hyperparameters`` in ``rediprune.pruning``.

``src/evaluate.py --help`` lists only what one evaluation uses; ``src/sweep.py --help`` adds the sweep's
groups (search, launch, wandb).
"""
from __future__ import annotations

import dataclasses
import functools
import inspect
import io
import tokenize
from typing import Any

_USAGE = {
    "evaluate": "python src/evaluate.py [group=option ...] [key=value ...]     one pruned evaluation",
    "sweep": "python src/sweep.py -m [group=option,... ...] [key=value,... ...]   a sweep on resident Ray workers",
}


@functools.lru_cache(maxsize=None)
def field_comments(cls: type) -> dict[str, str]:
    """``{field: the comment on its line}`` of a dataclass, read from its source (what the code says)."""
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return {}
    fields = {f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else set()
    comments: dict[str, str] = {}
    line_field: dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.NAME and tok.string in fields and tok.start[1] == 4:
            line_field[tok.start[0]] = tok.string
        elif tok.type == tokenize.COMMENT and tok.start[0] in line_field:
            comments[line_field[tok.start[0]]] = tok.string.lstrip("# ").strip()
    return comments


def _schema_of(node: Any) -> type | None:
    """The dataclass a composed group node was checked against (its structured config type)."""
    from omegaconf import OmegaConf

    kind = OmegaConf.get_type(node)
    return kind if dataclasses.is_dataclass(kind) else None


def _options(group: str) -> list[str]:
    from hydra.core.global_hydra import GlobalHydra

    if not GlobalHydra.instance().is_initialized():
        return []
    return sorted(o for o in GlobalHydra.instance().config_loader().get_group_options(group) if o != "schema")


def _value(value: Any) -> str:
    value = getattr(value, "value", value)
    return "null" if value is None else str(value)


def _hyperparameter_lines(root: Any) -> list[str]:
    from rediprune.config import RunConfig
    from rediprune.pruning import available_pruners, get_pruner
    from rediprune.pruning.hyperparameters import HYPERPARAMETERS

    chosen = _value(root.pruner.name) if "pruner" in root else None
    lines = []
    for h in HYPERPARAMETERS:
        readers = [p for p in available_pruners() if h.name in get_pruner(p).hyperparameters]
        if chosen is not None and chosen not in readers:
            continue  # the chosen pruner never reads it
        where = "pruner " + ", ".join(readers) if readers else "no pruner"
        lines.append(f"  {h.name:<6} default {_value(root[h.name]):<6} {h.allowed()}; {h.help} ({where})")
    seed = field_comments(RunConfig).get("seed", "")
    lines.append(f"  {'seed':<6} default {_value(root['seed']):<6} an integer in [0, 2**32 - 1]; {seed} (every run)")
    return lines


def _group_lines(root: Any, group: str) -> list[str]:
    from omegaconf import DictConfig

    node = root[group]
    schema = _schema_of(node)
    comments = field_comments(schema) if schema is not None else {}
    lines = []
    for key in node.keys():
        child = node.get(key)
        value = "{…}" if isinstance(child, DictConfig) else child
        note = comments.get(str(key), "")
        lines.append(f"    {group}.{key} = {_value(value)}" + (f"    # {note}" if note else ""))
    return lines


def help_text(app: str, *, _root_: Any) -> str:
    """The help of ``app`` ("evaluate" or "sweep") for the composed config ``_root_``."""
    from omegaconf import DictConfig

    app = "sweep" if app == "sweep" else "evaluate"
    groups = [g for g in _root_ if g != "hydra" and isinstance(_root_.get(g), DictConfig)]  # the app's own config
    choices = _root_.hydra.runtime.choices if "hydra" in _root_ else {}
    out = ["ReDiPrune Sweep: visual-token pruning in LLaVA-style models, evaluated with lmms-eval", "",
           "usage: " + _USAGE[app], "",
           "Groups (group=option; * = this command's choice):"]
    for group in groups:
        options = _options(group)
        if options:
            current = choices.get(group)
            out.append(f"  {group:<9} " + ", ".join(o + ("*" if o == current else "") for o in options))
    out += ["", "Hyperparameters (top-level keys; a,b,c lists sweep them with sweep.py -m):"]
    out += _hyperparameter_lines(_root_)
    out += ["", "Settings of each group (key = this command's value  # meaning):"]
    for group in groups:
        out += _group_lines(_root_, group)
    out += ["", "Paths: cache_dir = " + _value(_root_.get("cache_dir")) + ", hf_home = " + _value(_root_.get("hf_home")),
            "A mistake exits with status 2 and one line naming the parameter, the value and what is allowed.",
            "Hydra's own flags: --hydra-help; the composed config: --cfg job"]
    return "\n".join(out).replace("$", "$$") + "\n"


__all__ = ["field_comments", "help_text"]
