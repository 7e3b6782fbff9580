#!/usr/bin/env bash
# Sets up everything on a fresh machine (dev/provision.sh), then starts ComfyUI with Quality Gate, runs the
# retry-until-quality example on a cached random-weight checkpoint (built on the first run) and keeps the web UI
# up with the examples in the template browser. Extra arguments go to dev/demo.py (--port N, --once).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash dev/provision.sh >/dev/null
exec .venv/bin/python dev/demo.py "$@"
