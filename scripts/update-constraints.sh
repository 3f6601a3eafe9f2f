#!/usr/bin/env bash
# Re-resolve every dependency (pyproject.toml's lower bounds, newest allowed) in a throw-away venv
# and write the exact versions to constraints.txt. Run the tests after, and commit both together.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet -e '.[test]'
{
  echo "# Exact versions CI, make, the demo and the benchmarks install (pip install -c constraints.txt ...)."
  echo "# pyproject.toml states the lower bounds; refresh this file with scripts/update-constraints.sh."
  "$work/venv/bin/pip" freeze --exclude-editable | grep -v '^ccproxy'
} > constraints.txt
