#!/usr/bin/env bash
# Sets up everything on a fresh machine (dev/provision.sh: ComfyUI 0.3.75, torch, the pack's and the
# tests' requirements, into .venv/ and .comfyui/), then runs every check: ruff lint, ruff format, pytest.
# Extra arguments go to pytest (e.g. bash dev/test.sh -k switch).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash dev/provision.sh >/dev/null
.venv/bin/python -m ruff check .
.venv/bin/python -m ruff format --check .
exec .venv/bin/python -m pytest "$@"
