#!/usr/bin/env python3
"""Quality Gate client: run ComfyUI templates by parameter name, sweep them, over one or several servers.

Standard library plus ``websocket-client`` (and ``tqdm`` for progress bars, optional). It does not need
ComfyUI or the pack installed: copy this file anywhere.

Library::

    from quality_gate_client import Client
    qg = Client("http://127.0.0.1:8188")
    run = qg.run("template_solid_image", {"width": 256, "prefix": "demo"}, out_dir="out")
    runs = qg.sweep("my_template", sweep={"prompt": ["a cat", "a dog"]})           # batch_generate
    runs = qg.sweep("my_template", sweep={"seed": {"start": 42, "count": 10}})     # generate_variations
    print(format_timings(qg.run("my_template", {}).timings))                        # profile_workflow
    Client(["http://a:8188", "http://b:8188"]).sweep(...)   # fan-out balanced by queue length

Command (``python quality_gate_client.py --help``)::

    quality_gate_client.py list
    quality_gate_client.py schema NAME
    quality_gate_client.py run NAME --param width=512 --param "Load Image.image=@photo.png" --out DIR --timings
    quality_gate_client.py sweep NAME --sweep seed=42:+8 --sweep prompt='["a cat","a dog"]' --mode product
    quality_gate_client.py workflow FILE.json --param seed=3
    (--server URL, repeatable: a sweep is spread over every server)

``--param name=value``: the value is read as JSON when it parses (``512``, ``true``, ``"1984"``), else as text;
``@path`` uploads a local image once per content hash and passes its ComfyUI file name.

Exit codes: 0 every run succeeded; 1 a run failed in ComfyUI; 2 the server refused the request (bad parameters,
unknown template: the errors are printed); 3 no server reachable; 130 interrupted with Ctrl-C (our own prompts are
interrupted and removed from the queue first).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import mimetypes
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import websocket

EXIT_OK, EXIT_FAILED, EXIT_REFUSED, EXIT_UNREACHABLE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
POLL_SECONDS = 1.0
LOG = logging.getLogger("quality_gate.client")
TERMINAL = ("success", "error")


class ClientError(Exception):
    exit_code = EXIT_FAILED


class Refused(ClientError):
    """The server answered 4xx; ``reply`` is its JSON body (``errors`` keyed by parameter name)."""

    exit_code = EXIT_REFUSED

    def __init__(self, status: int, reply: dict):
        self.status, self.reply = status, reply
        super().__init__(f"HTTP {status}: {reply.get('error') if isinstance(reply, dict) else reply}")

    def describe(self) -> str:
        lines = [str(self)]
        for key, messages in (self.reply.get("errors") or {}).items():
            lines += [f"  {key}: {m}" for m in messages]
        return "\n".join(lines)


class Unreachable(ClientError):
    exit_code = EXIT_UNREACHABLE


@dataclass
class Run:
    """One queued prompt and what became of it."""

    prompt_id: str
    server: str
    params: dict = field(default_factory=dict)
    status: str = "pending"  # pending, running, success, error
    outputs: dict = field(default_factory=dict)  # by save node title, as /qg/runs reports them
    error: dict | None = None
    files: list = field(default_factory=list)  # downloaded paths
    timings: list = field(default_factory=list)  # [(node, class_type, title, seconds, cached)]
    index: int = 0  # position in a sweep

    @property
    def done(self) -> bool:
        return self.status in TERMINAL


class Events:
    """The websocket of one server in a thread: per-node timings and "maybe finished" wake-ups for our prompts.
    Reconnects after a drop (the final state always comes from ``/qg/runs``, so a missed event costs only time)."""

    def __init__(self, url: str, client_id: str, listeners: list | None = None):
        self.url = url.replace("http://", "ws://").replace("https://", "wss://") + f"/ws?clientId={client_id}"
        self.listeners = listeners if listeners is not None else []  # called with every JSON message
        self.wake = threading.Event()
        self.connected = threading.Event()
        self.reconnects = 0
        self.progress: dict = {}  # prompt_id -> (value, max) of the running node
        self._times: dict = {}  # prompt_id -> {node: seconds}
        self._cached: dict = {}  # prompt_id -> set of nodes
        self._current: dict = {}  # prompt_id -> (node, start)
        self._finished: set = set()  # prompts whose last event arrived
        self._changed = threading.Condition()
        self._ws = None
        self._stop = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="qg-events", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        delay = 0.2
        while not self._stop:
            try:
                self._ws = websocket.create_connection(self.url, timeout=1.0)
                self.connected.set()
                delay = 0.2
                while not self._stop:
                    try:
                        raw = self._ws.recv()
                    except websocket.WebSocketTimeoutException:
                        continue
                    if isinstance(raw, str):
                        message = json.loads(raw)
                        for listener in self.listeners:  # first, so a finished run has been seen by them
                            listener(message)
                        self._handle(message)
            except (websocket.WebSocketException, OSError, ValueError):
                if self._stop:
                    break
                self.connected.clear()
                self.reconnects += 1
                self.wake.set()  # let waiters poll /qg/runs at once
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _close_node(self, prompt_id: str, now: float) -> None:
        node, start = self._current.pop(prompt_id, (None, 0.0))
        if node is not None:
            times = self._times.setdefault(prompt_id, {})
            times[node] = times.get(node, 0.0) + now - start

    def _handle(self, message: dict) -> None:
        kind, data = message.get("type"), message.get("data") or {}
        prompt_id = data.get("prompt_id")
        if prompt_id is None:
            return
        now = time.perf_counter()
        with self._lock:
            if kind == "executing":
                self._close_node(prompt_id, now)
                if data.get("node") is not None:
                    self._current[prompt_id] = (data["node"], now)
                else:
                    self._finish(prompt_id)
            elif kind == "execution_cached":
                self._cached.setdefault(prompt_id, set()).update(data.get("nodes") or [])
            elif kind == "progress":
                self.progress[prompt_id] = (data.get("value"), data.get("max"))
            elif kind in ("execution_success", "execution_error", "execution_interrupted"):
                self._close_node(prompt_id, now)
                self._finish(prompt_id)

    def _finish(self, prompt_id: str) -> None:
        self._finished.add(prompt_id)
        self.wake.set()
        with self._changed:
            self._changed.notify_all()

    def settle(self, prompt_id: str, timeout: float = 2.0) -> None:
        """After /qg/runs reported the end: give the websocket a moment to deliver the prompt's last events
        (HTTP can overtake them), so the timings are complete."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while prompt_id not in self._finished and self.connected.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._changed.wait(left)

    def nodes_seen(self, prompt_id: str) -> int:
        """Nodes of the prompt that ran or came from the cache so far (for a progress bar)."""
        with self._lock:
            running = 1 if prompt_id in self._current else 0
            return len(self._times.get(prompt_id, {})) + len(self._cached.get(prompt_id, ())) + running

    def timings(self, prompt_id: str) -> tuple[dict, set]:
        with self._lock:
            return dict(self._times.get(prompt_id, {})), set(self._cached.get(prompt_id, set()))

    def drop(self) -> None:
        """Close the socket abruptly (as a network drop would); the thread reconnects."""
        if self._ws is not None and self._ws.sock is not None:
            self._ws.sock.close()

    def close(self) -> None:
        self._stop = True
        if self._ws is not None:
            self._ws.close()
        self._thread.join(timeout=3)


