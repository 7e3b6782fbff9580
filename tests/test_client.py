"""The Python client (the client/ package) against real ComfyUI servers: run, sweep, profile, upload,
websocket drop, Ctrl-C, exit codes (sweeps over several servers on Dask: tests/test_client_dask.py)."""

import json
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from harness import comfy_dir
from PIL import Image

from client import EXIT_INTERRUPTED, Client, Refused, Server, TimedOut, format_timings

ROOT = Path(__file__).resolve().parents[1]

CLIENT = ROOT / "client" / "quality_gate_client.py"
TEMPLATE = "template_solid_image"
TEST_NODES = ROOT / "tests" / "comfy_nodes"


@pytest.fixture
def uploads():
    """Clients whose uploads into the shared ComfyUI input folder (the session server has no input folder of its
    own) are removed after the test."""
    clients = []
    yield clients
    for qg in clients:
        for server in qg.servers:
            for name in server._uploaded.values():
                (comfy_dir() / "input" / name).unlink(missing_ok=True)


def slow_workflow(label: str, steps: int, delay: float) -> dict:
    """A chain of QGTest_Probe nodes (each sleeps ``delay`` s), ending in a record of the ``n`` parameter."""
    wf = {"n": {"class_type": "QG_ParamInt", "inputs": {"name": "n", "value": 0, "min": 0, "max": 10**6, "step": 1}}}
    previous = ["n", 0]
    for i in range(steps):
        wf[f"p{i}"] = {
            "class_type": "QGTest_Probe",
            "inputs": {"label": f"{label}-{i}", "value": previous, "delay": delay},
        }
        previous = [f"p{i}", 0]
    wf["out"] = {"class_type": "QGTest_Record", "_meta": {"title": "n"}, "inputs": {"label": label, "value": previous}}
    return wf


def test_run_downloads_outputs_and_times_every_node(server, tmp_path):
    with Client(server.url) as qg:
        seen = []
        qg.on_event(seen.append)
        run = qg.run(TEMPLATE, {"width": 32, "height": 16, "prefix": "client_run"}, out_dir=tmp_path)
        assert run.status == "success" and run.params["width"] == 32
        assert str(uuid.UUID(run.prompt_id)) == run.prompt_id  # minted by the client: a canonical UUID
        ours = [m["type"] for m in seen if (m.get("data") or {}).get("prompt_id") == run.prompt_id]
        assert "executing" in ours and "execution_success" in ours  # on_event sees this client's messages
        assert len(run.files) == 1 and Image.open(run.files[0]).size == (32, 16)
        kinds = {row[1] for row in run.timings}
        assert {"EmptyImage", "SaveImage", "QG_Gate"} <= kinds
        assert all(row[3] >= 0 for row in run.timings) and "SaveImage" in format_timings(run.timings)
        timings = qg.profile(None, {"n": 1}, workflow=slow_workflow(uuid.uuid4().hex, 2, 0.3))
        slow = [row for row in timings if row[1] == "QGTest_Probe"]
        assert len(slow) == 2 and all(0.25 < row[3] < 5 for row in slow)


def test_sweep_on_one_server(server):
    with Client(server.url) as qg:
        runs = qg.sweep(TEMPLATE, {"width": [16, 24], "color": [1, 2]}, {"height": 16}, mode="zip")
        assert [(r.status, r.params["width"], r.params["color"]) for r in runs] == [
            ("success", 16, 1),
            ("success", 24, 2),
        ]
        runs = qg.sweep(TEMPLATE, {"width": [16, 24], "color": {"start": 5, "count": 2}}, {"height": 16})
        assert len(runs) == 4 and all(r.outputs["image"]["images"] for r in runs)
        assert all(str(uuid.UUID(r.prompt_id)) == r.prompt_id for r in runs)
        with pytest.raises(Refused) as info:
            qg.sweep(TEMPLATE, {"widht": [1]})
        assert "did you mean 'width'" in info.value.describe()


