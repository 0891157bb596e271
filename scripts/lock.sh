#!/usr/bin/env bash
# Compiles requirements.lock from pyproject.toml with uv.
#
#   bash scripts/lock.sh                       # after editing pyproject: add what changed, keep every other pin
#   bash scripts/lock.sh --upgrade [OUT]       # the newest versions the ranges allow today (check_upgrades.sh)
#
# uv resolves for every platform and Python that pyproject allows (--universal), with the lmms-eval and
# CPU-torch metadata declared in pyproject's [tool.uv]. Needs uv (the dev extra installs it).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
upgrade=()
if [ "${1:-}" = "--upgrade" ]; then upgrade=(--upgrade); shift; fi
out="${1:-$root/requirements.lock}"
[ "$out" = "$root/requirements.lock" ] || [ ! -f "$root/requirements.lock" ] || [ ${#upgrade[@]} -gt 0 ] \
    || cp "$root/requirements.lock" "$out"   # start from the current pins
uv="$(command -v uv || echo "$root/.venv/bin/uv")"
cd "$root"
"$uv" pip compile pyproject.toml --extra dev --extra video --extra postgres --universal --python-version 3.11 \
    "${upgrade[@]}" --no-header --quiet -o "$out"
echo "$(grep -cE '^[a-z0-9]' "$out") pinned packages -> $out"
