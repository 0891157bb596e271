"""Hydra plugins of ReDiPrune Sweep, discovered by Hydra's scan of the ``hydra_plugins`` namespace.

``hydra/launcher: rediprune_ray`` runs a batch of jobs on a pool of resident Ray workers;
``hydra/sweeper: rediprune_grid`` (Hydra's grid, reported as one sweep) and
``hydra/sweeper: rediprune_optuna`` (ask/tell multi-objective search) run through it. They are thin:
the engine is ``rediprune.sweep``. Modules here import nothing heavy at import time, because Hydra
imports every plugin module of every app at start-up.
"""
