#!/usr/bin/env bash
# Write the asv site from .asv/results into .asv/html, then finish it (scripts/asv-site.py): the
# JavaScript and CSS libraries asv loads from CDNs are shipped in .asv/html/vendor (so the site
# works offline: python -m asv preview, or GitHub Pages), and the commit links point to this
# repository. scripts/asv-local.sh, asv-history.sh and ci-benchmarks.sh end with it.
#   scripts/asv-publish.sh
set -euo pipefail
source "$(dirname "$0")/asv-common.sh"
"${asv[@]}" publish
"$python" scripts/asv-site.py .asv/html
echo "asv-publish: site in $PWD/.asv/html (view it with: $python -m asv preview)"