class Server:
    """HTTP and websocket access to one ComfyUI with Quality Gate."""

    def __init__(self, url: str, timeout: float = 30.0):
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.client_id = uuid.uuid4().hex
        self.uploads = 0  # files actually sent to /upload/image
        self._uploaded: dict = {}  # sha256 -> ComfyUI file name
        self._events: Events | None = None
        self.listeners: list = []  # see Client.on_event

    # --- HTTP ---

    def request(self, method: str, path: str, body=None, raw: bytes | None = None, headers=None):
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        for key, value in (headers or {}).items():
            req.add_header(key, value)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as reply:
                content = reply.read()
                kind = reply.headers.get("Content-Type", "")
        except urllib.error.HTTPError as e:
            text = e.read()
            try:
                reply = json.loads(text)
            except ValueError:
                reply = {"error": text.decode(errors="replace")[:500]}
            if 400 <= e.code < 500:
                raise Refused(e.code, reply) from None
            raise ClientError(f"{self.url}{path}: HTTP {e.code}: {reply.get('error')}") from None
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as e:
            raise Unreachable(f"{self.url} is not reachable: {getattr(e, 'reason', e)}") from None
        if "json" in kind:
            return json.loads(content) if content else None
        return content

    def templates(self) -> list:
        return self.request("GET", "/qg/templates")["templates"]

    def template(self, name: str) -> dict:
        return self.request("GET", f"/qg/templates/{urllib.parse.quote(name, safe='')}")

    def schema(self, name: str) -> dict:
        return self.request("GET", f"/qg/templates/{urllib.parse.quote(name, safe='')}/schema")

    def status(self, prompt_id: str) -> dict:
        return self.request("GET", f"/qg/runs/{urllib.parse.quote(prompt_id, safe='')}")

    def queue_length(self) -> int:
        """Prompts running or waiting on this server (every client's)."""
        return int(self.request("GET", "/prompt")["exec_info"]["queue_remaining"])

    def interrupt(self, prompt_id: str) -> None:
        """Stop our prompt: remove it from the queue, or interrupt it if it is running (only that prompt)."""
        self.request("POST", "/queue", {"delete": [prompt_id]})
        self.request("POST", "/interrupt", {"prompt_id": prompt_id})

    def upload(self, path: str | Path) -> str:
        """Upload a local image to ComfyUI's input folder once per content hash; returns its file name."""
        path = Path(path)
        content = path.read_bytes()
        digest = hashlib.sha256(content).hexdigest()
        if digest in self._uploaded:
            return self._uploaded[digest]
        name = f"qg_{digest[:20]}{path.suffix.lower() or '.png'}"
        query = urllib.parse.urlencode({"filename": name, "type": "input"})
        try:
            self.request("GET", f"/view?{query}")  # already there from an earlier session
        except Refused:
            boundary = uuid.uuid4().hex
            kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
            parts = [
                f'--{boundary}\r\nContent-Disposition: form-data; name="overwrite"\r\n\r\ntrue\r\n'.encode(),
                f'--{boundary}\r\nContent-Disposition: form-data; name="type"\r\n\r\ninput\r\n'.encode(),
                f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{name}"\r\n'.encode()
                + f"Content-Type: {kind}\r\n\r\n".encode()
                + content
                + b"\r\n",
                f"--{boundary}--\r\n".encode(),
            ]
            headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
            reply = self.request("POST", "/upload/image", raw=b"".join(parts), headers=headers)
            name = reply["name"] if not reply.get("subfolder") else f"{reply['subfolder']}/{reply['name']}"
            self.uploads += 1
        self._uploaded[digest] = name
        return name

    def download(self, image: dict, folder: Path) -> Path:
        query = urllib.parse.urlencode(
            {
                "filename": image["filename"],
                "subfolder": image.get("subfolder", ""),
                "type": image.get("type", "output"),
            }
        )
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / Path(image["filename"]).name  # never a path from the server
        target.write_bytes(self.request("GET", f"/view?{query}"))
        return target

    # --- events ---

    @property
    def events(self) -> Events:
        if self._events is None:
            self._events = Events(self.url, self.client_id, self.listeners)
            self._events.connected.wait(5.0)
        return self._events

    def close(self) -> None:
        if self._events is not None:
            self._events.close()
            self._events = None


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


