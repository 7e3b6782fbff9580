"""``Client``: run templates and workflows by parameter name on one server, sweep them, or spread them over
several servers, and wait for the results."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

from . import sweeps
from .runs import Run, collect, images
from .transport import ClientError, Refused, Server, TimedOut, quoted

POLL_SECONDS = 1.0
LOG = logging.getLogger("quality_gate.client")


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


ENGINES = ("auto", "dask", "server")


def upload_marker(path: str) -> dict:
    """An ``@path`` value as it travels to a Dask worker: the file's bytes, uploaded there to its own ComfyUI."""
    return {"qg_upload": True, "content": Path(path).read_bytes(), "suffix": Path(path).suffix}


class Client:
    """Runs templates and workflows by parameter name on one server, or spreads a sweep over several.

    ``engine``: ``"dask"`` runs every sweep and batch as Dask tasks (``distributed``, the ``dask`` extra);
    ``"server"`` lets the one server queue a sweep itself; ``"auto"`` (default) is Dask with several servers or a
    ``scheduler`` (``tcp://host:8786``, else ``DASK_SCHEDULER_ADDRESS``; none: an in-process cluster).
    ``per_server``: how many of our prompts each server holds at once on the in-process cluster."""

    def __init__(
        self,
        servers,
        timeout: float = 30.0,
        progress: bool = False,
        engine: str = "auto",
        scheduler: str | None = None,
        per_server: int = 2,
    ):
        urls = [servers] if isinstance(servers, str) else list(servers)
        if not urls:
            raise ValueError("give at least one server URL")
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
        self.scheduler = scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS") or None
        if engine == "auto":
            engine = "dask" if len(urls) > 1 or self.scheduler else "server"
        elif engine == "server" and len(urls) > 1:
            raise ValueError("engine 'server' runs on one server; give one URL, or use engine 'dask'")
        self.engine = engine
        self.servers = [Server(url, timeout) for url in urls]
        self.timeout = timeout
        self.progress = progress
        self.per_server = per_server
        self.summary: dict = {}  # of the last sweep or batch on Dask: items, succeeded, failed, queued, duplicates
        self.uploaded: dict = {}  # ComfyUI file name -> local path of every "@path" value sent
        self._dask = None

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
        if self._dask is not None:
            self._dask.close()
            self._dask = None
        for server in self.servers:
            server.close()

    @property
    def dask(self):
        """The Dask engine (``client.dask_engine``), started on first use; ``distributed`` is imported only then."""
        if self._dask is None:
            try:
                from .dask_engine import DaskEngine
            except ImportError as error:
                raise ImportError(
                    f"the Dask engine needs distributed ({error}): pip install 'quality-gate[client,dask]'"
                ) from error
            urls = [s.url for s in self.servers]
            self._dask = DaskEngine(urls, self.scheduler, self.per_server, self.timeout).start()
        return self._dask

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
        return next((s for s in self.servers if s.url == url), None) or Server(url, self.timeout)

    def refresh(self, run: Run, out_dir=None) -> bool:
        """Ask the server for the run's state; on the end, fill outputs, timings and downloads. True when done."""
        server = self._server(run.server)
        reply = server.status(run.prompt_id)
        run.status = reply["status"]
        if not run.done:
            return False
        collect(server, run, reply)
        if out_dir is not None:
            for image in images(run.outputs):
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
        """Stop these runs (e.g. ``TimedOut.runs``): out of the queue, or interrupted where running."""
        if self._dask is not None:
            self._dask.interrupt([r.prompt_id for r in runs])
            return
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
        per_server: int | None = None,
    ) -> list:
        """Every combination (product) or the items side by side (zip) of ``sweep`` over ``params``: one run per
        item, in item order. On one server (engine ``server``) the server queues them; on Dask each item is a
        task (see ``client.dask_engine``). ``timeout``: seconds for the whole sweep (``TimedOut`` after that)."""
        if per_server is not None:
            self.per_server = per_server
        if self.engine == "dask":
            params = resolve_files(self.server, params or {}, self.uploaded)
            items = sweeps.expand(self.servers, name, sweep, params, mode)
            return self.fan_out(name, items, out_dir=out_dir, timeout=timeout)
        params = resolve_files(self.server, params or {}, self.uploaded)
        runs = sweeps.queue_sweep(self.server, name, sweep, params, mode)
        with progress_bar(len(runs), name, self.progress) as bar:
            return self.wait(runs, out_dir, timeout, bar)

    def fan_out(
        self,
        name: str | None,
        items: list,
        workflow: dict | None = None,
        out_dir=None,
        per_server: int | None = None,
        timeout: float | None = None,
    ) -> list:
        """Run every item (a params dict; ``"@path"`` values are uploaded to the server that runs it) once, as
        Dask tasks over the servers; the runs in item order, each item once (``summary`` counts duplicates)."""
        if per_server is not None:
            self.per_server = per_server
        items = [
            {
                k: upload_marker(v[1:] if v.startswith("@") else self.uploaded[v])
                if isinstance(v, str) and (v.startswith("@") and len(v) > 1 or v in self.uploaded)
                else v
                for k, v in item.items()
            }
            for item in items
        ]
        with progress_bar(len(items), name or "workflow", self.progress) as bar:
            runs, self.summary = self.dask.run(name, items, workflow, out_dir, timeout, bar)
        if self.summary["duplicates"]:
            LOG.warning(
                "%d item(s) were queued more than once (execution is at-least-once)", self.summary["duplicates"]
            )
        return runs
