"""The sweep engine behind ``python src/sweep.py -m …``: Hydra jobs on resident Ray workers, Optuna, W&B.

Usage::

    python src/sweep.py -m ratio=0.05,0.1,0.15 alpha=0,0.5,1      # grid (Hydra's -m values)
    python src/sweep.py -m search=pareto search.n_trials=24         # Optuna NSGA-II / TPE

One way through, one module per step: the Hydra sweeper (``src/hydra_plugins/rediprune_sweep``) hands
the command's overrides to ``grid`` (every combination) or ``search`` (Optuna ask/tell), which hand job
overrides to ``driver`` (compose, check, skip finished, record, report) → ``dispatch`` (Ray pool of
resident workers) → ``workers`` (actor: Hydra ``run_job`` with the loaded model kept) → ``trial`` (one
evaluation via ``rediprune.evaluation``, files in the job folder) → back to ``driver`` → ``store``
(``results.jsonl``) → ``tracking`` (W&B) → ``summary`` at the end, with the overview files and paper
tables of ``rediprune.reports``, which read results and know no engine. ``config`` is the sweep's config
(the evaluation's plus ``search``/``launch``/``wandb``; a trial gets the evaluation's part only);
``naming`` the sweep name and config hash that make reruns resume; ``preflight`` the checks against this
machine; ``inert`` the notes on idle swept values; ``study`` the Optuna study several drivers share;
``reaper`` the clean-up of a killed driver's Ray. The feature and answer caches a resident worker plugs
into its model adapter are ``rediprune.evaluation.cache``. Importing this package is cheap.

Design: why resident Ray actors and one Hydra plugin (a decision to revisit when the alternatives change)
---------------------------------------------------------------------------------------------------
What a sweep needs: a 7B model loaded once per worker, not once per trial; a new trial started the moment
any worker is free (an Optuna search is steered by each result); every trial a Hydra job (composed
config, ``.hydra/``, its folder, ``config.yaml``) so ``evaluate.py`` and a sweep share ``conf/``; resume
by rerunning the same command; a study several drivers can share.

- **hydra-ray-launcher** (Hydra's published Ray launcher) would give Hydra's launcher contract for free,
  usable under any sweeper. It costs the model load per trial: it runs each job as a Ray *task*, and Ray
  gives a GPU task a fresh worker process each time (``max_calls=1`` for GPU tasks), so every trial reloads
  the model; and Hydra's ``Launcher.launch(batch)`` returns only when the whole batch has finished, so a
  search waits for its slowest trial before asking the next.
- **Ray Tune** (``Tuner`` with ``TuneConfig(reuse_actors=True)``, ``OptunaSearch(metric=[…], mode=[…],
  storage=…, study_name=…)``, ``Tuner.restore``) would give scheduling, fault tolerance, actor reuse,
  a multi-objective Optuna searcher on an RDB storage, resume and a W&B logger callback — much of
  ``dispatch``, ``search`` and ``study``. It costs the Hydra side: a trial becomes a Tune trial (Tune's
  experiment folder, trial names and result files, not a Hydra job folder composed from ``conf/``), each
  trial's config would be composed by hand inside the trainable, resume goes through Tune's experiment
  state (``Tuner.restore``) instead of "same command, finished trials skipped by config hash", and the
  resident model would live in a module-level global of a reused actor that Tune does not promise to
  keep (``reset_config`` is its only hook). A grid over Hydra's command-line values would be translated into
  Tune's ``grid_search``, and the per-trial W&B runs keyed by config hash into Tune's logger's naming.
- **Chosen**: plain Ray actors (``dispatch``/``workers``), each running Hydra's public ``run_job`` on a job
  config the driver composed with Hydra's config loader, and one Hydra *sweeper* plugin that also launches
  (honestly named: ``hydra/sweeper: rediprune``; there is no launcher to swap in, and ``hydra/sweeper`` or
  ``hydra/launcher`` overrides are refused by ``sweep.py``). Optuna is used as its authors describe for
  distributed ask/tell (RDB storage, heartbeats, ``RetryHeartbeatStaleTrialCallback``). Hand-written are the
  pool (about 270 lines), the result store and the resume-by-hash, which none of the three does for Hydra
  jobs. Revisit if Ray Tune gains a Hydra job runner, or if a maintained Hydra launcher keeps actors
  resident and hands out one job at a time.
"""
