"""The sweep engine behind ``python src/sweep.py -m …``: Hydra jobs on resident Ray workers, Optuna, W&B.

Usage::

    python src/sweep.py -m ratio=0.05,0.1,0.15 alpha=0,0.5,1      # grid (Hydra's -m values)
    python src/sweep.py -m search=pareto search.n_trials=24         # Optuna NSGA-II / TPE

One way through, one module per step: the Hydra plugins (``src/hydra_plugins/rediprune_sweep``) hand
job overrides to ``driver`` (compose, check, skip finished, record, report) → ``dispatch`` (Ray pool of
resident workers) → ``workers`` (actor: Hydra ``run_job`` with the loaded model kept) → ``trial`` (one
evaluation via ``rediprune.evaluation``, files in the job folder) → back to ``driver`` → ``store``
(``results.jsonl``) → ``tracking`` (W&B) → ``report``/``plots``/``pareto`` at the end. ``search`` is the
Optuna ask/tell loop; ``naming`` the sweep name and config hash that make reruns resume; ``cache`` the
on-disk feature cache the workers plug into their model adapters. Importing this package is cheap.
"""
