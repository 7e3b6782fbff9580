"""Sweeps over several real ComfyUI servers on the client's Dask engine (client/dask_engine.py): a server killed
mid-sweep, replies dropped by a flaky proxy, a server restarted mid-sweep and used again, Ctrl-C, and a cluster of
``dask worker`` processes with the client's preload, one per ComfyUI. Prompts are test-pack sleeps, so the 2 cores
are not the limit."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from harness import ComfyServer, free_port, sleep_template
from PIL import Image

from client import EXIT_INTERRUPTED, Client, Server, Unreachable

ROOT = Path(__file__).resolve().parents[1]
TEST_NODES = ROOT / "tests" / "comfy_nodes"


def put_template(urls, delay: float) -> str:
    label = uuid.uuid4().hex
    name = f"sleep_{label[:8]}"
    for url in urls:
        Server(url).request("PUT", f"/qg/templates/{name}", {"workflow": sleep_template(label, delay)})
    return name


def values(runs) -> list:
    return [r.outputs["n"]["qg_record"][0]["value"] for r in runs]


def start_all(servers) -> None:
    threads = [threading.Thread(target=s.start) for s in servers if s.process is None or s.process.poll() is not None]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(s.process is not None for s in servers), "a server did not start"


@pytest.fixture(scope="module")
def extra(tmp_path_factory):
    """Two more ComfyUI servers (with the test pack), each with its own input folder; started again before each
    test if a test killed one."""
    workdirs = [tmp_path_factory.mktemp(f"dask{i}") for i in range(2)]
    servers = [
        ComfyServer(workdir=w, extra_args=["--input-directory", w / "input"], node_roots=[TEST_NODES], name=w.name)
        for w in workdirs
    ]
    yield servers
    for s in servers:
        s.cleanup()


@pytest.fixture
def trio(server, extra):
    start_all(extra)
    return [server, *extra]


def kill_when_busy(victim: ComfyServer, lost: list | None = None) -> threading.Thread:
    """A thread that kills ``victim`` once one of its prompts finished and another is running; the ids of the prompts
    it then held (running or queued) go into ``lost``."""

    def watch():
        probe = Server(victim.url, timeout=5)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                queue = probe.request("GET", "/queue")
                if queue["queue_running"] and probe.request("GET", "/history"):
                    break
            except Unreachable:
                pass  # a busy machine: ask again
            time.sleep(0.05)
        victim.process.kill()
        victim.process.wait()
        if lost is not None:
            lost.extend(item[1] for item in queue["queue_running"] + queue["queue_pending"])

    thread = threading.Thread(target=watch)
    thread.start()
    return thread


def test_three_servers_one_killed_every_item_once_in_order(trio, tmp_path):
    victim = trio[1]
    name = put_template([s.url for s in trio], 0.3)
    with Client([s.url for s in trio], engine="dask") as qg:
        lost = []
        killer = kill_when_busy(victim, lost)
        runs = qg.sweep(name, {"n": list(range(24))})
        killer.join()
        summary = qg.summary
    assert [r.status for r in runs] == ["success"] * 24
    assert values(runs) == list(range(24)) and [r.index for r in runs] == list(range(24))
    assert len({r.prompt_id for r in runs}) == 24 and all(str(uuid.UUID(r.prompt_id)) == r.prompt_id for r in runs)
    assert len({r.server for r in runs}) >= 2
    assert summary["items"] == 24 and summary["succeeded"] == 24
    assert summary["queued"] == 24 + summary["duplicates"], summary
    # the items the victim held when it died ran again elsewhere
    again = [r for r in runs if r.prompt_id in lost]
    assert again and all(r.server != victim.url for r in again), (lost, again)


class FlakyProxy(ThreadingHTTPServer):
    """Forwards HTTP to a ComfyUI; drops the reply (closes the connection without answering) of every ``every``-th
    POST after forwarding it, as a lost reply would. The websocket is not proxied (the client then polls)."""

    daemon_threads = True

    def __init__(self, target: str, every: int = 3):
        self.target = urllib.parse.urlsplit(target)
        self.every, self.posts, self.dropped = every, 0, 0
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), ProxyHandler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class ProxyHandler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def forward(self):
        proxy: FlakyProxy = self.server
        if self.path.startswith("/ws"):
            self.send_error(404)
            return
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        conn = http.client.HTTPConnection(proxy.target.hostname, proxy.target.port, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        conn.request(self.command, self.path, body=body or None, headers=headers)
        reply = conn.getresponse()
        content = reply.read()
        conn.close()
        if self.command == "POST":
            with proxy.lock:
                proxy.posts += 1
                drop = proxy.posts % proxy.every == 0
                proxy.dropped += drop
            if drop:
                self.close_connection = True
                return  # the request was served; its reply is lost
        self.send_response(reply.status)
        for key, value in reply.getheaders():
            if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    do_GET = do_POST = do_PUT = forward


def test_a_flaky_proxy_drops_replies_and_nothing_is_written_off(trio):
    proxy = FlakyProxy(trio[1].url, every=3)
    try:
        urls = [trio[0].url, proxy.url]
        name = put_template(urls, 0.2)
        with Client(urls, engine="dask") as qg:
            runs = qg.sweep(name, {"n": list(range(16))})
            engine = qg.dask
            restarts = dict(engine.restarts)
            summary = qg.summary
    finally:
        proxy.shutdown()
        proxy.server_close()
    assert [r.status for r in runs] == ["success"] * 16 and values(runs) == list(range(16))
    assert proxy.dropped >= 2, proxy.dropped
    assert any(r.server == proxy.url for r in runs), "nothing ran behind the proxy"
    assert restarts == {trio[0].url: 0, proxy.url: 0}, restarts  # the proxied server was never declared down
    assert summary["duplicates"] == 0, summary  # a retried POST found its prompt id queued (409)


def test_a_server_restarted_mid_sweep_is_used_again(trio):
    victim = trio[2]
    urls = [trio[0].url, victim.url]
    name = put_template(urls, 0.5)
    with Client(urls, engine="dask") as qg:
        comeback = threading.Thread(target=lambda: (kill_when_busy(victim).join(), victim.start()))
        comeback.start()
        # 100 items of 0.5 s: once the victim dies the other server alone needs ~45 s, well beyond a restart
        # of the victim (~10 s, more on a loaded machine: 50 items were not always enough)
        runs = qg.sweep(name, {"n": list(range(100))})
        comeback.join()
        restarts = dict(qg.dask.restarts)
    assert [r.status for r in runs] == ["success"] * 100 and values(runs) == list(range(100))
    after = [r for r in runs if r.server == victim.url and Server(victim.url).history(r.prompt_id)]
    assert restarts[victim.url] == 1 and after, "the restarted server ran nothing"


def test_batch_with_images_uploaded_once_per_server(trio, tmp_path):
    photo = tmp_path / "photo.png"
    Image.new("RGB", (5, 4), (uuid.uuid4().int % 256, 1, 2)).save(photo)
    wf = sleep_template(uuid.uuid4().hex, 0.1)
    wf["img"] = {"class_type": "LoadImage", "_meta": {"title": "Photo"}, "inputs": {"image": "example.png"}}
    wf["shape"] = {
        "class_type": "QGTest_Record",
        "_meta": {"title": "shape"},
        "inputs": {"label": "s", "value": ["img", 0]},
    }
    wf["save"] = {
        "class_type": "SaveImage",
        "_meta": {"title": "saved"},
        "inputs": {"images": ["img", 0], "filename_prefix": f"b{uuid.uuid4().hex[:6]}"},
    }
    urls = [trio[1].url, trio[2].url]
    with Client(urls, engine="dask") as qg:
        runs = qg.fan_out(
            None, [{"n": i, "Photo.image": f"@{photo}"} for i in range(6)], workflow=wf, out_dir=tmp_path / "out"
        )
    assert [r.status for r in runs] == ["success"] * 6, [r.error for r in runs]
    assert all(r.outputs["shape"]["qg_record"][0]["value"]["tensor"] == [1, 4, 5, 3] for r in runs)
    assert len({r.server for r in runs}) == 2
    assert all(len(r.files) == 1 and Image.open(r.files[0]).size == (5, 4) for r in runs)
    for s in trio[1:]:
        assert len(list((s.workdir / "input").glob("qg_*.png"))) == 1  # uploaded once to each server


def test_ctrl_c_interrupts_our_prompts_on_every_server(trio):
    urls = [trio[1].url, trio[2].url]
    name = put_template(urls, 3.0)
    args = [a for url in urls for a in ("--server", url)]
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "client",
            *args,
            "--engine",
            "dask",
            "--no-progress",
            "sweep",
            name,
            "--sweep",
            "n=1,2,3,4,5,6",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as a terminal would (see test_client)
    )
    probes = [Server(u) for u in urls]
    deadline = time.monotonic() + 60
    ours: dict = {}
    while time.monotonic() < deadline:
        queues = [p.request("GET", "/queue") for p in probes]
        if all(q["queue_running"] for q in queues):
            ours = {
                p.url: [i[1] for i in q["queue_running"] + q["queue_pending"]]
                for p, q in zip(probes, queues, strict=True)
            }
            break
        time.sleep(0.1)
    assert ours, "the sweep never ran on both servers"
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == EXIT_INTERRUPTED, (out, err)
    for probe in probes:
        assert probe.request("GET", "/queue")["queue_pending"] == []
        running = ours[probe.url][0]
        deadline = time.monotonic() + 20
        while (status := probe.status(running))["status"] == "running" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert status["status"] == "error" and status["error"]["type"] == "execution_interrupted", status


def test_dask_workers_with_the_preload_one_comfyui_killed(trio, tmp_path):
    """The cluster recipe: a scheduler, and a ``dask worker`` with the client's preload next to each ComfyUI."""
    comfys = [trio[1], trio[2]]
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    dask = [str(Path(sys.executable).parent / "dask")]
    processes = [
        subprocess.Popen(
            [*dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(tmp_path / "scheduler.log", "w"),
        )
    ]
    try:
        for i, comfy in enumerate(comfys):
            command = [
                *dask,
                "worker",
                f"tcp://127.0.0.1:{port}",
                "--nthreads",
                "2",
                "--resources",
                "comfyui=2",
                "--no-dashboard",
                "--preload",
                "client.dask_engine",
                "--comfyui-url",
                comfy.url,
            ]
            processes.append(
                subprocess.Popen(
                    command,
                    env=env,
                    cwd=tmp_path,
                    stdout=subprocess.DEVNULL,
                    stderr=open(tmp_path / f"worker{i}.log", "w"),
                )
            )
        name = put_template([c.url for c in comfys], 0.3)
        with Client([comfys[0].url], scheduler=f"tcp://127.0.0.1:{port}") as qg:
            qg.dask.dask.wait_for_workers(2, timeout=60)
            lost = []
            killer = kill_when_busy(comfys[1], lost)
            runs = qg.sweep(name, {"n": list(range(20))})
            killer.join()
            workers = qg.dask.dask.scheduler_info(n_workers=-1)["workers"]
        assert [r.status for r in runs] == ["success"] * 20 and values(runs) == list(range(20))
        again = [r for r in runs if r.prompt_id in lost]
        assert again and all(r.server == comfys[0].url for r in again), (lost, again)  # re-run on the other machine
        assert len(workers) == 1  # the killed ComfyUI's worker left (its nanny's new one waits for that ComfyUI)
        assert "is down" in (tmp_path / "worker1.log").read_text()
    finally:
        for p in reversed(processes):
            p.terminate()
        for p in processes:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
