#!/usr/bin/env bash
# Audit the locked dependencies against PyPI's vulnerability data (OSV, served by pypi.org's JSON
# API /pypi/<name>/<version>/json). Needs network access to pypi.org.
# Exit 1 if a vulnerability is found that is not accepted in deploy/SECURITY.md ("Accepted
# findings" table: a row "| `<ID>` | ... accepted ... |" becomes `--ignore-vuln <ID>`).
# --strict: a package that cannot be audited (advisory service unreachable, not on the index)
# fails the run instead of being skipped with "No known vulnerabilities found". Before that, a
# preflight request checks that the vulnerability data is reachable at all; if it is not, the run
# prints "AUDIT NOT RUN" and exits 3: nothing was audited, and that is never reported as a pass.
# PIP_AUDIT_PROBE_BASE overrides the probed API root (tests point it at a closed local port).
#   scripts/pip_audit.sh                 # audit requirements.lock
#   scripts/pip_audit.sh other.txt       # audit another requirements file
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
REQ=${1:-requirements.lock}
AUDIT="$VENV/bin/pip-audit"
[[ -x "$AUDIT" ]] || AUDIT=$(command -v pip-audit) || { echo "pip-audit not installed" >&2; exit 2; }
PYTHON="$VENV/bin/python"
[[ -x "$PYTHON" ]] || PYTHON=$(command -v python3)

# Accepted advisories, each justified in deploy/SECURITY.md. Keep this list in sync with it.
IGNORES=()
while read -r id; do
  [[ -n "$id" ]] && IGNORES+=(--ignore-vuln "$id")
done < <(sed -n 's/^| *`\([A-Za-z0-9-]*\)` *|.*accepted.*$/\1/p' deploy/SECURITY.md 2>/dev/null || true)

# Preflight: ask the API for the first pinned version of the lock. pip-audit needs, for every
# package, a JSON answer with a "vulnerabilities" field; without one nothing can be audited.
PROBE='
import json, re, sys, urllib.request
lock, base = sys.argv[1], sys.argv[2].rstrip("/")
name, version = re.search(r"^([A-Za-z0-9._-]+)==([^\s;\\]+)", open(lock).read(), re.M).groups()
url = f"{base}/{name}/{version}/json"
try:
    with urllib.request.urlopen(url, timeout=20) as response:
        payload = json.load(response)
except Exception as exc:  # HTTP error, DNS failure, refused connection, not JSON
    sys.exit(f"{url}: {exc}")
if "vulnerabilities" not in payload:
    sys.exit(f"{url}: answered without a vulnerabilities field")
'
if ! probe=$("$PYTHON" -c "$PROBE" "$REQ" "${PIP_AUDIT_PROBE_BASE:-https://pypi.org/pypi}" 2>&1); then
  {
    echo "AUDIT NOT RUN: no vulnerability data is reachable from here."
    echo "  probe: $probe"
    echo "  Nothing was audited; this is not a pass. Run 'make audit' where pypi.org's per-version"
    echo "  JSON API answers and record the result in deploy/SECURITY.md (Dependency audit)."
  } >&2
  exit 3
fi

# --disable-pip: resolve nothing, audit exactly the pinned versions of the lock (its hashes are
# verified where it is installed: make setup, the image build).
exec "$AUDIT" -r "$REQ" --disable-pip --no-deps --vulnerability-service pypi --progress-spinner off --strict \
  --desc on --aliases on "${IGNORES[@]}"
