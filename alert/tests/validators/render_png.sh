#!/usr/bin/env bash
# render_png.sh [OUT_DIR]: pictures the Teams card of each severity (info, low, medium, high,
# critical) and of a group of three as PNGs (default OUT_DIR: docs/cards), for the documentation.
# Not run by CI.
#
# How: the render_validators test renders its cases with ENTRAWATCH_CARDS_DIR set, so the pictures
# show exactly the bodies the validators accepted; each body goes into card_page.html, which renders
# it with the Adaptive Cards JS SDK (node_modules/adaptivecards/dist/adaptivecards.js) and markdown-it
# on a host config close to the Teams light theme; headless chromium measures the page (--dump-dom)
# and takes a 560-pixel-wide screenshot of that height.
#
# Needs: scripts/setup-validators.sh run once, cargo, and Debian's chromium
# (apt-get install -y chromium).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
OUT=${1:-$ROOT/docs/cards}
WIDTH=560
CHROMIUM=${CHROMIUM:-chromium}

command -v "$CHROMIUM" >/dev/null || { echo "render_png: $CHROMIUM not found (apt-get install -y chromium)" >&2; exit 1; }
[ -f "$HERE/node_modules/adaptivecards/dist/adaptivecards.js" ] || {
    echo "render_png: adaptivecards is not installed; run scripts/setup-validators.sh" >&2; exit 1; }

W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
mkdir -p "$OUT"

echo "render_png: rendering and validating the cards"
(cd "$ROOT" && ENTRAWATCH_CARDS_DIR="$W/cards" cargo test -q -p entrawatch-alert --test render_validators \
    rendered_payloads_pass_the_real_validators >/dev/null)

chrome() {
    "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --hide-scrollbars --force-device-scale-factor=1 --allow-file-access-from-files \
        --user-data-dir="$W/profile" "$@" 2>/dev/null
}

for name in info low medium high critical group; do
    case $name in
        group) card="$W/cards/teams/group-3.json" ;;
        *) card="$W/cards/teams/severity-$name.json" ;;
    esac
    # The page must sit next to node_modules for its relative script paths.
    page="$HERE/.card-$name.html"
    node -e '
        const fs = require("fs");
        const [tpl, card, out] = process.argv.slice(1);
        const body = fs.readFileSync(card, "utf8").replace(/</g, "\\u003c");
        fs.writeFileSync(out, fs.readFileSync(tpl, "utf8").replace("const CARD = null;", "const CARD = " + body + ";"));
    ' "$HERE/card_page.html" "$card" "$page"
    height=$(chrome --window-size=$WIDTH,2000 --dump-dom "file://$page" | sed -n 's/.*<title>HEIGHT:\([0-9]*\)<\/title>.*/\1/p')
    if [ -z "$height" ]; then
        rm -f "$page"
        echo "render_png: $name: the page did not render (no height)" >&2
        exit 1
    fi
    chrome --window-size=$WIDTH,"$height" --screenshot="$OUT/$name.png" "file://$page" >/dev/null
    rm -f "$page"
    echo "render_png: $OUT/$name.png (${WIDTH}x$height)"
done
