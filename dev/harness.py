"""Start a real ComfyUI with this pack and talk to it over HTTP and the websocket.

Used by the tests (``tests/conftest.py``), the benchmarks and the demo. HTTP and the websocket go through the
pack's own client package (``client/``: ``ComfyClient`` is its ``Server``); runs inside the provisioned ``.venv``
(``dev/provision.sh``).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty, SimpleQueue

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))  # for the shipped client package; appended, so the pack's nodes/ shadows nothing

from client import Refused, Server, Unreachable  # noqa: E402

PACK_NAME = "quality_gate"
# under <workdir>/models, per server
MODEL_FOLDERS = ("open_clip", "aesthetic", "clip_scorers", "clip_vision", "checkpoints")
CACHE_MODES = {
    "classic": ["--cache-classic"],
    "lru": ["--cache-lru", "10"],
    "none": ["--cache-none"],
    "ram": ["--cache-ram"],
}


def comfy_dir() -> Path:
    """The ComfyUI to run: ``COMFYUI_DIR`` where set, else the one ``dev/provision.sh`` unpacked."""
    path = Path(os.environ.get("COMFYUI_DIR") or ROOT / ".comfyui" / "ComfyUI")
    if not (path / "main.py").is_file():
        raise RuntimeError(f"no ComfyUI at {path}: run dev/provision.sh first (or set COMFYUI_DIR)")
    return path


PINNED_FRONTEND = "1.32.9"  # the comfyui-frontend-package ComfyUI 0.3.75 pins (installed in .venv)
NEWEST_FRONTEND = "1.58.1"  # unpacked by dev/provision.sh under .comfyui/frontends/


def frontend_root(version: str) -> Path | None:
    """The ``--front-end-root`` for a frontend version: None for the pinned one (the server's default),
    else the static folder ``dev/provision.sh`` unpacked."""
    if version == PINNED_FRONTEND:
        return None
    path = ROOT / ".comfyui" / "frontends" / version
    if not (path / "index.html").is_file():
        raise RuntimeError(f"no frontend {version} at {path}: run dev/provision.sh first")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def failed_imports(log: str) -> list[str]:
    """Custom node packs that ComfyUI reported as failed to import. (Its own optional extras, such as the
    audio nodes without torchaudio, log "IMPORT FAILED: nodes_audio.py" and are not packs.)"""
    return [line.strip() for line in log.splitlines() if "(IMPORT FAILED)" in line]


class ServerError(RuntimeError):
    pass


class ComfyServer:
    """A ComfyUI process on the CPU with this pack (and optional extra node folders) loaded through an
    extra_model_paths yaml, so nothing is copied into ComfyUI's own custom_nodes."""

    def __init__(
        self,
        workdir: Path | None = None,
        extra_args=(),
        node_roots=(),
        port: int | None = None,
        name: str = "comfyui",
        env: dict | None = None,
        front_end_root: Path | None = None,
        pack: Path | None = None,
    ):
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="qg-comfy-"))
        self.env = env or {}
        # A frontend's static folder served instead of the pinned package (--front-end-root), e.g. the one
        # dev/provision.sh unpacks under .comfyui/frontends/<version>/ (see frontend_root()).
        self.front_end_root = Path(front_end_root) if front_end_root else None
        self.extra_args = [str(a) for a in extra_args]
        self.node_roots = [Path(p).resolve() for p in node_roots]
        self.pack = Path(pack).resolve() if pack else ROOT  # the pack folder loaded as quality_gate
        self.port = port or free_port()
        self.name = name
        self.process: subprocess.Popen | None = None
        self._log_file = None
        self.output_dir = self.workdir / "output"
        self.log_path = self.workdir / f"{name}.log"

    def model_dir(self, folder: str) -> Path:
        """This server's own model folder (listed in its extra_model_paths yaml), e.g. ``open_clip``."""
        path = self.workdir / "models" / folder
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _write_config(self) -> Path:
        packs = self.workdir / "packs"
        packs.mkdir(parents=True, exist_ok=True)
        link = packs / PACK_NAME
        if not link.exists():
            link.symlink_to(self.pack, target_is_directory=True)
        lines = ["quality_gate:", f"  base_path: {self.workdir / 'models'}", f"  custom_nodes: {packs}"]
        lines += [f"  {folder}: {folder}/" for folder in MODEL_FOLDERS]
        for i, root in enumerate(self.node_roots):
            lines += [f"extra_nodes_{i}:", f"  custom_nodes: {root}"]
        config = self.workdir / "extra_model_paths.yaml"
        config.write_text("\n".join(lines) + "\n")
        return config

    def start(self, timeout: float = 180.0) -> ComfyServer:
        comfy = comfy_dir()
        self.output_dir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "user").mkdir(exist_ok=True)
        (self.workdir / "input").mkdir(exist_ok=True)
        for folder in MODEL_FOLDERS:
            self.model_dir(folder)
        config = self._write_config()
        cmd = [
            sys.executable,
            "main.py",
            "--cpu",
            "--listen",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--output-directory",
            str(self.output_dir),
            "--temp-directory",
            str(self.workdir),
            "--input-directory",
            str(self.workdir / "input"),
            "--user-directory",
            str(self.workdir / "user"),
            "--database-url",
            "sqlite:///:memory:",
            "--extra-model-paths-config",
            str(config),
            *(["--front-end-root", str(self.front_end_root)] if self.front_end_root else []),
            *self.extra_args,
        ]
        self._log_file = open(self.log_path, "w")  # noqa: SIM115 (open while the process runs; closed in stop())
        self.process = subprocess.Popen(
            cmd,
            cwd=comfy,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **self.env},
        )
        deadline = time.monotonic() + timeout
        probe = Server(self.url, timeout=2)
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code = self.process.returncode
                self.stop()
                raise ServerError(f"ComfyUI exited with code {code} while starting:\n{self.log_tail()}")
            try:
                probe.request("GET", "/system_stats")
                break
            except Unreachable:
                time.sleep(0.25)
        else:
            self.stop()
            raise ServerError(f"ComfyUI did not answer within {timeout:.0f} s:\n{self.log_tail()}")
        failed = failed_imports(self.log())
        if failed:
            self.stop()
            raise ServerError("a custom node pack failed to import:\n" + "\n".join(failed) + "\n" + self.log_tail())
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def check_worker(self) -> None:
        """Raise ServerError with the traceback when ComfyUI's prompt worker thread died (every prompt queued
        after that waits forever)."""
        log = self.log()
        if "(prompt_worker):" in log:
            raise ServerError("ComfyUI's prompt worker thread died:\n" + log[log.index("Exception in thread") :][:4000])

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> ComfyServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.cleanup()


