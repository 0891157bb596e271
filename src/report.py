"""The paper's tables from sweep folders: Markdown, LaTeX and CSV with bootstrap intervals and paired tests.

Usage::

    python src/report.py outputs/sweeps/demo_table1 layout=table1
    python src/report.py outputs/sweeps/a outputs/sweeps/b layout=table4 stats.resamples=2000 out=/tmp/r
    python src/report.py outputs/sweeps/demo_table2 layout=types stats.test=wilcoxon

Positional arguments are sweep folders (each holding ``results.jsonl``); everything else is a Hydra
override of ``conf/report/report.yaml`` (``layout=`` picks a file of ``conf/report/layout/``). Writes
``<layout name>.md/.tex/.csv`` into ``out`` (default ``<first sweep folder>/reports``) and prints the
Markdown. Loads no model and starts no Ray; a rerun over the same folders writes identical files. A bad
value prints one line naming it and exits with status 2.
"""
from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from rediprune.reports.layout import FORMATS, ReportError, register_configs

register_configs()

_VALUED_FLAGS = {"--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd", "--cfg", "-c",
                 "--package", "-p", "--info", "--experimental-rerun"}


def positional_dirs(argv: list[str]) -> list[str]:
    """Move bare arguments (no ``=``, not ``~key``, a flag or a flag's value) into a ``dirs=[…]`` override."""
    keep, dirs, skip = [argv[0]], [], False
    for arg in argv[1:]:
        if skip:
            keep.append(arg)
            skip = False
        elif arg in _VALUED_FLAGS:
            keep.append(arg)
            skip = True
        elif arg.startswith(("-", "~", "+")) or "=" in arg:
            keep.append(arg)
        else:
            dirs.append(arg)
    if dirs:
        quoted = ",".join("'" + d.replace("\\", "\\\\").replace("'", "\\'") + "'" for d in dirs)
        keep.append(f"dirs=[{quoted}]")
    return keep


def _error(message: str) -> None:
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(2)


@hydra.main(config_path="../conf/report", config_name="report", version_base="1.3")
def main(cfg: DictConfig) -> None:
    from rediprune.reports import make_reports
    from rediprune.reports.layout import StatsConfig, check_stats, layout_from
    from rediprune.reports.render import markdown

    try:
        if not cfg.dirs:
            raise ReportError("dirs=[] is not allowed; expected sweep folders: python src/report.py <sweep dir>… layout=…")
        bad = [f for f in cfg.formats if f not in FORMATS]
        if bad:
            raise ReportError(f"formats={bad[0]!r} is not allowed; expected some of {', '.join(FORMATS)}")
        layout = layout_from(cfg.layout)
        stats = check_stats(OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(StatsConfig), cfg.stats)))
        made = make_reports(list(cfg.dirs), [layout], stats=stats, out=Path(cfg.out) if cfg.out else None,
                            formats=list(cfg.formats))
    except ReportError as exc:
        _error(str(exc))
    table = made.tables[layout.name]
    print(markdown(table))
    for fmt, path in made.paths[layout.name].items():
        print(f"wrote {path}")


if __name__ == "__main__":
    sys.argv = positional_dirs(sys.argv)
    main()
