"""The websocket of one ComfyUI server, read in a thread: per-node timings, "maybe finished" wake-ups, and every
message handed to the ``on_event`` listeners."""

from __future__ import annotations

import json
import logging
import threading
import time

import websocket

LOG = logging.getLogger("quality_gate.client")


class Events:
    """The websocket of one server in a thread: per-node timings and "maybe finished" wake-ups for our prompts.
    Reconnects after a drop (the final state always comes from ``/qg/runs``, so a missed event costs only time).

    A listener that raises does not stop the thread: the first such exception is kept (and logged) and
    ``raise_listener_error`` raises it in the caller, which ``Client.wait`` does; ``listener_errors`` counts them."""

    def __init__(self, url: str, client_id: str, listeners: list | None = None):
        self.url = url.replace("http://", "ws://").replace("https://", "wss://") + f"/ws?clientId={client_id}"
        self.listeners = listeners if listeners is not None else []  # called with every JSON message
        self.wake = threading.Event()
        self.connected = threading.Event()
        self.reconnects = 0
        self.listener_errors = 0
        self.progress: dict = {}  # prompt_id -> (value, max) of the running node
        self._times: dict = {}  # prompt_id -> {node: seconds}
        self._cached: dict = {}  # prompt_id -> set of nodes
        self._current: dict = {}  # prompt_id -> (node, start)
        self._finished: set = set()  # prompts whose last event arrived
        self._error: BaseException | None = None  # a listener's, not yet raised in a caller
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
                # skip_utf8_validation: pure-Python validation of ComfyUI's large progress_state frames is slow
                self._ws = websocket.create_connection(self.url, timeout=1.0, skip_utf8_validation=True)
                self.connected.set()
                delay = 0.2
                while not self._stop:
                    try:
                        raw = self._ws.recv()
                    except websocket.WebSocketTimeoutException:
                        continue
                    if isinstance(raw, str):
                        message = json.loads(raw)
                        self._tell(message)  # first, so a finished run has been seen by the listeners
                        self._handle(message)
            except (websocket.WebSocketException, OSError, ValueError):
                if self._stop:
                    break
                self.connected.clear()
                self.reconnects += 1
                self.wake.set()  # let waiters poll /qg/runs at once
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _tell(self, message: dict) -> None:
        for listener in list(self.listeners):
            try:
                listener(message)
            except Exception as error:  # noqa: BLE001 (any listener bug: kept for the waiting caller to raise)
                LOG.warning("event listener %r raised %r on a %r message", listener, error, message.get("type"))
                with self._lock:
                    self.listener_errors += 1
                    if self._error is None:
                        self._error = error
                self.wake.set()

    def raise_listener_error(self) -> None:
        """Raise the first exception a listener raised since the last call (once), if any."""
        with self._lock:
            error, self._error = self._error, None
        if error is not None:
            raise error

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

    def wait_finished(self, prompt_id: str, timeout: float) -> bool:
        """Wait up to ``timeout`` s for the prompt's last event; True when it came (then confirm by HTTP)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while prompt_id not in self._finished:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
        return True

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

    @property
    def alive(self) -> bool:
        """The event thread is running (it stops only on ``close``)."""
        return self._thread.is_alive()

    def close(self) -> None:
        self._stop = True
        if self._ws is not None:
            self._ws.close()
        self._thread.join(timeout=3)
