"""Pictures of the canvas from the real frontend in headless Chromium (dev/browser.py, the harness's server).

    # a UI workflow queued, run to the end and photographed (the README's canvas: loop badge and chart)
    .venv/bin/python dev/screenshot.py run example_workflows/retry_until_quality.json [--out docs/canvas-loop.png]
    # a .jpg thumbnail next to every example_workflows/*.json (same name), from the canvas, without running
    .venv/bin/python dev/screenshot.py thumbnails [--dir example_workflows]

Options: --frontend (1.32.9, the pinned one, or 1.58.1), --vue (the Vue node renderer, "Nodes 2.0", 1.58.1),
--checkpoint FILE (linked into the server's models/checkpoints, for workflows that load one), --test-nodes (also
load tests/comfy_nodes, for local workflows built with the test-only nodes); run: --convert 4,6,7 (those nodes
made into a subgraph with the frontend's own command before the run, 1.58.1).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from browser import CANVAS_INSET, FRONTENDS, CanvasPage, browser_server, launch
from harness import ROOT, ComfyClient

DEFAULT_OUT = ROOT / "docs" / "canvas-loop.png"
THUMBNAIL_VIEWPORT = {"width": 1024, "height": 680}
# No canvas statistics overlay and no zoom controls in the pictures.
PICTURE_SETTINGS = {"Comfy.Graph.CanvasInfo": False, "Comfy.Graph.CanvasMenu": False}


def start_server(args):
    node_roots = [ROOT / "tests" / "comfy_nodes"] if args.test_nodes else []
    settings = {**PICTURE_SETTINGS, "Comfy.VueNodes.Enabled": bool(args.vue)}
    server = browser_server(args.frontend, settings=settings, node_roots=node_roots, name="screenshot")
    server.start()
    if args.checkpoint:
        checkpoint = Path(args.checkpoint).resolve()
        (server.model_dir("checkpoints") / checkpoint.name).symlink_to(checkpoint)
    return server


def run(args, browser, server) -> int:
    workflow = json.loads(Path(args.workflow).read_text())
    page = CanvasPage(browser, server).open()
    page.load_workflow(workflow)
    if args.convert:
        page.convert_to_subgraph(int(i) for i in args.convert.split(","))
    prompt_id = page.queue()
    client = ComfyClient(server.url)
    entry = client.wait_finished(prompt_id, args.timeout, interval=0.2)
    client.close()
    status = entry["status"]["status_str"]
    page.wait_for_timeout(500)  # the last events reach the page and the canvas redraws
    page.fit_view()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(out))
    print(f"{args.workflow}: prompt {prompt_id} {status}; canvas saved to {out}")
    if status != "success":
        print(json.dumps(entry["status"].get("messages", [])[-2:], indent=1)[:3000], file=sys.stderr)
    page.close()
    return 0 if status == "success" else 1


def thumbnails(args, browser, server) -> int:
    examples = sorted(Path(args.dir).glob("*.json"))
    if not examples:
        print(f"no *.json in {args.dir}", file=sys.stderr)
        return 1
    page = CanvasPage(browser, server, viewport=THUMBNAIL_VIEWPORT).open()
    for path in examples:
        page.reset()
        page.load_workflow(json.loads(path.read_text()))
        page.fit_view(margin=30)
        out = path.with_suffix(".jpg")
        clip = {
            "x": CANVAS_INSET["left"],
            "y": CANVAS_INSET["top"],
            "width": THUMBNAIL_VIEWPORT["width"] - CANVAS_INSET["left"],
            "height": THUMBNAIL_VIEWPORT["height"] - CANVAS_INSET["top"],
        }
        page.screenshot(path=str(out), type="jpeg", quality=80, clip=clip)
        print(f"{path} -> {out}")
    page.close()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frontend", choices=FRONTENDS, default=FRONTENDS[0])
    parser.add_argument("--checkpoint", help="a checkpoint file linked into the server's models/checkpoints")
    parser.add_argument("--test-nodes", action="store_true", help="also load the test-only nodes (tests/comfy_nodes)")
    parser.add_argument("--vue", action="store_true", help="the Vue node renderer (Nodes 2.0; frontend 1.58.1)")
    sub = parser.add_subparsers(dest="mode", required=True)
    one = sub.add_parser("run", help="queue a UI workflow, wait for it and save a PNG of the canvas")
    one.add_argument("workflow")
    one.add_argument("--out", default=str(DEFAULT_OUT))
    one.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the prompt")
    one.add_argument("--convert", help="node ids made into a subgraph before the run, e.g. 4,6,7,8,9 (1.58.1)")
    many = sub.add_parser("thumbnails", help="a .jpg next to every UI workflow in --dir")
    many.add_argument("--dir", default=str(ROOT / "example_workflows"))
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    server = start_server(args)
    try:
        with sync_playwright() as playwright:
            browser = launch(playwright)
            try:
                return run(args, browser, server) if args.mode == "run" else thumbnails(args, browser, server)
            finally:
                browser.close()
    finally:
        server.cleanup()


if __name__ == "__main__":
    sys.exit(main())
