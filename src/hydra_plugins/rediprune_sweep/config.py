"""Config node of the plugin, registered in Hydra's ConfigStore when Hydra scans this package."""
from dataclasses import dataclass
from typing import Dict, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf


@dataclass
class RediPruneSweeperConf:
    """The search settings are the sweep config's ``search`` group, the pool's its ``launch`` group."""

    _target_: str = "hydra_plugins.rediprune_sweep.sweeper.RediPruneSweeper"
    params: Optional[Dict[str, str]] = None  # values swept as if on the command line (a pinned sweep's grid)


ConfigStore.instance().store(group="hydra/sweeper", name="rediprune", node=RediPruneSweeperConf, provider="rediprune")


def _sweep_name_resolver(name, kind, overrides) -> str:  # type: ignore[no-untyped-def]
    from rediprune.sweep.naming import sweep_name

    return sweep_name(name, str(getattr(kind, "value", kind)), list(overrides or []))


# In conf/sweep.yaml: hydra.sweep.dir: outputs/sweeps/${rediprune_sweep_name:${search.name},${search.kind},${hydra.overrides.task}}
# — the same command always lands in the same folder, so rerunning it resumes the sweep.
OmegaConf.register_new_resolver("rediprune_sweep_name", _sweep_name_resolver, replace=True)
