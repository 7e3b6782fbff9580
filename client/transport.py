"""HTTP to one ComfyUI server (JSON requests, image upload and download) and the errors every part raises."""

from __future__ import annotations

import hashlib
import json
import mimetypes
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

from .events import Events

EXIT_OK, EXIT_FAILED, EXIT_REFUSED, EXIT_UNREACHABLE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


class ClientError(Exception):
    exit_code = EXIT_FAILED


class TimedOut(ClientError):
    """Runs did not finish in time; ``runs`` are the unfinished ones (still queued or running on their servers:
    ``Client.interrupt(error.runs)`` stops them)."""

    def __init__(self, message: str, runs: list):
        self.runs = runs
        super().__init__(message)


class StatusError(ClientError):
    """The server answered with an HTTP error: ``status`` and ``reply`` (its JSON body, or ``{"error": text}``)."""

    def __init__(self, status: int, reply: dict, where: str = ""):
        self.status, self.reply = status, reply
        detail = reply.get("error") if isinstance(reply, dict) else reply
        super().__init__(f"{where}HTTP {status}: {detail}")


class Refused(StatusError):
    """The server answered 4xx; ``reply`` is its JSON body (``errors`` keyed by parameter name)."""

    exit_code = EXIT_REFUSED

    def describe(self) -> str:
        lines = [str(self)]
        errors = self.reply.get("errors") if isinstance(self.reply, dict) else None
        for key, messages in (errors or {}).items():
            lines += [f"  {key}: {m}" for m in messages]
        return "\n".join(lines)


class ServerFailed(StatusError):
    """The server answered 5xx."""


class Unreachable(ClientError):
    exit_code = EXIT_UNREACHABLE


def quoted(name: str) -> str:
    """A template name or prompt id as one URL path segment."""
    return urllib.parse.quote(name, safe="")


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
        """The reply's JSON (bytes for other content). 4xx raises Refused, 5xx ServerFailed, no answer
        Unreachable."""
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
            raise ServerFailed(e.code, reply, f"{self.url}{path}: ") from None
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as e:
            raise Unreachable(f"{self.url} is not reachable: {getattr(e, 'reason', e)}") from None
        if "json" in kind:
            return json.loads(content) if content else None
        return content

    def templates(self) -> list:
        return self.request("GET", "/qg/templates")["templates"]

    def template(self, name: str) -> dict:
        return self.request("GET", f"/qg/templates/{quoted(name)}")

    def schema(self, name: str) -> dict:
        return self.request("GET", f"/qg/templates/{quoted(name)}/schema")

    def status(self, prompt_id: str) -> dict:
        return self.request("GET", f"/qg/runs/{quoted(prompt_id)}")

    def history(self, prompt_id: str) -> dict:
        """The prompt's ``/history`` entry (empty while it has not finished)."""
        return (self.request("GET", f"/history/{quoted(prompt_id)}") or {}).get(prompt_id, {})

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
        return self.upload_content(path.read_bytes(), path.suffix)

    def upload_content(self, content: bytes, suffix: str = ".png") -> str:
        """Upload image bytes once per content hash (see ``upload``); returns the ComfyUI file name."""
        digest = hashlib.sha256(content).hexdigest()
        if digest in self._uploaded:
            return self._uploaded[digest]
        name = f"qg_{digest[:20]}{suffix.lower() or '.png'}"
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

    def fetch_image(self, image: dict) -> bytes:
        """An output image's bytes (``image``: an outputs entry with filename, subfolder, type)."""
        query = urllib.parse.urlencode(
            {
                "filename": image["filename"],
                "subfolder": image.get("subfolder", ""),
                "type": image.get("type", "output"),
            }
        )
        return self.request("GET", f"/view?{query}")

    def download(self, image: dict, folder: Path) -> Path:
        return save_image(image["filename"], self.fetch_image(image), folder)

    # --- events ---

    @property
    def events(self) -> Events:
        """The websocket listener, started (and connected, within 5 s) on first use."""
        if self._events is None:
            self.start_events().connected.wait(5.0)
        return self._events

    def start_events(self) -> Events:
        """Start the websocket listener without waiting for it to connect (it keeps trying)."""
        if self._events is None:
            self._events = Events(self.url, self.client_id, self.listeners)
        return self._events

    def raise_listener_error(self) -> None:
        """Re-raise what an ``on_event`` listener raised in the event thread (nothing if no listener failed)."""
        if self._events is not None:
            self._events.raise_listener_error()

    def close(self) -> None:
        if self._events is not None:
            self._events.close()
            self._events = None


def save_image(filename: str, content: bytes, folder: Path) -> Path:
    """Write an output image into ``folder`` under its own file name (never a path from the server)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / Path(filename).name
    target.write_bytes(content)
    return target
