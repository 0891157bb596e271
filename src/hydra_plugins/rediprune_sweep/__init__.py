"""The Hydra plugin of ReDiPrune Sweep, discovered by Hydra's scan of the ``hydra_plugins`` namespace.

``hydra/sweeper: rediprune`` (selected by ``conf/sweep.yaml``) is one plugin that both sweeps and
launches: it expands the grid or runs the Optuna search, and runs each trial itself on resident Ray
workers, then writes the sweep's reports and finishes its W&B runs. It does not hand jobs to a Hydra
launcher (``hydra.launcher`` is unused), because a trial is started the moment any worker is free and
its result steers the search; the why, and the alternatives, are in ``rediprune.sweep``'s docstring.
Modules here import nothing heavy at import time: Hydra imports every plugin module at start-up.
"""
