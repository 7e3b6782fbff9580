"""The README's demo really runs: ComfyUI with the pack, the retry-until-quality example through the pack's client
on the random-weight checkpoint, attempts shown as they finish, the best image and its scores saved, the examples
listed in the template browser."""

import json
import subprocess
import sys
from pathlib import Path

from harness import free_port
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def test_demo_runs_the_retry_example_and_lists_the_examples():
    done = subprocess.run(
        [sys.executable, str(ROOT / "dev" / "demo.py"), "--once", "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert "random-weight SD15 checkpoint" in out and "status: success" in out
    live = [line for line in out.splitlines() if line.startswith("  attempt ") and "/4: seed" in line]
    assert live and live[0].startswith("  attempt 1/4: seed 42")
    image = Path(out.split("best image: ")[1].splitlines()[0])
    assert Image.open(image).size == (128, 128)
    scores = json.loads(Path(out.split("its scores: ")[1].splitlines()[0]).read_text())
    assert len(scores["attempts"]) == len(live) and scores["best"] in scores["attempts"]
    assert f"passed the threshold 7.05: {scores['best']['score'] >= 7.05}" in out
    examples = out.split("template browser")[1]
    for name in (ROOT / "example_workflows").glob("*.json"):
        assert name.stem in examples
