#!/usr/bin/env python3
"""``python client/quality_gate_client.py ...``: the client's command line from any folder (the same as
``python -m client ...`` from the folder above ``client/``); see ``client/__init__.py``."""

import sys
from pathlib import Path

if __name__ == "__main__":
    # This folder is on the path as a script's own; the package's modules must be found as ``client.*`` instead.
    sys.path[0] = str(Path(__file__).resolve().parents[1])
    from client.cli import main

    sys.exit(main())