def node_label(prompt: dict, node: str) -> tuple[str, str]:
    entry = prompt.get(node) or prompt.get(node.split(".")[0]) or {}
    return entry.get("class_type", "?"), (entry.get("_meta") or {}).get("title", "")


def format_timings(timings: list) -> str:
    """A per-node timing table, slowest first."""
    total = sum(t[3] for t in timings) or 1.0
    lines = [f"{'node':>10}  {'class':<24} {'title':<24} {'seconds':>9} {'share':>6}"]
    for node, kind, title, seconds, cached in timings:
        shown = "cached" if cached else f"{seconds:9.3f}"
        lines.append(f"{node:>10}  {kind[:24]:<24} {title[:24]:<24} {shown:>9} {100 * seconds / total:5.1f}%")
    lines.append(f"{'':>10}  {'total':<24} {'':<24} {total:9.3f}")
    return "\n".join(lines)


def _progress(total: int | None, label: str, enabled: bool, unit: str = "run"):
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=label, unit=unit, file=sys.stderr)


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
        callback must return quickly and must not raise."""
        for server in self.servers:
            server.listeners.append(callback)

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

    def _path(self, name: str | None) -> str:
        return "/qg/run" if name is None else f"/qg/templates/{urllib.parse.quote(name, safe='')}/run"

    def submit(self, server: Server, name: str | None, params: dict, workflow: dict | None = None, index=0) -> Run:
        """Queue one run (a template by name, or an ad-hoc API workflow) with our client id and prompt id."""
        server.events  # noqa: B018 (connect first, so no event of this prompt is missed)
        params = resolve_files(server, params, self.uploaded)
        body = {"params": params, "client_id": server.client_id, "prompt_id": str(uuid.uuid4())}
        if workflow is not None:
            body["workflow"] = workflow
        try:
            reply = server.request("POST", self._path(name), body)
        except Refused as e:
            if e.status != 409:  # 409: the prompt id is known, so an earlier attempt did queue it
                raise
            reply = {"prompt_id": body["prompt_id"], "params": body["params"]}
        return Run(reply["prompt_id"], server.url, reply.get("params", {}), index=index)

    def _server(self, url: str) -> Server:
        return next(s for s in self.servers if s.url == url)

    def _refresh(self, run: Run, out_dir: Path | None) -> bool:
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
        history = server.request("GET", f"/history/{urllib.parse.quote(run.prompt_id, safe='')}") or {}
        prompt = (history.get(run.prompt_id) or {}).get("prompt", [None, None, {}])[2]
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
        Ctrl-C interrupts every unfinished run and re-raises."""
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while True:
                pending = [r for r in runs if not r.done]
                if not pending:
                    return runs
                if deadline is not None and time.monotonic() > deadline:
                    raise ClientError(f"{len(pending)} run(s) did not finish within {timeout:.0f} s")
                for run in pending:
                    if self._refresh(run, out_dir) and bar is not None:
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
        bar = _progress(None, f"{name or 'workflow'} nodes", self.progress, unit="node")
        try:
            return self.wait([run], out_dir, timeout, nodes_bar=bar)[0]
        finally:
            if bar is not None:
                bar.close()

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
        One server: queued at once by the server. Several: spread by queue length, re-queued from a dead one."""
        params = resolve_files(self._alive()[0] if self._alive() else self.server, params or {}, self.uploaded)
        if len(self.servers) == 1:
            body = {"params": params, "sweep": sweep, "mode": mode, "client_id": self.server.client_id}
            self.server.events  # noqa: B018 (connect before queueing)
            reply = self.server.request("POST", f"/qg/templates/{urllib.parse.quote(name, safe='')}/sweep", body)
            runs = [Run(i["prompt_id"], self.server.url, i["params"], index=n) for n, i in enumerate(reply["items"])]
            bar = _progress(len(runs), name, self.progress)
            try:
                return self.wait(runs, out_dir, timeout, bar)
            finally:
                if bar is not None:
                    bar.close()
        items = self._dry_run(name, sweep, params, mode)
        return self.fan_out(name, items, out_dir=out_dir, per_server=per_server)

    def _dry_run(self, name, sweep, params, mode) -> list:
        body = {"params": params, "sweep": sweep, "mode": mode, "dry_run": True}
        for server in self._alive():
            try:
                path = f"/qg/templates/{urllib.parse.quote(name, safe='')}/sweep"
                return [item["params"] for item in server.request("POST", path, body)["items"]]
            except Unreachable:
                self.dead.add(server.url)
        raise Unreachable("no server is reachable")

    def _alive(self) -> list:
        return [s for s in self.servers if s.url not in self.dead]

    def fan_out(
        self, name: str | None, items: list, workflow: dict | None = None, out_dir=None, per_server: int = 2
    ) -> list:
        """Run every item (a params dict) once, on the live server with the shortest queue, at most
        ``per_server`` of ours at a time on each. A server that stops answering is dropped and its unfinished
        items are queued again elsewhere (a finished item is never re-run)."""
        todo = deque(range(len(items)))
        flying: dict = {}  # index -> Run
        results: list = [None] * len(items)
        bar = _progress(len(items), name or "workflow", self.progress)
        try:
            while todo or flying:
                alive = self._alive()
                if not alive:
                    raise Unreachable(f"every server is unreachable; {len(todo) + len(flying)} item(s) not run")
                self._dispatch(alive, todo, flying, items, name, workflow, per_server)
                for index, run in list(flying.items()):
                    try:
                        finished = self._refresh(run, out_dir)
                    except Unreachable:
                        self._drop(run.server, todo, flying)
                        continue
                    if finished:
                        results[index] = flying.pop(index)
                        if bar is not None:
                            bar.update(1)
                time.sleep(0.2)
        except KeyboardInterrupt:
            self.interrupt(list(flying.values()))
            raise
        finally:
            if bar is not None:
                bar.close()
        return results

    def _dispatch(self, alive, todo, flying, items, name, workflow, per_server) -> None:
        ours = {s.url: 0 for s in alive}
        for run in flying.values():
            ours[run.server] = ours.get(run.server, 0) + 1
        lengths = {}
        for server in alive:
            try:
                lengths[server.url] = server.queue_length()
            except Unreachable:
                self._drop(server.url, todo, flying)
        while todo:
            open_servers = [s for s in alive if s.url in lengths and ours[s.url] < per_server]
            if not open_servers:
                return
            server = min(open_servers, key=lambda s: (lengths[s.url], ours[s.url]))
            index = todo.popleft()
            try:
                flying[index] = self.submit(server, name, items[index], workflow, index)
            except Unreachable:
                todo.appendleft(index)
                self._drop(server.url, todo, flying)
                lengths.pop(server.url, None)
                continue
            ours[server.url] += 1
            lengths[server.url] += 1

    def _drop(self, url: str, todo: deque, flying: dict) -> None:
        if url in self.dead:
            return
        self.dead.add(url)
        lost = sorted(i for i, run in flying.items() if run.server == url)
        for index in reversed(lost):
            del flying[index]
            todo.appendleft(index)
        LOG.warning("%s is unreachable; re-queueing its %d unfinished item(s) on the other servers", url, len(lost))


# --- command line ---------------------------------------------------------------------------------------


def parse_value(text: str):
    """JSON when it parses (numbers, true/false, quoted strings, lists), else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_pairs(pairs: list) -> dict:
    result = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise argparse.ArgumentTypeError(f"expected name=value, got {pair!r}")
        result[key] = value if value.startswith("@") else parse_value(value)
    return result


