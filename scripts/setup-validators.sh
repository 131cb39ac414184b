#!/usr/bin/env bash
# Installs the alert payload validators that `cargo test -p entrawatch-alert --test render_validators`
# runs (docs/tooling.md §5), for a developer and for CI alike:
#   - the npm packages pinned in alert/tests/validators/package-lock.json (adaptivecards 3.0.6,
#     adaptivecards-templating 2.3.1, adaptive-expressions 4.23.3, jsdom 26.1.0, markdown-it 14.1.0),
#     with `npm ci` into alert/tests/validators/node_modules;
#   - slack_sdk 3.48.0 into a virtualenv at alert/tests/validators/.venv (works where pip may not
#     install into the system or user site, as on Debian 12).
# Both folders are git-ignored. Re-running is cheap and brings them back to the pinned versions.
# Needs node >= 18 with npm and python3 with venv; on Debian 12:
#   apt-get install -y --no-install-recommends nodejs npm python3 python3-venv
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR="$ROOT/alert/tests/validators"
SLACK_SDK_VERSION=3.48.0

need() {
    if ! command -v "$1" >/dev/null 2>&1; then
        echo "setup-validators: $1 not found; $2" >&2
        exit 1
    fi
}
need node "install Node.js 18 or newer (Debian: apt-get install -y nodejs npm)"
need npm "install npm (Debian: apt-get install -y npm)"
need python3 "install Python 3 with venv (Debian: apt-get install -y python3 python3-venv)"

echo "setup-validators: npm ci in $DIR"
(cd "$DIR" && npm ci --no-audit --no-fund --loglevel=error)

if [ ! -x "$DIR/.venv/bin/python" ]; then
    echo "setup-validators: creating virtualenv $DIR/.venv"
    python3 -m venv "$DIR/.venv"
fi
echo "setup-validators: pip install slack_sdk==$SLACK_SDK_VERSION into $DIR/.venv"
"$DIR/.venv/bin/python" -m pip install --quiet --disable-pip-version-check "slack_sdk==$SLACK_SDK_VERSION"

version() { node -p "require('$DIR/node_modules/$1/package.json').version"; }
echo "setup-validators: done"
echo "  node $(node --version), npm $(npm --version)"
echo "  adaptivecards $(version adaptivecards), adaptivecards-templating $(version adaptivecards-templating)," \
     "adaptive-expressions $(version adaptive-expressions), jsdom $(version jsdom), markdown-it $(version markdown-it)"
echo "  $("$DIR/.venv/bin/python" --version), slack_sdk $("$DIR/.venv/bin/python" -c 'import slack_sdk.version as v; print(v.__version__)')"
echo "  run: cargo test -p entrawatch-alert --test render_validators"
