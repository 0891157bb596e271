"""ReDiPrune Sweep: relevance-diversity visual-token pruning for LLaVA-style models, and sweeps over it.

Layers, each knowing only the one below: ``pruning`` (algorithms, no models) → ``models`` (transformers
adapters) → ``evaluation`` (lmms-eval bridge, metrics) → ``sweep`` (Hydra, Ray, Optuna, W&B).
``flops`` is the paper's analytic cost model; ``config`` holds the structured configs of ``conf/``.
"""

__version__ = "0.1.0"