def parse_sweep(pairs: list) -> dict:
    """``name=[json list]``, ``name=a,b,c`` or a seed range ``name=START:+COUNT``."""
    sweep = {}
    for key, value in parse_pairs(pairs).items():
        if isinstance(value, str) and ":+" in value:
            start, count = value.split(":+", 1)
            value = {"start": int(start), "count": int(count)}
        elif isinstance(value, str):
            value = [parse_value(v) for v in value.split(",")]
        elif not isinstance(value, list):
            value = [value]
        sweep[key] = value
    return sweep


def _report(runs: list, show_timings: bool) -> int:
    for run in runs:
        files = ", ".join(str(f) for f in run.files) or ", ".join(run.outputs) or "-"
        line = f"{run.status:8} {run.prompt_id}  {json.dumps(run.params)[:120]}  -> {files}"
        if run.error:
            line += f"\n         {run.error.get('node_type')} #{run.error.get('node')}: {run.error.get('message')}"
        print(line)
        if show_timings and run.timings:
            print(format_timings(run.timings))
    return EXIT_OK if all(r.status == "success" for r in runs) else EXIT_FAILED


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Run Quality Gate templates on ComfyUI by parameter name.")
    parser.add_argument("--server", action="append", help="ComfyUI URL (repeat to spread sweeps)")
    parser.add_argument("--timeout", type=float, default=None, help="seconds to wait for the runs (default: no limit)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="list templates")
    commands.add_parser("schema", help="show a template's JSON Schema").add_argument("name")
    for command in ("run", "sweep", "workflow"):
        sub = commands.add_parser(command, help=f"{command} (and wait)")
        sub.add_argument("name", help="template name" if command != "workflow" else "API workflow JSON file")
        sub.add_argument("--param", action="append", default=[], help="name=value or name=@image.png")
        sub.add_argument("--out", type=Path, help="download output images into this folder")
        sub.add_argument("--timings", action="store_true", help="print a per-node timing table")
        if command == "sweep":
            sub.add_argument("--sweep", action="append", default=[], help="name=a,b,c or [json] or START:+COUNT")
            sub.add_argument("--mode", choices=("product", "zip"), default="product")
    args = parser.parse_args(argv)
    client = Client(args.server or ["http://127.0.0.1:8188"], progress=not args.no_progress)
    try:
        if args.command == "list":
            for t in client.templates():
                print(
                    f"{t['name']:<32} {t.get('source', ''):<5} {t.get('params', '?'):>3} params  {t.get('title', '')}"
                )
            return EXIT_OK
        if args.command == "schema":
            print(json.dumps(client.schema(args.name), indent=2))
            return EXIT_OK
        params = parse_pairs(args.param)
        if args.command == "run":
            runs = [client.run(args.name, params, out_dir=args.out, timeout=args.timeout)]
        elif args.command == "workflow":
            runs = [client.run_workflow(args.name, params, out_dir=args.out, timeout=args.timeout)]
        else:
            runs = client.sweep(args.name, parse_sweep(args.sweep), params, args.mode, args.out, args.timeout)
        return _report(runs, args.timings)
    except KeyboardInterrupt:
        print("interrupted: our prompts were interrupted and removed from the queue", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Refused as e:
        print(e.describe(), file=sys.stderr)
        return EXIT_REFUSED
    except ClientError as e:
        print(str(e), file=sys.stderr)
        return e.exit_code
    finally:
        client.close()


if __name__ == "__main__":
    sys.exit(main())
