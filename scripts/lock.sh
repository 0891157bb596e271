#!/usr/bin/env bash
# Recompiles requirements.lock from pyproject.toml: the newest versions its ranges allow today.
#
#   bash scripts/lock.sh                  # rewrite requirements.lock (then run scripts/check_upgrades.sh)
#   bash scripts/lock.sh OUT.lock         # write elsewhere (check_upgrades.sh does this)
#
# uv resolves for every platform and Python that pyproject allows (--universal), with the lmms-eval and
# CPU-torch metadata declared in pyproject's [tool.uv]. Needs uv (in the dev extra).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${2:-${1:-$root/requirements.lock}}"
uv="$(command -v uv || echo "$root/.venv/bin/uv")"
cd "$root"
"$uv" pip compile pyproject.toml --extra dev --extra video --universal --python-version 3.11 \
    --upgrade --no-header --quiet -o "$out"
echo "$(grep -cE '^[a-z0-9]' "$out") pinned packages -> $out"