class PromptRejected(Refused):
    """POST /prompt answered 400: the prompt failed validation. ``body`` is ComfyUI's JSON reply."""

    def __init__(self, body: dict):
        super().__init__(400, body)
        self.body = body

    def __str__(self) -> str:
        return json.dumps(self.body, indent=1)[:4000]

    def messages(self) -> str:
        """Every error text of the reply in one string, for assertions."""
        parts = [json.dumps(self.body.get("error", {}))]
        for node in self.body.get("node_errors", {}).values():
            parts += [f"{e.get('message')} {e.get('details')}" for e in node.get("errors", [])]
        return "\n".join(parts)


@dataclass
class RunResult:
    prompt_id: str
    status: str  # "success" or "error"
    executing: list = field(default_factory=list)  # node ids in "executing" events, in order
    cached: list = field(default_factory=list)
    error: dict | None = None  # the execution_error event, if any
    history: dict = field(default_factory=dict)
    seconds: float = 0.0
    loop_events: list = field(default_factory=list)  # data of the "qg.loop" events, in order
    progress: list = field(default_factory=list)  # data of the "progress" events, in order
    progress_state_sizes: list = field(default_factory=list)  # length of each progress_state message (unparsed)

    @property
    def executed(self) -> set:
        return set(self.executing)

    @property
    def outputs(self) -> dict:
        return self.history.get("outputs", {})


