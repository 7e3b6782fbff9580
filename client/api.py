"""``Client``: run templates and workflows by parameter name on one server, sweep them, or spread them over
several servers, and wait for the results."""

from __future__ import annotations

import json
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

from . import sweeps
from .fanout import fan_out
from .runs import Run, node_label
from .transport import ClientError, Refused, Server, TimedOut, quoted

POLL_SECONDS = 1.0


def resolve_files(server: Server, params: dict, uploaded: dict | None = None) -> dict:
    """``"@path"`` values become the uploaded file's name (``uploaded`` remembers name -> path, so the same file
    can be uploaded to another server when an item moves there)."""
    result = {}
    for key, value in params.items():
        if isinstance(value, str) and value.startswith("@") and len(value) > 1:
            result[key] = server.upload(value[1:])
            if uploaded is not None:
                uploaded[result[key]] = value[1:]
        elif uploaded and isinstance(value, str) and value in uploaded:
            result[key] = server.upload(uploaded[value])
        else:
            result[key] = value
    return result


@contextmanager
def progress_bar(total: int | None, label: str, enabled: bool, unit: str = "run"):
    """A tqdm bar on stderr, closed at the end; None when disabled or tqdm is not installed (it is optional)."""
    bar = None
    if enabled:
        try:
            from tqdm import tqdm
        except ImportError:
            pass  # no bar
        else:
            bar = tqdm(total=total, desc=label, unit=unit, file=sys.stderr)
    try:
        yield bar
    finally:
        if bar is not None:
            bar.close()