def test_images_upload_once_per_content_hash(server, tmp_path, uploads):
    photo = tmp_path / "photo.png"
    Image.new("RGB", (8, 6), (uuid.uuid4().int % 256, 10, 20)).save(photo)
    wf = {
        "1": {"class_type": "LoadImage", "_meta": {"title": "Photo"}, "inputs": {"image": "example.png"}},
        "2": {
            "class_type": "QGTest_Record",
            "_meta": {"title": "pixels"},
            "inputs": {"label": "up", "value": ["1", 0]},
        },
    }
    with Client(server.url) as qg:
        uploads.append(qg)
        first = qg.run_workflow(wf, {"Photo.image": f"@{photo}"})
        second = qg.run_workflow(wf, {"Photo.image": f"@{photo}"})
        assert first.status == second.status == "success", first.error
        assert first.outputs["pixels"]["qg_record"][0]["value"]["tensor"] == [1, 6, 8, 3]
        assert qg.server.uploads == 1
    with Client(server.url) as other:  # a new session finds the file already on the server
        assert other.run_workflow(wf, {"Photo.image": f"@{photo}"}).status == "success"
        assert other.server.uploads == 0


def test_the_package_needs_neither_comfyui_nor_torch():
    """``import client`` in a fresh interpreter whose path has only the checkout and the installed packages: it
    loads no ComfyUI or torch module, and no third-party module but websocket-client (tqdm only for a bar)."""
    code = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); before = set(sys.modules); import client; "
        "print(json.dumps(sorted({m.split('.')[0] for m in set(sys.modules) - before} - set(sys.stdlib_module_names))))"
    )
    done = subprocess.run([sys.executable, "-I", "-c", code, str(ROOT)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout))
    assert {"torch", "comfy", "server", "folder_paths", "nodes", "execution", "comfy_execution"}.isdisjoint(loaded)
    assert loaded == {"client", "websocket"}, loaded
    usage = subprocess.run([sys.executable, "-m", "client", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert usage.returncode == 0 and "{list,schema,run,sweep,workflow}" in usage.stdout, usage.stderr


@pytest.mark.parametrize("error", [RuntimeError, ValueError])
def test_a_listener_that_raises_reaches_the_waiting_call(server, error):
    """An ``on_event`` callback that raises: the event thread goes on (no reconnect, no lost message) and the
    ``run`` that is waiting raises the callback's exception."""
    label = uuid.uuid4().hex
    seen, raised = [], []

    def listener(message):
        seen.append(message)
        if message["type"] == "executing" and not raised:  # once
            raised.append(message)
            raise error(f"listener bug {label}")

    with Client(server.url) as qg:
        qg.on_event(listener)
        with pytest.raises(error, match=f"listener bug {label}"):
            qg.run(None, {"n": 1}, workflow=slow_workflow(label, 2, 0.3))
        events = qg.server.events
        assert events.alive and events.listener_errors == 1 and events.reconnects == 0
        run = qg.run(None, {"n": 2}, workflow=slow_workflow(label, 2, 0.3))
        assert run.status == "success" and run.outputs["n"]["qg_record"][0]["value"] == 2
        ours = [m["type"] for m in seen if (m.get("data") or {}).get("prompt_id") == run.prompt_id]
        assert "execution_success" in ours  # the listener still hears every message


def test_a_sweep_over_several_servers_times_out_at_its_timeout(server):
    """A sweep spread over servers (two URLs of the same server, so on the Dask engine) stops waiting at its own
    timeout; the unfinished runs carry their prompt ids, and ``interrupt`` stops them."""
    label = uuid.uuid4().hex
    name = f"slow_{label[:8]}"
    Server(server.url).request("PUT", f"/qg/templates/{name}", {"workflow": slow_workflow(label, 4, 1.0)})
    urls = [server.url, server.url.replace("127.0.0.1", "localhost")]
    with Client(urls) as qg:
        start = time.monotonic()
        with pytest.raises(TimedOut, match="did not finish within 1.5 s") as info:
            qg.sweep(name, {"n": [1, 2, 3, 4]}, timeout=1.5)
        waited = time.monotonic() - start
        qg.interrupt(info.value.runs)
    assert 1.5 <= waited < 6.0, waited  # the four items take 8 s or more (the in-process cluster starts first)
    assert info.value.runs and all(str(uuid.UUID(r.prompt_id)) == r.prompt_id for r in info.value.runs)


def test_run_survives_a_dropped_websocket(server):
    with Client(server.url) as qg:
        run = qg.submit(qg.server, None, {"n": 5}, slow_workflow(uuid.uuid4().hex, 4, 0.4))
        time.sleep(0.6)
        qg.server.events.drop()
        done = qg.wait([run], timeout=60)[0]
        assert done.status == "success" and done.outputs["n"]["qg_record"][0]["value"] == 5
        assert qg.server.events.reconnects >= 1


def cli(server, *args, progress=False, **kwargs):
    return subprocess.run(
        [sys.executable, str(CLIENT), "--server", server.url, *([] if progress else ["--no-progress"]), *args],
        capture_output=True,
        text=True,
        timeout=120,
        **kwargs,
    )


def test_command_and_exit_codes(server, tmp_path):
    listed = cli(server, "list")
    assert listed.returncode == 0 and TEMPLATE in listed.stdout
    schema = cli(server, "schema", TEMPLATE)
    assert json.loads(schema.stdout)["properties"]["width"]["maximum"] == 512
    ok = cli(
        server,
        "run",
        TEMPLATE,
        "--param",
        "width=40",
        "--param",
        "prefix=cli",
        "--out",
        str(tmp_path),
        "--timings",
        progress=True,
    )
    assert ok.returncode == 0 and "template_solid_image nodes" in ok.stderr, ok.stderr
    assert "success" in ok.stdout and "SaveImage" in ok.stdout and len(list(tmp_path.glob("cli*.png"))) == 1
    refused = cli(server, "run", TEMPLATE, "--param", "width=9999", "--param", "save=maybe")
    assert refused.returncode == 2 and "width:" in refused.stderr and "save:" in refused.stderr
    failing = tmp_path / "failing.json"
    failing.write_text(json.dumps({
        "1": {"class_type": "QGTest_Json", "inputs": {"json": "1"}},
        "2": {"class_type": "QG_Gate", "inputs": {"value": ["1", 0], "open": False, "on_closed": "error"}},
        "3": {"class_type": "QGTest_Record", "inputs": {"label": "fail", "value": ["2", 0]}},
    }))  # fmt: skip
    failed = cli(server, "workflow", str(failing))
    assert failed.returncode == 1 and "gate is closed" in failed.stdout
    sweep = ("sweep", TEMPLATE, "--sweep", "width=16,24", "--sweep", "color=7:+2", "--param", "height=16")
    swept = cli(server, *sweep, progress=True)
    assert swept.returncode == 0 and swept.stdout.count("success") == 4 and "4/4" in swept.stderr
    gone = subprocess.run([sys.executable, str(CLIENT), "--server", "http://127.0.0.1:9", "list"], capture_output=True)
    assert gone.returncode == 3


def test_ctrl_c_interrupts_its_own_prompt(server, client, tmp_path):
    path = tmp_path / "slow.json"
    path.write_text(json.dumps(slow_workflow(uuid.uuid4().hex, 30, 0.5)))
    process = subprocess.Popen(
        [sys.executable, str(CLIENT), "--server", server.url, "--no-progress", "workflow", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A test run started in the background inherits SIGINT ignored, and Python then installs no Ctrl-C
        # handler: give the client the default disposition, as a terminal would.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 60
    running = []
    while not running and time.monotonic() < deadline:
        running = [item[1] for item in client.get("/queue")["queue_running"]]
        time.sleep(0.1)
    assert running, "the prompt never started"
    time.sleep(1.0)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    assert process.returncode == EXIT_INTERRUPTED, (out, err)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        status = client.get(f"/qg/runs/{running[0]}")
        if status["status"] != "running":
            break
        time.sleep(0.1)
    assert status["status"] == "error" and status["error"]["type"] == "execution_interrupted", status
