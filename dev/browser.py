"""Drive the real ComfyUI frontend in headless Chromium (Debian's ``/usr/bin/chromium``, through Playwright).

Used by the browser tests (``tests/conftest.py``) and ``dev/screenshot.py``. The server side is the one
harness (``harness.ComfyServer``); this module adds only what a browser needs: the frontend to serve (the
pinned 1.32.9 from the venv, or a newer static folder through ``--front-end-root``), settings that keep
first-run dialogs away, and a ``CanvasPage`` that opens the canvas and waits until the app and the graph
are ready. Playwright's own browser download is never used (``dev/provision.sh`` installs chromium).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from harness import NEWEST_FRONTEND, PINNED_FRONTEND, ComfyServer, frontend_root

CHROMIUM = "/usr/bin/chromium"
# Root on a closed network: no sandbox, no GPU, nothing that phones home. Playwright adds --headless and a
# new empty profile (user-data-dir) per launch.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
FRONTENDS = (PINNED_FRONTEND, NEWEST_FRONTEND)
VIEWPORT = {"width": 1280, "height": 800}
# Written into the server's user settings before it starts: no template browser on first run, no
# missing-model dialog (the tests check missing node types themselves, so that dialog is off too).
SETTINGS = {
    "Comfy.TutorialCompleted": True,
    "Comfy.Workflow.ShowMissingModelsWarning": False,
    "Comfy.Workflow.ShowMissingNodesWarning": False,
    "Comfy.Validation.Workflows": True,
    "Comfy.Minimap.Visible": False,
}
# localStorage flags of banners that are not settings (1.32.9: "Introducing Nodes 2.0").
LOCAL_STORAGE = {"vueNodesBannerDismissed": "true"}
# The part of the page where the canvas is not covered by the side bar (left) or the tabs and menu (top).
CANVAS_INSET = {"left": 64, "top": 96}
# Our extensions are served from here; console errors that mention it are ours.
EXTENSION_URL = "/extensions/quality_gate/"


def browser_server(version: str, workdir: Path | None = None, settings: dict | None = None, **kwargs) -> ComfyServer:
    """A ComfyServer (not started) serving frontend ``version``, with first-run dialogs switched off (and
    any further user ``settings``)."""
    server = ComfyServer(workdir=workdir, front_end_root=frontend_root(version), **kwargs)
    settings_file = server.workdir / "user" / "default" / "comfy.settings.json"
    settings_file.parent.mkdir(parents=True, exist_ok=True)
    settings_file.write_text(json.dumps({**SETTINGS, **(settings or {})}))
    return server


def launch(playwright):
    """Debian's chromium, headless, with the flags above."""
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


