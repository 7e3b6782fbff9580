"""Sweeps: every combination (``product``) or the items side by side (``zip``) of parameter lists, expanded and
validated by the server (``POST /qg/templates/<name>/sweep``)."""

from __future__ import annotations

from .runs import Run
from .transport import Server, Unreachable, quoted


def sweep_path(name: str) -> str:
    return f"/qg/templates/{quoted(name)}/sweep"


def queue_sweep(server: Server, name: str, sweep: dict, params: dict, mode: str) -> list:
    """Queue every item on one server in one request (the server mints the prompt ids); the runs in order."""
    body = {"params": params, "sweep": sweep, "mode": mode, "client_id": server.client_id}
    server.events  # noqa: B018 (connect before queueing, so no event of these prompts is missed)
    reply = server.request("POST", sweep_path(name), body)
    return [Run(item["prompt_id"], server.url, item["params"], index=n) for n, item in enumerate(reply["items"])]


def expand(servers: list, name: str, sweep: dict, params: dict, mode: str) -> list:
    """The items' parameters (a dry run: validated, nothing queued) from the first server that answers."""
    body = {"params": params, "sweep": sweep, "mode": mode, "dry_run": True}
    for server in servers:
        try:
            return [item["params"] for item in server.request("POST", sweep_path(name), body)["items"]]
        except Unreachable:
            continue
    raise Unreachable("no server is reachable")
