"""Sweeps and batches as Dask tasks (``distributed``, the client's optional ``dask`` extra; the only module that
imports it): one Dask worker per ComfyUI server, one task per item.

Every worker serves one ComfyUI (``ComfyUIPlugin``): it has the resource ``comfyui`` (how many of our prompts that
ComfyUI holds at once) and each task takes one, so the scheduler hands an item to whichever ComfyUI is free. The
plugin probes its ComfyUI; when it stops answering (or a task finds it gone after retries), the worker closes and
Dask re-runs its unfinished items on the other workers.

- In-process (no scheduler): a ``LocalCluster(processes=False)`` with one worker per server URL; a supervisor
  thread probes the servers whose worker closed and starts a new worker when one answers again.
- A cluster (``scheduler="tcp://host:8786"`` or ``DASK_SCHEDULER_ADDRESS``): a Dask worker next to each ComfyUI,
  started with this module as its preload (it waits for its ComfyUI before joining)::

      dask worker tcp://scheduler:8786 --nthreads 2 --resources comfyui=2 \\
          --preload client.dask_engine --comfyui-url http://127.0.0.1:8188

  Under ``dask worker``'s nanny a worker that closed because its ComfyUI went away is restarted, and joins again
  when that ComfyUI answers.

Exactly-once results, at-least-once execution: each item has a prompt id derived from the sweep id and its index
(``runs.item_prompt_id``), the same on every attempt. A retry whose reply was lost finds the id known (409) and
waits for that prompt; a prompt lost with its server (or a server restart) is queued again, on the same server or
another one. The results hold each item once, in item order; ``Client.summary["duplicates"]`` counts the items
queued more than once (each may have run twice).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from pathlib import Path

import click
import dask
from distributed import Client as DaskClient
from distributed import LocalCluster, Reschedule, Worker, WorkerPlugin, as_completed, get_worker

from .runs import Run, collect, images, item_prompt_id
from .transport import ClientError, Refused, Server, ServerFailed, TimedOut, Unreachable, quoted, save_image

LOG = logging.getLogger("quality_gate.client")
PLUGIN = "qg-comfyui"
RESOURCE = "comfyui"
TOPIC = "qg-queued"  # a worker's event per prompt it queued (not for a 409: that one was queued before)
PROBE_SECONDS = 0.5  # how often a worker probes its ComfyUI, and the supervisor a server without a worker
DOWN_AFTER = 3  # failed probes in a row before a ComfyUI is declared down
SEND_RETRIES = 4  # retries of a request whose reply was lost, before the ComfyUI is declared down
POLL_SECONDS = 1.0  # at most this long between two /qg/runs checks of a waiting item


class ComfyUIPlugin(WorkerPlugin):
    """The ComfyUI a worker serves: its ``Server``, and a thread that probes it and closes the worker when it
    stops answering (``close_on_down``; the in-process engine starts a new worker when it answers again)."""

    name = PLUGIN

    def __init__(self, url: str, timeout: float = 30.0):
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.server: Server | None = None
        self.down = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.worker = None

    def setup(self, worker) -> None:
        self.worker = worker
        self.server = Server(self.url, self.timeout)
        self.server.start_events()
        self._thread = threading.Thread(target=self._probe, name=f"qg-probe {self.url}", daemon=True)
        self._thread.start()

    def teardown(self, worker) -> None:
        self._stop.set()
        if self.server is not None:
            self.server.close()

    def _probe(self) -> None:
        failures = 0
        probe = Server(self.url, timeout=2.0)
        while not self._stop.wait(PROBE_SECONDS) and not self.down.is_set():
            try:
                probe.request("GET", "/system_stats")
                failures = 0
            except (Unreachable, ServerFailed):
                failures += 1
                if failures >= DOWN_AFTER:
                    self.mark_down(f"{failures} probes in a row got no answer")

    def mark_down(self, why: str) -> None:
        """Declare this ComfyUI down: close the worker, so Dask re-runs its items elsewhere."""
        if self.down.is_set():
            return
        self.down.set()
        LOG.warning("ComfyUI %s is down (%s): closing its Dask worker %s", self.url, why, self.worker.address)
        worker = self.worker
        # Under a nanny the worker is restarted (nanny=False) and waits in dask_setup for its ComfyUI.
        worker.loop.add_callback(worker.close, executor_wait=False, nanny=False, reason=f"ComfyUI {self.url} is down")


# --- the task -------------------------------------------------------------------------------------------------


def _plugin() -> ComfyUIPlugin:
    worker = get_worker()
    plugin = worker.plugins.get(PLUGIN)
    if plugin is None:
        raise ClientError(
            f"Dask worker {worker.address} has no ComfyUI: start it with --preload client.dask_engine "
            "--comfyui-url http://127.0.0.1:8188"
        )
    return plugin


def _retrying(plugin: ComfyUIPlugin, call):
    """``call()``, retried with a growing pause when the reply is lost (no answer, or a 5xx); after
    ``SEND_RETRIES`` retries the ComfyUI is declared down and the task goes back to the scheduler."""
    pause = 0.1
    for attempt in range(SEND_RETRIES + 1):
        if plugin.down.is_set():
            raise Reschedule()
        try:
            return call()
        except (Unreachable, ServerFailed) as error:
            if attempt == SEND_RETRIES:
                plugin.mark_down(f"{attempt + 1} attempts: {error}")
                raise Reschedule() from None
            time.sleep(pause)
            pause = min(pause * 2, 2.0)
    raise AssertionError("unreachable")


def _submit(plugin: ComfyUIPlugin, item: dict) -> dict | None:
    """Queue the item under its prompt id; None when queued now or before (409), else the refusal as an error."""
    server = plugin.server
    params = {
        key: server.upload_content(value["content"], value["suffix"])
        if isinstance(value, dict) and "qg_upload" in value
        else value
        for key, value in item["params"].items()
    }
    body = {"params": params, "client_id": server.client_id, "prompt_id": item["prompt_id"]}
    if item["workflow"] is not None:
        body["workflow"] = item["workflow"]
    path = "/qg/run" if item["name"] is None else f"/qg/templates/{quoted(item['name'])}/run"
    try:
        _retrying(plugin, lambda: server.request("POST", path, body))
    except Refused as error:
        if error.status == 409 and (error.reply.get("errors") or {}).get("prompt_id"):
            return None  # an earlier attempt whose reply was lost did queue it
        return {"type": "refused", "status": error.status, "message": str(error), "reply": error.reply}
    plugin.worker.log_event(TOPIC, {"sweep": item["sweep"], "index": item["index"], "server": plugin.url})
    return None


def run_item(item: dict) -> dict:
    """One item on this worker's ComfyUI: queue it (unless already queued), wait for it, return its result."""
    plugin = _plugin()
    server = plugin.server
    run = Run(item["prompt_id"], plugin.url, item["params"], index=item["index"])
    refused = _submit(plugin, item)
    if refused is not None:
        run.status, run.error = "error", refused
        return _result(run, [])
    while True:
        try:
            reply = _retrying(plugin, lambda: server.status(run.prompt_id))
        except Refused as error:
            if error.status != 404:
                raise
            # The server no longer knows it (restarted): queue it again, under the same id.
            refused = _submit(plugin, item)
            if refused is not None:
                run.status, run.error = "error", refused
                return _result(run, [])
            continue
        if reply["status"] in ("success", "error"):
            break
        server.events.wait_finished(run.prompt_id, POLL_SECONDS)
    collect(server, run, reply)
    files = []
    if item["fetch"]:
        files = [(i["filename"], _retrying(plugin, lambda i=i: server.fetch_image(i))) for i in images(run.outputs)]
    return _result(run, files)