class ComfyClient(Server):
    """POST /prompt, follow the websocket until the prompt ends, then read /history: the shipped client's
    ``Server`` (HTTP, uploads, ``history``; errors ``Refused``/``ServerFailed``/``Unreachable``) and its event
    thread, whose messages this client queues for ``run``."""

    def __init__(self, url: str, timeout: float = 30.0, server: ComfyServer | None = None):
        super().__init__(url, timeout)
        self.server = server  # when given, a wait ends early with its log if its prompt worker died
        self._messages: SimpleQueue = SimpleQueue()
        self.listeners.append(self._messages.put)

    def get(self, path: str):
        return self.request("GET", path)

    def queue(self, prompt: dict, use_socket: bool = True) -> str:
        body = {"prompt": prompt}
        if use_socket:
            self.events  # noqa: B018 (connect first, so no event of this prompt is missed)
            body["client_id"] = self.client_id
        try:
            return self.request("POST", "/prompt", body)["prompt_id"]
        except Refused as e:
            if e.status == 400:
                raise PromptRejected(e.reply) from None
            raise

    def run(self, prompt: dict, timeout: float = 300.0) -> RunResult:
        """Queue a prompt and wait for it, recording which nodes executed and which were cached."""
        self.events  # noqa: B018 (connect first)
        while not self._messages.empty():  # left from earlier prompts: none of this one can be there yet
            self._messages.get_nowait()
        start = time.perf_counter()
        prompt_id = self.queue(prompt)
        result = RunResult(prompt_id=prompt_id, status="running")
        deadline = time.monotonic() + timeout
        while True:
            try:
                message = self._messages.get(timeout=min(5.0, max(0.1, deadline - time.monotonic())))
            except Empty:
                if time.monotonic() < deadline:
                    self._check_worker()
                    continue
                raise TimeoutError(f"prompt {prompt_id} did not finish within {timeout:.0f} s") from None
            data, kind = message.get("data") or {}, message.get("type")
            if data.get("prompt_id") != prompt_id:
                continue
            if kind == "progress_state":  # it lists every node of the prompt; its size as ComfyUI sent it
                result.progress_state_sizes.append(len(json.dumps(message)))
            elif kind == "executing":
                if data["node"] is None:
                    break
                result.executing.append(data["node"])
            elif kind == "execution_cached":
                result.cached.extend(data["nodes"])
            elif kind == "execution_error":
                result.error = data
            elif kind == "qg.loop":
                result.loop_events.append(data)
            elif kind == "progress":
                result.progress.append(data)
        result.seconds = time.perf_counter() - start
        result.history = self.history(prompt_id)
        result.status = result.history.get("status", {}).get("status_str", "unknown")
        return result

    def run_polling(self, prompt: dict, timeout: float = 300.0, interval: float = 0.005) -> RunResult:
        """Queue without a websocket client (as a plain API caller does) and poll /history every ``interval``
        seconds until done. Only ``status``, ``history`` and ``seconds`` (the wall time) are filled in."""
        start = time.perf_counter()
        prompt_id = self.queue(prompt, use_socket=False)
        entry = self.wait_finished(prompt_id, timeout, interval)
        seconds = time.perf_counter() - start
        return RunResult(prompt_id, entry["status"]["status_str"], history=entry, seconds=seconds)

    def wait_finished(self, prompt_id: str, timeout: float = 300.0, interval: float = 0.1) -> dict:
        """Poll /history every ``interval`` seconds until the prompt has finished; returns its history entry."""
        deadline = time.monotonic() + timeout
        checked = time.monotonic()
        while (entry := self.history(prompt_id)).get("status", {}).get("completed") is None:
            if time.monotonic() - checked > 5:
                self._check_worker()
                checked = time.monotonic()
            if time.monotonic() > deadline:
                raise TimeoutError(f"prompt {prompt_id} did not finish within {timeout:.0f} s")
            time.sleep(interval)
        return entry

    def _check_worker(self) -> None:
        if self.server is not None:
            self.server.check_worker()

    def upload_image(self, path: Path) -> str:
        """Upload a local image into the server's input folder (POST /upload/image, once per content hash);
        returns the name LoadImage takes."""
        return self.upload(path)


def sleep_template(label: str, delay: float) -> dict:
    """A template with one parameter ``n`` passed through a test-pack ``QGTest_Probe`` that sleeps ``delay`` s and
    recorded under the title ``n``: prompts whose cost is a fixed sleep (sweep tests and the sweep benchmark)."""
    return {
        "n": {"class_type": "QG_ParamInt", "inputs": {"name": "n", "value": 0, "min": 0, "max": 10**9, "step": 1}},
        "sleep": {"class_type": "QGTest_Probe", "inputs": {"label": label, "value": ["n", 0], "delay": delay}},
        "out": {
            "class_type": "QGTest_Record",
            "_meta": {"title": "n"},
            "inputs": {"label": label, "value": ["sleep", 0]},
        },
    }