class CanvasPage:
    """A Playwright page on a server's canvas. Everything a Playwright ``Page`` has is reachable directly
    (``evaluate``, ``wait_for_function``, ``screenshot``...); ``console_errors`` collects console errors and
    uncaught page errors, ``our_errors()`` those that come from this pack's extensions."""

    def __init__(self, browser, server: ComfyServer, viewport: dict | None = None):
        self.server = server
        self.context = browser.new_context(viewport=viewport or VIEWPORT)
        self.context.add_init_script(
            "".join(f"localStorage.setItem({json.dumps(k)}, {json.dumps(v)});" for k, v in LOCAL_STORAGE.items())
        )
        self.page = self.context.new_page()
        self.console_errors: list[str] = []
        self.page.on("console", self._on_console)
        self.page.on("pageerror", lambda error: self.console_errors.append(f"pageerror: {error}\n{error.stack}"))

    def __getattr__(self, name):
        return getattr(self.page, name)

    def _on_console(self, message) -> None:
        if message.type == "error":
            url = (message.location or {}).get("url", "")
            self.console_errors.append(f"{message.text} ({url})")

    def our_errors(self) -> list[str]:
        return [e for e in self.console_errors if EXTENSION_URL in e]

    def open(self, timeout: float = 90.0) -> CanvasPage:
        """Load the canvas; wait until the app ran its setup (extensions registered), the graph and the
        canvas exist and the node definitions are in; close any dialog still open."""
        self.page.goto(self.server.url, timeout=timeout * 1000)
        self.page.wait_for_function(
            "() => window.app && window.app.graph && window.app.canvas && window.LiteGraph"
            " && Object.keys(window.LiteGraph.registered_node_types).length > 100",
            timeout=timeout * 1000,
        )
        self.dismiss_dialogs()
        return self

    def dismiss_dialogs(self) -> None:
        for _ in range(5):
            if not self.page.locator('.p-dialog, [role="dialog"]').count():
                return
            self.page.keyboard.press("Escape")
            time.sleep(0.2)

    def reset(self) -> None:
        """An empty graph and no collected errors (between tests on one page)."""
        self.console_errors.clear()
        self.page.evaluate("() => { app.graph.clear(); app.canvas.setDirty(true, true); }")
        self.dismiss_dialogs()

    def load_workflow(self, workflow: dict) -> None:
        """Put a UI-format workflow on the canvas (app.loadGraphData) and wait until it is there."""
        self.page.evaluate("async (wf) => { await app.loadGraphData(wf); }", workflow)
        self.dismiss_dialogs()
        self.page.evaluate("() => app.canvas.setDirty(true, true)")

    def add_node(self, node_type: str, widgets: dict | None = None, pos=(100, 100)) -> int:
        """Create a node on the canvas (LiteGraph.createNode), set widget values by name; returns its id."""
        return self.page.evaluate(
            """([type, widgets, pos]) => {
                const node = LiteGraph.createNode(type);
                if (!node) throw new Error("cannot create node " + type);
                node.pos = pos;
                app.graph.add(node);
                for (const [name, value] of Object.entries(widgets)) {
                    const widget = node.widgets?.find((w) => w.name === name);
                    if (!widget) throw new Error(type + " has no widget " + name);
                    widget.value = value;
                    widget.callback?.(value);
                }
                return node.id;
            }""",
            [node_type, widgets or {}, list(pos)],
        )

    def set_widget(self, node: int, name: str, value) -> None:
        """Set widget ``name`` of node ``node`` as a user would (value, then the widget's callback)."""
        self.page.evaluate(
            """([id, name, value]) => {
                const node = app.graph.getNodeById(id);
                const widget = node?.widgets?.find((w) => w.name === name);
                if (!widget) throw new Error("node " + id + " has no widget " + name);
                widget.value = value;
                widget.callback?.(value);
            }""",
            [node, name, value],
        )

    def connect(self, source: int, output: int | str, target: int, input_name: str) -> None:
        """Link output ``output`` (index or name) of node ``source`` into input ``input_name`` of ``target``."""
        self.page.evaluate(
            """([source, output, target, inputName]) => {
                const from = app.graph.getNodeById(source), to = app.graph.getNodeById(target);
                const slot = typeof output === "number" ? output : from.outputs.findIndex((o) => o.name === output);
                let index = to.inputs?.findIndex((i) => i.name === inputName) ?? -1;
                if (index < 0) {
                    const widget = to.widgets?.find((w) => w.name === inputName);
                    if (!widget) throw new Error("no input " + inputName + " on " + to.type);
                    index = to.inputs.findIndex((i) => i.widget?.name === inputName);
                }
                if (!from.connect(slot, to, index)) throw new Error("cannot link " + from.type + " to " + inputName);
            }""",
            [source, output, target, input_name],
        )

    def fit_view(self, margin: float = 60.0, max_scale: float = 1.25) -> None:
        """Zoom and pan so every node and group (with badges above titles) fills the canvas, clear of the
        side bar (left) and the tabs and menu (top) that float over it."""
        self.page.evaluate(
            """([margin, maxScale]) => {
                const boxes = [];
                const title = LiteGraph.NODE_TITLE_HEIGHT ?? 30;
                for (const n of app.graph._nodes) {
                    boxes.push([n.pos[0], n.pos[1] - title - 26, n.size[0], n.size[1] + title + 26]);
                }
                for (const g of app.graph._groups ?? app.graph.groups ?? []) {
                    const b = g._bounding ?? [...g.pos, ...g.size];
                    boxes.push([b[0], b[1], b[2], b[3]]);
                }
                if (!boxes.length) return;
                const x0 = Math.min(...boxes.map((b) => b[0])) - margin;
                const y0 = Math.min(...boxes.map((b) => b[1])) - margin;
                const x1 = Math.max(...boxes.map((b) => b[0] + b[2])) + margin;
                const y1 = Math.max(...boxes.map((b) => b[1] + b[3])) + margin;
                const el = app.canvas.canvas, ds = app.canvas.ds;
                const [left, top] = [CANVAS_INSET.left, CANVAS_INSET.top];
                const w = el.clientWidth - left - 8, h = el.clientHeight - top - 8;
                const scale = Math.min(w / (x1 - x0), h / (y1 - y0), maxScale);
                ds.scale = scale;
                ds.offset[0] = (left + (w - (x1 - x0) * scale) / 2) / scale - x0;
                ds.offset[1] = (top + (h - (y1 - y0) * scale) / 2) / scale - y0;
                app.canvas.setDirty(true, true);
            }""".replace("CANVAS_INSET", json.dumps(CANVAS_INSET)),
            [margin, max_scale],
        )
        self.page.wait_for_timeout(300)  # a frame or two for the canvas to redraw

    def convert_to_subgraph(self, node_ids) -> int:
        """Select these nodes and run the frontend's own "Convert to Subgraph" command (1.58.1); returns the
        new subgraph node's id (nothing is left selected)."""
        return self.page.evaluate(
            """async (ids) => {
                app.canvas.deselectAll?.();
                for (const n of app.graph.nodes) if (ids.map(Number).includes(Number(n.id))) app.canvas.select(n);
                const before = new Set(app.graph.nodes.map((n) => n.id));
                await app.extensionManager.command.execute("Comfy.Graph.ConvertToSubgraph");
                const sub = app.graph.nodes.find((n) => n.subgraph && !before.has(n.id));
                if (!sub) throw new Error("Convert to Subgraph made no subgraph node");
                app.canvas.deselectAll?.();
                return Number(sub.id);
            }""",
            list(node_ids),
        )

    def graph_to_prompt(self) -> dict:
        """``app.graphToPrompt()``: ``{"workflow": UI format, "output": API format}``."""
        return self.page.evaluate(
            "async () => { const p = await app.graphToPrompt(); return JSON.parse(JSON.stringify(p)); }"
        )

    def queue(self) -> str:
        """Queue the canvas's graph as the Run button does (through the page's own client id, so the page's
        websocket gets the prompt's events); returns the prompt id."""
        return self.page.evaluate(
            """async () => {
                const p = await app.graphToPrompt();
                const reply = await app.api.queuePrompt(0, p);
                if (!reply || !reply.prompt_id) throw new Error("queue failed: " + JSON.stringify(reply));
                return reply.prompt_id;
            }"""
        )

    def close(self) -> None:
        self.context.close()