def _result(run: Run, files: list) -> dict:
    fields = ("prompt_id", "server", "params", "status", "outputs", "error", "timings", "index")
    return {**{k: getattr(run, k) for k in fields}, "images": files}


def _interrupt_ours(prompt_ids: list, dask_worker=None) -> int:
    """On a worker: remove our queued prompts from its ComfyUI and interrupt the one running if it is ours."""
    plugin = dask_worker.plugins.get(PLUGIN) if dask_worker is not None else None
    if plugin is None:
        return 0
    return interrupt_on(plugin.server, prompt_ids)


def interrupt_on(server: Server, prompt_ids: list) -> int:
    """Delete our prompts from a server's queue and interrupt the running one if it is ours; how many were."""
    ours = set(prompt_ids)
    try:
        queue = server.request("GET", "/queue")
        server.request("POST", "/queue", {"delete": list(ours)})
        running = [item[1] for item in queue.get("queue_running", []) if item[1] in ours]
        for prompt_id in running:
            server.request("POST", "/interrupt", {"prompt_id": prompt_id})
        pending = [item[1] for item in queue.get("queue_pending", []) if item[1] in ours]
    except ClientError:
        return 0  # that server is gone: nothing left to stop there
    return len(running) + len(pending)


# --- the engine (driver side) ---------------------------------------------------------------------------------


