"""Credentials are never written: a config holding one is refused before Hydra writes anything.

Registered in ``conf/config.yaml`` under ``hydra.callbacks``, so it runs for ``src/evaluate.py`` and
``src/sweep.py`` alike::

    hydra:
      callbacks:
        refuse_secrets:
          _target_: rediprune.config.secrets.RefuseSecrets

Hydra saves the composed config and the command's overrides (``multirun.yaml``, ``.hydra/``) before any
of our code runs, and everything a run depends on is saved with its results; so a password given in a
URL would reach a dozen files. Redacting each writer is fragile (Hydra escapes ``:`` in grid overrides,
so a URL parser no longer sees a URL), hence the rule: a URL with a password (``scheme://user:pw@host``)
anywhere in the config or the overrides stops the run with exit status 2 and one line, in
``on_run_start``/``on_multirun_start`` — before Hydra creates the run or sweep folder. Credentials go
where their driver reads them: for PostgreSQL, ``~/.pgpass`` (``host:port:db:user:password``, mode
0600); for W&B, ``wandb login`` (``~/.netrc``). Hydra has no secret store of its own; this is the check.
"""
from __future__ import annotations

import re
import sys
from typing import Any, Iterator

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

CONFIG_ERROR_EXIT = 2

# scheme://user:password@  (the password part non-empty; user may be empty, as in redis://:pw@host)
_CREDENTIAL_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s/@:]*:[^\s/@]+@")


def _strings(node: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _strings(value, f"{path}[{index}]")
    elif isinstance(node, str):
        yield path, node


def credential_keys(cfg: DictConfig) -> list[str]:
    """Config keys (or ``override <text>`` for command-line overrides) whose value holds a password URL."""
    found = []
    for path, text in _strings(OmegaConf.to_container(cfg, resolve=False), ""):
        # Hydra escapes ':' and other characters inside override values (postgresql://u\:pw@h)
        if _CREDENTIAL_URL.search(text.replace("\\", "")):
            if path.startswith("hydra.overrides."):
                key = text.split("=", 1)[0].lstrip("+~")
                found.append(key)
            elif not path.startswith("hydra.job.override_dirname"):
                found.append(path)
    return sorted(set(found))


def refuse_credentials(cfg: DictConfig) -> None:
    keys = credential_keys(cfg)
    if not keys:
        return
    print(
        f"error: {', '.join(keys)}: holds a URL with a password, which would be written into the run's "
        "records; give the URL without it (postgresql://user@host:5432/db) and put the password where the "
        "driver reads it (~/.pgpass for PostgreSQL, mode 0600; `wandb login` for W&B)",
        file=sys.stderr, flush=True,
    )
    raise SystemExit(CONFIG_ERROR_EXIT)


class RefuseSecrets(Callback):
    """Hydra callback: stop a run or sweep whose config holds a credential, before anything is written."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        refuse_credentials(config)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        refuse_credentials(config)


__all__ = ["RefuseSecrets", "credential_keys", "refuse_credentials"]