class Client:
    """Runs templates and workflows by parameter name on one server, or spreads a sweep over several."""

    def __init__(self, servers, timeout: float = 30.0, progress: bool = False):
        urls = [servers] if isinstance(servers, str) else list(servers)
        if not urls:
            raise ValueError("give at least one server URL")
        self.servers = [Server(url, timeout) for url in urls]
        self.progress = progress
        self.dead: set = set()
        self.uploaded: dict = {}  # ComfyUI file name -> local path of every "@path" value sent

    @property
    def server(self) -> Server:
        return self.servers[0]

    def on_event(self, callback) -> None:
        """Call ``callback(message)`` with every websocket message this client receives (``{"type", "data"}``,
        e.g. ``qg.loop`` after each retry attempt, ``progress``, ``executing``), from the event thread.
        Messages go only to the client that queued the prompt, so these are this client's own runs. The
        callback should return quickly. If it raises, the event thread goes on, and the call that is waiting
        (``run``, ``sweep``, ``wait``, ``fan_out``; else the next one) raises that exception; the runs are not
        stopped (``interrupt`` does that)."""
        for server in self.servers:
            server.listeners.append(callback)

    def raise_listener_errors(self) -> None:
        """Raise what an ``on_event`` callback raised in the event thread since the last check, if anything."""
        for server in self.servers:
            server.raise_listener_error()

    def close(self) -> None:
        for server in self.servers:
            server.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def templates(self) -> list:
        return self.server.templates()

    def schema(self, name: str) -> dict:
        return self.server.schema(name)

    # --- queueing ---

    def submit(self, server: Server, name: str | None, params: dict, workflow: dict | None = None, index=0) -> Run:
        """Queue one run (a template by name, or an ad-hoc API workflow) with our client id and a prompt id we
        mint (a canonical UUID), so a retried request is recognised."""
        server.events  # noqa: B018 (connect first, so no event of this prompt is missed)
        params = resolve_files(server, params, self.uploaded)
        body = {"params": params, "client_id": server.client_id, "prompt_id": str(uuid.uuid4())}
        if workflow is not None:
            body["workflow"] = workflow
        path = "/qg/run" if name is None else f"/qg/templates/{quoted(name)}/run"
        try:
            reply = server.request("POST", path, body)
        except Refused as e:
            if e.status != 409:  # 409: the prompt id is known, so an earlier attempt did queue it
                raise
            reply = {"prompt_id": body["prompt_id"], "params": body["params"]}
        return Run(reply["prompt_id"], server.url, reply.get("params", {}), index=index)

    def _server(self, url: str) -> Server:
        return next(s for s in self.servers if s.url == url)

    def _alive(self) -> list:
        return [s for s in self.servers if s.url not in self.dead]

    def refresh(self, run: Run, out_dir=None) -> bool:
        """Ask the server for the run's state; on the end, fill outputs, timings and downloads. True when done."""
        server = self._server(run.server)
        reply = server.status(run.prompt_id)
        run.status = reply["status"]
        if not run.done:
            return False
        run.outputs, run.error = reply.get("outputs") or {}, reply.get("error")
        run.params = reply.get("params") or run.params
        server.events.settle(run.prompt_id)
        times, cached = server.events.timings(run.prompt_id)
        prompt = server.history(run.prompt_id).get("prompt", [None, None, {}])[2]
        rows = [(n, *node_label(prompt, n), s, False) for n, s in times.items()]
        rows += [(n, *node_label(prompt, n), 0.0, True) for n in sorted(cached - set(times))]
        run.timings = sorted(rows, key=lambda r: -r[3])
        if out_dir is not None:
            for output in run.outputs.values():
                for image in output.get("images", []) if isinstance(output, dict) else []:
                    run.files.append(server.download(image, Path(out_dir)))
        return True

    def wait(self, runs: list, out_dir=None, timeout: float | None = None, bar=None, nodes_bar=None) -> list:
        """Wait for runs on live servers: websocket wake-ups, confirmed by /qg/runs (no history race).
        Raises ``TimedOut`` after ``timeout`` seconds, and what an ``on_event`` callback raised meanwhile.
        Ctrl-C interrupts every unfinished run and re-raises."""
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while True:
                self.raise_listener_errors()
                pending = [r for r in runs if not r.done]
                if not pending:
                    return runs
                if deadline is not None and time.monotonic() > deadline:
                    raise TimedOut(f"{len(pending)} run(s) did not finish within {timeout:g} s", pending)
                for run in pending:
                    if self.refresh(run, out_dir) and bar is not None:
                        bar.update(1)
                if nodes_bar is not None:
                    nodes_bar.n = self._server(runs[0].server).events.nodes_seen(runs[0].prompt_id)
                    nodes_bar.refresh()
                wakes = [self._server(u).events.wake for u in {r.server for r in pending}]
                if len(wakes) == 1:
                    wakes[0].wait(POLL_SECONDS if nodes_bar is None else 0.25)
                    wakes[0].clear()
                else:
                    time.sleep(0.2)
        except KeyboardInterrupt:
            self.interrupt([r for r in runs if not r.done])
            raise

    def interrupt(self, runs: list) -> None:
        for run in runs:
            try:
                self._server(run.server).interrupt(run.prompt_id)
            except ClientError:
                pass  # that server is gone: nothing left to stop there

    # --- the calls ---

    def run(
        self,
        name: str | None,
        params: dict | None = None,
        workflow: dict | None = None,
        out_dir=None,
        timeout: float | None = None,
    ) -> Run:
        """Run a template by name (or an API workflow, ``name=None``) and wait for it."""
        run = self.submit(self.server, name, params or {}, workflow)
        with progress_bar(None, f"{name or 'workflow'} nodes", self.progress, unit="node") as bar:
            return self.wait([run], out_dir, timeout, nodes_bar=bar)[0]

    def run_workflow(self, path_or_workflow, params: dict | None = None, **kwargs) -> Run:
        workflow = path_or_workflow
        if not isinstance(workflow, dict):
            workflow = json.loads(Path(path_or_workflow).read_text(encoding="utf-8"))
        return self.run(None, params, workflow=workflow, **kwargs)

    def profile(self, name: str | None, params: dict | None = None, workflow: dict | None = None) -> list:
        """Per-node seconds of one run, slowest first, measured from the websocket events."""
        return self.run(name, params, workflow).timings

    def sweep(
        self,
        name: str,
        sweep: dict,
        params: dict | None = None,
        mode: str = "product",
        out_dir=None,
        timeout: float | None = None,
        per_server: int = 2,
    ) -> list:
        """Every combination (product) or the items side by side (zip) of ``sweep`` over ``params``.
        One server: queued at once by the server. Several: spread by queue length, re-queued from a dead one.
        ``timeout``: seconds for the whole sweep (``TimedOut`` after that)."""
        alive = self._alive()
        params = resolve_files(alive[0] if alive else self.server, params or {}, self.uploaded)
        if len(self.servers) > 1:
            items = sweeps.expand(self.servers, name, sweep, params, mode, self.dead)
            return self.fan_out(name, items, out_dir=out_dir, per_server=per_server, timeout=timeout)
        runs = sweeps.queue_sweep(self.server, name, sweep, params, mode)
        with progress_bar(len(runs), name, self.progress) as bar:
            return self.wait(runs, out_dir, timeout, bar)

    def fan_out(
        self,
        name: str | None,
        items: list,
        workflow: dict | None = None,
        out_dir=None,
        per_server: int = 2,
        timeout: float | None = None,
    ) -> list:
        """Run every item (a params dict) once over the live servers (see ``fanout.fan_out``)."""
        with progress_bar(len(items), name or "workflow", self.progress) as bar:
            return fan_out(self, name, items, workflow, out_dir, per_server, timeout, bar)