class DaskEngine:
    """Runs items as Dask tasks: on an in-process cluster over ``urls``, or on the cluster at ``scheduler``."""

    def __init__(self, urls: list, scheduler: str | None = None, per_server: int = 2, timeout: float = 30.0):
        self.urls = [u.rstrip("/") for u in urls]
        self.scheduler = scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS") or None
        self.per_server = per_server
        self.timeout = timeout
        self.cluster = None
        self.dask: DaskClient | None = None
        self.workers: dict = {}  # url -> in-process Worker
        self.restarts: dict = {url: 0 for url in self.urls}  # url -> workers started again after it came back
        self._stop = threading.Event()
        self._supervisor: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def in_process(self) -> bool:
        return self.scheduler is None

    def start(self) -> DaskEngine:
        if self.dask is not None:
            return self
        if self.in_process:
            with dask.config.set({"distributed.scheduler.allowed-failures": 20}):
                self.cluster = LocalCluster(
                    n_workers=0, processes=False, dashboard_address=None, scheduler_port=0, silence_logs=logging.ERROR
                )
            self.dask = DaskClient(self.cluster)
            for url in self.urls:
                if _answers(url):
                    self._start_worker(url)
            self._supervisor = threading.Thread(target=self._supervise, name="qg-dask-supervisor", daemon=True)
            self._supervisor.start()
        else:
            self.dask = DaskClient(self.scheduler)
        return self

    def _start_worker(self, url: str) -> None:
        async def start():
            return await Worker(
                self.cluster.scheduler_address,
                nthreads=self.per_server,
                resources={RESOURCE: self.per_server},
                plugins=(ComfyUIPlugin(url, self.timeout),),
                name=f"comfyui {url} #{self.restarts[url]}",
                dashboard=False,
                memory_limit=0,
            )

        self.workers[url] = self.cluster.sync(start)

    def _supervise(self) -> None:
        """Forget the workers that closed (their ComfyUI went down); start one again when its ComfyUI answers."""
        while not self._stop.wait(PROBE_SECONDS):
            for url in self.urls:
                with self._lock:
                    if self._stop.is_set():
                        return
                    worker = self.workers.get(url)
                    if worker is not None and worker.status.name not in ("closed", "closing", "failed"):
                        continue
                    if _answers(url):
                        self.restarts[url] += 1
                        LOG.warning("ComfyUI %s answers again: starting a Dask worker for it", url)
                        self._start_worker(url)

    def _wait_for_workers(self, deadline: float | None) -> None:
        while not self.dask.scheduler_info(n_workers=-1)["workers"]:
            if not self.in_process:
                self.dask.wait_for_workers(
                    1, timeout=None if deadline is None else max(0.1, deadline - time.monotonic())
                )
                return
            if deadline is not None and time.monotonic() > deadline:
                raise Unreachable("no ComfyUI server answers")
            if not any(_answers(url) for url in self.urls):
                raise Unreachable(f"no server is reachable ({', '.join(self.urls)})")
            time.sleep(0.05)

    def run(self, name: str | None, items: list, workflow=None, out_dir=None, timeout=None, bar=None) -> tuple:
        """Every item (a params dict) once; the runs in item order and a summary (items, succeeded, failed,
        queued, duplicates, seconds). Raises ``TimedOut`` after ``timeout`` s (the unfinished items are
        cancelled; their prompts stay on the servers: ``TimedOut.runs``), and interrupts our prompts on Ctrl-C."""
        self.start()
        start = time.monotonic()
        deadline = None if timeout is None else start + timeout
        self._wait_for_workers(deadline)
        sweep_id = str(uuid.uuid4())
        specs = [
            {
                "sweep": sweep_id,
                "index": i,
                "prompt_id": item_prompt_id(sweep_id, i),
                "name": name,
                "params": params,
                "workflow": workflow,
                "fetch": out_dir is not None,
            }
            for i, params in enumerate(items)
        ]
        keys = [f"qg-{sweep_id}-{i}" for i in range(len(specs))]
        futures = self.dask.map(run_item, specs, key=keys, resources={RESOURCE: 1}, retries=3, pure=False)
        index_of = {f.key: i for i, f in enumerate(futures)}
        results: list = [None] * len(specs)
        try:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            for future, result in as_completed(futures, with_results=True, raise_errors=False, timeout=left):
                i = index_of[future.key]
                results[i] = self._run(result, specs[i], out_dir)
                future.release()
                if bar is not None:
                    bar.update(1)
        except TimeoutError:
            pending = [spec for spec, r in zip(specs, results, strict=True) if r is None]
            self.dask.cancel([f for f, r in zip(futures, results, strict=True) if r is None])
            where = self._queued_on(sweep_id)
            runs = [Run(s["prompt_id"], where.get(s["index"], ""), s["params"], index=s["index"]) for s in pending]
            raise TimedOut(f"{len(pending)} run(s) did not finish within {timeout:g} s", runs) from None
        except KeyboardInterrupt:
            self.dask.cancel(futures)
            self.interrupt([s["prompt_id"] for s in specs])
            raise
        queued = self._queued_on(sweep_id, counts=True)
        summary = {
            "items": len(results),
            "succeeded": sum(r.status == "success" for r in results),
            "failed": sum(r.status != "success" for r in results),
            "queued": sum(queued.values()),
            "duplicates": sum(max(0, n - 1) for n in queued.values()),
            "seconds": time.monotonic() - start,
        }
        return results, summary

    def _run(self, result, spec: dict, out_dir) -> Run:
        if isinstance(result, BaseException):  # the task failed after its retries
            message = f"{type(result).__name__}: {result}"
            return Run(spec["prompt_id"], "", spec["params"], "error", error={"message": message}, index=spec["index"])
        files = result.pop("images")
        run = Run(**result)
        if out_dir is not None:
            run.files = [save_image(filename, content, Path(out_dir)) for filename, content in files]
        return run

    def _queued_on(self, sweep_id: str, counts: bool = False) -> dict:
        """index -> the server that last queued it (or, with ``counts``, how many times it was queued)."""
        found: dict = {}
        for _, message in self.dask.get_events(TOPIC):
            if message.get("sweep") == sweep_id:
                found[message["index"]] = found.get(message["index"], 0) + 1 if counts else message["server"]
        return found

    def interrupt(self, prompt_ids: list) -> int:
        """Our prompts out of every queue, and interrupted where running: on every worker's ComfyUI (and in-process,
        every server, also those without a worker)."""
        stopped = 0
        if self.in_process:
            stopped = sum(interrupt_on(Server(url, timeout=5.0), prompt_ids) for url in self.urls)
        elif self.dask is not None:
            stopped = sum(self.dask.run(_interrupt_ours, prompt_ids).values())
        return stopped

    def close(self) -> None:
        with self._lock:
            self._stop.set()
        if self.cluster is not None:
            for worker in self.workers.values():
                if worker.status.name not in ("closed", "closing"):
                    self.cluster.sync(worker.close, timeout=5, executor_wait=False, reason="sweep engine closed")
        if self.dask is not None:
            self.dask.close()
        if self.cluster is not None:
            self.cluster.close()
        self.dask = self.cluster = None


def _answers(url: str) -> bool:
    try:
        Server(url, timeout=2.0).request("GET", "/system_stats")
    except (Unreachable, ServerFailed):
        return False
    return True


# --- the worker preload (dask worker --preload client.dask_engine --comfyui-url URL) ----------------------------


@click.command()
@click.option("--comfyui-url", default="http://127.0.0.1:8188", show_default=True, help="this worker's ComfyUI")
@click.option("--comfyui-timeout", default=30.0, show_default=True, help="seconds per HTTP request to it")
async def dask_setup(worker, comfyui_url: str, comfyui_timeout: float) -> None:
    """Serve one ComfyUI: wait until it answers (the worker joins the scheduler only then), then add the plugin
    that probes it and closes the worker when it stops answering."""
    import asyncio

    waited = 0.0
    while not await asyncio.to_thread(_answers, comfyui_url):
        if waited == 0.0:
            LOG.warning("waiting for ComfyUI at %s before joining the scheduler", comfyui_url)
        await asyncio.sleep(PROBE_SECONDS)
        waited += PROBE_SECONDS
    await worker.plugin_add(ComfyUIPlugin(comfyui_url, comfyui_timeout), name=PLUGIN, catch_errors=False)
