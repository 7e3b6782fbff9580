"""Demo: ComfyUI 0.3.75 with Quality Gate, the retry-until-quality example run through the pack's client, and the
web UI left up with every example in the template browser.

Runs ``example_workflows/api/retry_until_quality.json`` (sample, decode, technical score, up to 4 seeds until the
score reaches the threshold) on a small random-weight SD 1.5 checkpoint: no download, so the images are noise, but
sampling, decoding, scoring and the loop run for real. The checkpoint is built once (about 10 s, 466 MB) into
``.qg-cache/`` and linked into the demo's ComfyUI. Prints every attempt's score, where the best image and its
scores are, then keeps ComfyUI running at http://127.0.0.1:<port> until Ctrl-C (or exits with --once).

Usage: .venv/bin/python dev/demo.py [--port 8188] [--once]   (dev/demo.sh provisions first)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.append(str(Path(__file__).resolve().parents[1]))  # the client package
from harness import ROOT, ComfyServer  # noqa: E402
from random_checkpoint import FILE_NAME, install  # noqa: E402

from client import Client  # noqa: E402

WORKFLOW = ROOT / "example_workflows" / "api" / "retry_until_quality.json"
# Node titles of the example ("<title>.<input>" parameters of the pack's /qg/run): a CPU-friendly size, the random
# checkpoint, and a threshold that this checkpoint's noise images reach only after a few seeds.
PARAMS = {
    "Checkpoint.ckpt_name": FILE_NAME,
    "Latent.width": 128,
    "Latent.height": 128,
    "Sample (one attempt).steps": 8,
    "Retry until quality.threshold": 7.05,
}


def show_attempt(message: dict) -> None:
    """Print each attempt as its ``qg.loop`` event arrives (a ``Client.on_event`` callback)."""
    if message.get("type") == "qg.loop":
        e = message["data"]
        line = f"  attempt {e['attempt']}/{e['max_attempts']}: seed {e['seed']}, score {e['score']:.3f}"
        print(f"{line}, best {e['best_score']:.3f} (attempt {e['best_attempt']})", flush=True)


def report(server: ComfyServer, run) -> None:
    print(f"\nstatus: {run.status}")
    if run.error:
        print(f"  error: {run.error.get('exception_message', run.error)}")
        return
    history = json.loads(next(iter(run.outputs["Scores of every attempt"]["text"])))
    best = max(history, key=lambda row: row["score"])  # ties keep the earliest, as the loop does
    threshold = PARAMS["Retry until quality.threshold"]
    passed = best["score"] >= threshold
    print(
        f"  attempts: {len(history)}; best: attempt {best['attempt']}, seed {best['seed']}, score {best['score']:.3f}"
    )
    print(f"  passed the threshold {threshold}: {passed}")
    for image in run.outputs["Save best"]["images"]:
        print(f"  best image: {server.output_dir / image['subfolder'] / image['filename']}")
    scores = server.output_dir / "retry_until_quality_scores.json"
    scores.write_text(json.dumps({"params": run.params, "attempts": history, "best": best}, indent=2) + "\n")
    print(f"  its scores: {scores}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8188)
    parser.add_argument("--once", action="store_true", help="exit after running the workflow")
    args = parser.parse_args()
    workdir = ROOT / ".qg-run" / "demo"
    server = ComfyServer(workdir=workdir, port=args.port, name="demo")
    link = install(server.model_dir("checkpoints"), FILE_NAME, log=lambda text: print(text, flush=True))
    print(f"random-weight SD15 checkpoint: {link} -> {link.resolve()}")
    print(f"starting ComfyUI with Quality Gate on {server.url} (log: {server.log_path})", flush=True)
    server.start()
    try:
        with Client(server.url) as qg:
            print(f"running {WORKFLOW.relative_to(ROOT)} through the pack's client with {PARAMS}", flush=True)
            qg.on_event(show_attempt)
            run = qg.run_workflow(WORKFLOW, PARAMS, timeout=600)
            report(server, run)
            examples = qg.server.request("GET", "/api/workflow_templates").get("quality_gate", [])
        print("\nexamples in the template browser (Templates panel, quality_gate):")
        print(f"  {', '.join(sorted(examples))}")
        if not args.once:
            print(f"ComfyUI with Quality Gate is running: open {server.url} in a browser. Ctrl-C stops it.", flush=True)
            server.process.wait()
    except KeyboardInterrupt:
        print("\nstopping")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
