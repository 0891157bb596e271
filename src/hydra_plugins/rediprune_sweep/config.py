"""Config nodes of the plugins, registered in Hydra's ConfigStore when Hydra scans this package."""
from dataclasses import dataclass
from typing import Dict, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf


@dataclass
class RayPoolLauncherConf:
    """All settings live in the root config's ``launch`` group (checked by its schema)."""

    _target_: str = "hydra_plugins.rediprune_sweep.ray_launcher.RayPoolLauncher"


@dataclass
class GridSweeperConf:
    _target_: str = "hydra_plugins.rediprune_sweep.grid_sweeper.GridSweeper"
    max_batch_size: Optional[int] = None  # BasicSweeper's argument; unused: every trial goes to the pool at once
    params: Optional[Dict[str, str]] = None  # extra sweep values, as BasicSweeper's


@dataclass
class OptunaSweeperConf:
    """All settings live in the root config's ``search`` group (sampler, n_trials, space, storage)."""

    _target_: str = "hydra_plugins.rediprune_sweep.optuna_sweeper.OptunaSweeper"


ConfigStore.instance().store(
    group="hydra/launcher", name="rediprune_ray", node=RayPoolLauncherConf, provider="rediprune"
)
ConfigStore.instance().store(
    group="hydra/sweeper", name="rediprune_grid", node=GridSweeperConf, provider="rediprune"
)
ConfigStore.instance().store(
    group="hydra/sweeper", name="rediprune_optuna", node=OptunaSweeperConf, provider="rediprune"
)


def _sweep_name_resolver(name, kind, overrides) -> str:  # type: ignore[no-untyped-def]
    from rediprune.sweep.naming import sweep_name

    return sweep_name(name, str(getattr(kind, "value", kind)), list(overrides or []))


# In the root config: hydra.sweep.dir: outputs/sweeps/${rediprune_sweep_name:${search.name},${search.kind},${hydra.overrides.task}}
# — the same command always lands in the same folder, so rerunning it resumes the sweep.
OmegaConf.register_new_resolver("rediprune_sweep_name", _sweep_name_resolver, replace=True)
