"""Demo: ComfyUI 0.3.75 with Quality Gate, running an example workflow and leaving the web UI up.

Runs ``example_workflows/api/logic_switch_gate.json`` three times: a night prompt (the Switch takes the cheap
branch and never runs the expensive one), a day prompt (the other branch), and an empty prompt (the Gate
closes and nothing is saved, yet the prompt succeeds). Prints what ran and where the images were saved,
then keeps ComfyUI running at http://127.0.0.1:<port> until Ctrl-C (or exits with --once).

Usage: .venv/bin/python dev/demo.py [--port 8188] [--once]   (dev/demo.sh provisions first)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import ROOT, ComfyClient, ComfyServer  # noqa: E402

WORKFLOW = ROOT / "example_workflows" / "api" / "logic_switch_gate.json"
PROMPTS = ["a red fox in the snow at night", "a red fox in a summer meadow", ""]


def run_once(client: ComfyClient, server: ComfyServer, workflow: dict, text: str) -> None:
    workflow = json.loads(json.dumps(workflow))
    workflow["1"]["inputs"]["value"] = text
    result = client.run(workflow)
    titles = {node: spec.get("_meta", {}).get("title", spec["class_type"]) for node, spec in workflow.items()}
    images = result.outputs.get("9", {}).get("images", [])
    blocked = [] if images else ["9"]  # the executor visits a blocked node but never calls it
    ran = [titles[n] for n in dict.fromkeys(result.executing) if n in titles and n not in blocked]
    print(f"\nprompt {text!r}: {result.status} in {result.seconds:.2f} s")
    if result.error:
        print(f"  error: {result.error['exception_message']}")
    why = result.outputs.get("10", {}).get("text")
    if why:
        print(f"  Night scene? {why[0]}")
    print(f"  executed: {', '.join(ran)}")
    skipped = [titles[n] for n in ("3", "5") if n not in result.executed]
    if skipped:
        print(f"  never ran (lazy): {', '.join(skipped)}")
    for image in images:
        print(f"  saved: {server.output_dir / image['subfolder'] / image['filename']}")
    if not images:
        print("  saved: nothing (the Gate was closed and blocked the save)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8188)
    parser.add_argument("--once", action="store_true", help="exit after running the workflow")
    args = parser.parse_args()
    workdir = ROOT / ".qg-run" / "demo"
    server = ComfyServer(workdir=workdir, port=args.port, name="demo")
    print(f"starting ComfyUI with Quality Gate on {server.url} (log: {server.log_path})")
    server.start()
    try:
        client = ComfyClient(server.url)
        workflow = json.loads(WORKFLOW.read_text())
        print(f"running {WORKFLOW.relative_to(ROOT)}")
        for text in PROMPTS:
            run_once(client, server, workflow, text)
        client.close()
        if not args.once:
            print(f"\nComfyUI with Quality Gate is running: open {server.url} in a browser. Ctrl-C stops it.")
            server.process.wait()
    except KeyboardInterrupt:
        print("\nstopping")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
