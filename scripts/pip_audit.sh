#!/usr/bin/env bash
# Audit the locked dependencies against PyPI's vulnerability data (OSV, served by pypi.org's JSON
# API /pypi/<name>/<version>/json). Needs network access to pypi.org.
# Exit 1 if a vulnerability is found that is not accepted in deploy/SECURITY.md ("Accepted
# findings" table: a row "| `<ID>` | ... accepted ... |" becomes `--ignore-vuln <ID>`).
# --strict: a package that cannot be audited (advisory service unreachable, not on the index)
# fails the run instead of being skipped with "No known vulnerabilities found".
#   scripts/pip_audit.sh                 # audit requirements.lock
#   scripts/pip_audit.sh other.txt       # audit another requirements file
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
REQ=${1:-requirements.lock}
AUDIT="$VENV/bin/pip-audit"
[[ -x "$AUDIT" ]] || AUDIT=$(command -v pip-audit) || { echo "pip-audit not installed" >&2; exit 2; }

# Accepted advisories, each justified in deploy/SECURITY.md. Keep this list in sync with it.
IGNORES=()
while read -r id; do
  [[ -n "$id" ]] && IGNORES+=(--ignore-vuln "$id")
done < <(sed -n 's/^| *`\([A-Za-z0-9-]*\)` *|.*accepted.*$/\1/p' deploy/SECURITY.md 2>/dev/null || true)

# --require-hashes is not used: the lock pins versions (uv pip compile), not hashes.
# --disable-pip: resolve nothing, audit exactly the pinned versions of the lock.
exec "$AUDIT" -r "$REQ" --disable-pip --no-deps --vulnerability-service pypi --progress-spinner off --strict \
  --desc on --aliases on "${IGNORES[@]}"
