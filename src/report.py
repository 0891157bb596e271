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
                 "--package", "-p", "--experimental-rerun"}


def positional_dirs(argv: list[str]) -> list[str]:
    """Hydra's argv with bare arguments (no ``=``, not ``~key``/``+key``, not a flag or its value) moved into
    one ``dirs=[…]`` override; flags first, then every override together (argparse wants them contiguous)."""
    flags, overrides, dirs = [], [], []
    args = iter(argv[1:])
    for arg in args:
        if arg in _VALUED_FLAGS:
            flags += [arg, next(args, "")]
        elif arg.startswith("-"):
            flags.append(arg)
        elif arg.startswith(("~", "+")) or "=" in arg:
            overrides.append(arg)
        else:
            dirs.append(arg)
    if dirs:
        quoted = ",".join("'" + d.replace("\\", "\\\\").replace("'", "\\'") + "'" for d in dirs)
        overrides.append(f"dirs=[{quoted}]")
    return [argv[0], *flags, *overrides]


def check_layout_choice(argv: list[str]) -> None:
    """``layout=<name>`` must name a layout file of conf/report/layout (or of a ``--config-dir``'s
    ``layout/``): one line and exit 2, as for every other bad value, instead of Hydra's composition trace."""
    folders = [Path(__file__).resolve().parent.parent / "conf" / "report" / "layout"]
    folders += [Path(b) / "layout" for a, b in zip(argv, argv[1:]) if a in ("--config-dir", "-cd")]
    known = sorted({p.stem for f in folders for p in f.glob("*.yaml")})
    for arg in argv[1:]:
        if arg.startswith("layout=") and arg.split("=", 1)[1] not in known:
            _error(f"{arg} is not allowed; expected layout= one of {', '.join(known)}")


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
    check_layout_choice(sys.argv)
    main()
