#!/usr/bin/env bash
# For maintainers: would the newest versions that pyproject.toml allows still work?
#
#   bash scripts/check_upgrades.sh            # resolve, install in a throw-away environment, run the tests
#   bash scripts/check_upgrades.sh --no-tests # only show which packages would move
#
# Compiles a candidate lock with `scripts/lock.sh --upgrade` (requirements.lock is not touched), prints
# every package whose pin would move, builds a new virtual environment from the candidate exactly as
# .ci/install does, runs `uv pip check` and the test suite in it, and ends with one verdict line.
# If it says OK: `cp <candidate> requirements.lock`, commit, done (README "Refreshing the lock").
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work/venv"' EXIT
candidate="$work/requirements.upgrade.lock"
bash "$root/scripts/lock.sh" --upgrade "$candidate" >/dev/null

python3 - "$root/requirements.lock" "$candidate" <<'PY'
import re, sys
def pins(path):
    out = {}
    for line in open(path):
        m = re.match(r"^([A-Za-z0-9_.\-\[\]]+)==([^\s;]+)\s*(;.*)?$", line.strip())
        if m:
            out[(m[1].lower(), (m[3] or "").strip())] = m[2]
    return out
old, new = pins(sys.argv[1]), pins(sys.argv[2])
moved = [(k, old.get(k), new.get(k)) for k in sorted(old.keys() | new.keys()) if old.get(k) != new.get(k)]
for (name, marker), a, b in moved:
    print(f"  {name:32s} {a or '-':>14s} -> {b or '-':<14s} {marker}")
print(f"{len(moved)} of {len(new)} pins would move")
PY
[ "${1:-}" = "--no-tests" ] && { echo "candidate lock: $candidate"; exit 0; }

mkdir "$work/tree"   # the checkout's files (tracked and new, not ignored ones such as .venv or outputs)
(cd "$root" && git ls-files -co --exclude-standard -z | xargs -0 tar -c) | tar -x -C "$work/tree"
cp "$candidate" "$work/tree/requirements.lock"
status=0
(bash "$work/tree/.ci/install" "$work/venv" > "$work/install.log" 2>&1) || status=$?
if [ $status -ne 0 ]; then
    tail -20 "$work/install.log"; echo "BROKEN: the newest allowed versions do not install (log: $work/install.log)"; exit 1
fi
(cd "$work/tree" && source "$work/venv/bin/activate" && python -m pytest -q -x -p no:cacheprovider) \
    > "$work/tests.log" 2>&1 || status=$?
tail -3 "$work/tests.log"
if [ $status -eq 0 ]; then
    echo "OK: the newest allowed versions pass the tests; candidate lock: $candidate"
else
    echo "BROKEN: tests fail with the newest allowed versions (log: $work/tests.log); pin the culprit in pyproject.toml"
    exit 1
fi
