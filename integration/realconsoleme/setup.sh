#!/usr/bin/env bash
# setup.sh CONSOLEME_SOURCE [INSTALL_DIR]
#
# Installs the real Netflix ConsoleMe for the tests, without root and without
# PyPI: copies ConsoleMe's source (unchanged) into INSTALL_DIR/consoleme, and
# writes INSTALL_DIR/site/: the import-only stubs (make_stubs.py), the real
# policy_sentry ARN parser (vendor/), and a consoleme-0.0.0.dist-info whose
# entry_points.txt is copied from ConsoleMe's own setup.py (ConsoleMe finds
# its plugins through pkg_resources entry points; `pip install -e .` would
# need setupmeta, which Debian does not package). Idempotent: run again, it
# makes a fresh copy.
#
#   CONSOLEME_SOURCE  a directory holding ConsoleMe's setup.py and consoleme/
#                     package (scripts/test-deps finds or clones it)
#   INSTALL_DIR       default: $REAL_CONSOLEME_HOME, else
#                     ${XDG_CACHE_HOME:-$HOME/.cache}/caddy-consoleme-auth/real-consoleme
#
# The Debian packages in debian-packages must be installed (scripts/test-deps
# installs them); this script only checks, and names the missing ones.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SRC="${1:?usage: setup.sh CONSOLEME_SOURCE [INSTALL_DIR]}"
INSTALL_DIR="${2:-${REAL_CONSOLEME_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/caddy-consoleme-auth/real-consoleme}}"
[ -f "$SRC/setup.py" ] && [ -d "$SRC/consoleme" ] || { echo "setup.sh: $SRC holds no ConsoleMe source (setup.py, consoleme/)" >&2; exit 1; }

missing=()
for p in $(grep -v '^#' "$HERE/debian-packages"); do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep 'install ok installed' >/dev/null || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup.sh: missing Debian packages (scripts/test-deps installs them): ${missing[*]}" >&2
  exit 1
fi

mkdir -p "$INSTALL_DIR"
# A fresh copy each time, so the installed tree always equals the source.
rm -rf "$INSTALL_DIR/consoleme"
mkdir -p "$INSTALL_DIR/consoleme"
cp -a "$SRC/setup.py" "$SRC/consoleme" "$INSTALL_DIR/consoleme/"
chmod -R u+w "$INSTALL_DIR/consoleme"

SITE="$INSTALL_DIR/site"
rm -rf "$SITE"
mkdir -p "$SITE"
/usr/bin/python3 "$HERE/make_stubs.py" "$SITE" >/dev/null
# The real policy_sentry ARN parser replaces its stub: /api/v2/get_roles (Weep's `list`) calls it.
cp "$HERE/vendor/policy_sentry/util/arns.py" "$SITE/policy_sentry/util/arns.py"
DI="$SITE/consoleme-0.0.0.dist-info"
mkdir -p "$DI"
printf 'Metadata-Version: 2.1\nName: consoleme\nVersion: 0.0.0\n' > "$DI/METADATA"
/usr/bin/python3 - "$INSTALL_DIR/consoleme/setup.py" "$DI/entry_points.txt" <<'PY'
import ast, sys
tree = ast.parse(open(sys.argv[1]).read())
ep = next(ast.literal_eval(k.value) for k in ast.walk(tree) if isinstance(k, ast.keyword) and k.arg == "entry_points")
with open(sys.argv[2], "w") as f:
    for group, items in ep.items():
        f.write(f"[{group}]\n" + "".join(i + "\n" for i in items) + "\n")
PY

# Smoke test: ConsoleMe's plugin lookup through those entry points.
PYTHONDONTWRITEBYTECODE=1 PYTHONPATH="$SITE:$INSTALL_DIR/consoleme" /usr/bin/python3 -c \
  "from consoleme.lib.plugins import get_plugin_by_name as g; g('default_config')" \
  || { echo "setup.sh: ConsoleMe does not import (see above)" >&2; exit 1; }
echo "setup.sh: the real ConsoleMe is installed in $INSTALL_DIR"
