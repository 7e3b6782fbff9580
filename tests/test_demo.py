"""The README's demo really runs: ComfyUI with the pack, the example workflow, images saved."""

import subprocess
import sys
from pathlib import Path

from harness import free_port

ROOT = Path(__file__).resolve().parents[1]


def test_demo_runs_the_example_workflow():
    done = subprocess.run(
        [sys.executable, str(ROOT / "dev" / "demo.py"), "--once", "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    night, day, empty = out.split("\nprompt ")[1:]
    assert "success" in night and "never ran (lazy): Soften day palette (expensive branch)" in night
    assert "never ran (lazy): Night palette (cheap branch)" in day
    for section in (night, day):
        saved = Path(section.split("saved: ")[1].splitlines()[0])
        assert saved.is_file() and saved.stat().st_size > 0
    assert "saved: nothing (the Gate was closed" in empty and "success" in empty
