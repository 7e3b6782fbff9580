"""Hardening of the /qg routes and of core POST /prompt on a real ComfyUI: non-string client ids, body fields of
the wrong type, queueing through ComfyUI's own handler, user templates kept per user, the old template folder."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid

import pytest
from harness import ComfyServer
from helpers import Graph

TEMPLATE = "template_solid_image"


def call(server, method: str, path: str, body=None, headers=None, raw: bytes | None = None):
    """(status, JSON reply) for any answer, errors included."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(
        server.url + path, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as reply:
            text = reply.read()
            return reply.status, json.loads(text) if text else None
    except urllib.error.HTTPError as e:
        text = e.read()
        try:
            return e.code, json.loads(text) if text else None
        except ValueError:
            return e.code, text.decode(errors="replace")


def wait_history(server, prompt_id: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, history = call(server, "GET", f"/history/{prompt_id}")
        if status == 200 and prompt_id in history and history[prompt_id].get("status", {}).get("completed") is not None:
            return history[prompt_id]
        time.sleep(0.1)
    raise TimeoutError(prompt_id)


def alive(server) -> bool:
    return call(server, "GET", "/system_stats")[0] == 200 and server.process.poll() is None


def tiny_prompt(value: int = 7) -> dict:
    g = Graph()
    compare = g.add("QG_Compare", a=value, comparison="greater_equal", b=1)
    g.add("PreviewAny", source=g.out(compare, 1))
    return g.nodes


@pytest.fixture(scope="module")
def legacy_templates():
    """A user template saved where the pack kept them before they were per user."""
    return {"old_one": {"workflow": {"1": {"class_type": "QG_ParamText", "inputs": {"name": "t", "value": "x"}}}}}


@pytest.fixture(scope="module")
def hard_server(tmp_path_factory, legacy_templates):
    """A server of its own: a crash here must not take the shared server down with it."""
    workdir = tmp_path_factory.mktemp("comfy-routes")
    legacy = workdir / "user" / "quality_gate" / "templates"
    legacy.mkdir(parents=True)
    for name, data in legacy_templates.items():
        (legacy / f"{name}.json").write_text(json.dumps(data))
    srv = ComfyServer(workdir=workdir, name="routes").start()
    yield srv
    srv.stop()


@pytest.mark.parametrize("where", ["top", "extra_data"])
def test_core_prompt_with_a_list_client_id_runs_and_the_server_survives(hard_server, where):
    """ComfyUI 0.3.75's publisher raises ``unhashable type: 'list'`` on such a client id when the prompt runs and
    the server exits; the pack's on-prompt handler drops it (with a warning) so the prompt runs without events."""
    body = {"prompt": tiny_prompt()}
    if where == "top":
        body["client_id"] = ["x"]
    else:
        body["extra_data"] = {"client_id": ["x"]}
    status, reply = call(hard_server, "POST", "/prompt", body)
    assert status == 200, reply
    entry = wait_history(hard_server, reply["prompt_id"])
    assert entry["status"]["status_str"] == "success"
    assert alive(hard_server)
    assert "dropped a client_id of type list" in hard_server.log()


@pytest.mark.parametrize("route", ["/qg/run", f"/qg/templates/{TEMPLATE}/run", f"/qg/templates/{TEMPLATE}/sweep"])
@pytest.mark.parametrize("client_id", [["x"], {"a": 1}, 5, True])
def test_pack_routes_refuse_a_client_id_that_is_not_a_string(hard_server, route, client_id):
    body = {"params": {}, "client_id": client_id}
    if route == "/qg/run":
        body["workflow"] = tiny_prompt()
    if route.endswith("/sweep"):
        body["sweep"] = {"color": [1, 2]}
    status, reply = call(hard_server, "POST", route, body)
    assert status == 400, reply
    assert list(reply["errors"]) == ["client_id"]
    assert "must be a string" in reply["errors"]["client_id"][0]
    assert alive(hard_server)


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("number", "soon", "a finite number"),
        ("number", [1], "a finite number"),
        ("number", True, "a finite number"),
        ("extra_data", ["x"], "a JSON object"),
        ("extra_data", {"client_id": ["x"]}, "extra_data.client_id must be a string"),
        ("partial_execution_targets", "5", "a list of node ids"),
        ("partial_execution_targets", [5], "a list of node ids"),
        ("front", "yes", "true or false"),
        ("params", [1, 2], "a JSON object"),
        ("prompt_id", 17, "a UUID string"),
        ("prompt_id", "my-run", "a canonical UUID string"),
        ("prompt_id", str(uuid.uuid4()).upper(), "a canonical UUID string"),
        ("hash", 3, "a string"),
        ("surprise", 1, "unknown field"),
    ],
)
def test_run_body_fields_of_the_wrong_type_are_a_400_naming_the_field(hard_server, field, value, expected):
    status, reply = call(hard_server, "POST", f"/qg/templates/{TEMPLATE}/run", {"params": {}, field: value})
    assert status == 400, reply
    assert list(reply["errors"]) == [field], reply
    assert expected in reply["errors"][field][0]
    assert "Traceback" not in json.dumps(reply)


@pytest.mark.parametrize(
    "raw", [b"{", b"\xff\xfe", b"[1, 2]", b'"text"', b"null", b"1" * 5000, b"[" * 100_000, b'{"title": "\\ud800"}']
)
def test_bodies_that_are_not_a_json_object_are_a_400(hard_server, raw):
    status, reply = call(hard_server, "POST", f"/qg/templates/{TEMPLATE}/run", raw=raw)
    assert status == 400, reply
    assert list(reply["errors"]) == ["body"]


def test_runs_go_through_comfyuis_own_queue(hard_server):
    """Numbering and prompt ids are ComfyUI's: a run by name between two core prompts gets the next number, a
    given canonical UUID is kept, and the run's record is in the history's extra_data."""
    _, first = call(hard_server, "POST", "/prompt", {"prompt": tiny_prompt(1)})
    prompt_id = str(uuid.uuid4())
    body = {"params": {"color": 3}, "prompt_id": prompt_id, "extra_data": {"note": "mine"}}
    status, ours = call(hard_server, "POST", f"/qg/templates/{TEMPLATE}/run", body)
    assert status == 200, ours
    _, last = call(hard_server, "POST", "/prompt", {"prompt": tiny_prompt(2)})
    assert ours["prompt_id"] == prompt_id
    assert first["number"] < ours["number"] < last["number"]
    entry = wait_history(hard_server, prompt_id)
    extra = entry["prompt"][3]
    assert extra["note"] == "mine" and extra["qg"]["template"] == TEMPLATE
    assert extra["qg"]["params"]["color"] == 3
    status, again = call(hard_server, "POST", f"/qg/templates/{TEMPLATE}/run", body)
    assert status == 409 and list(again["errors"]) == ["prompt_id"]


def test_comfyuis_validation_errors_are_keyed_by_parameter_or_node_title(hard_server):
    """Errors that only ComfyUI's own validation finds (a parameter node missing an input, a constant out of
    range) come back keyed by the parameter that owns the node, else by ``<node title>.<input>``."""
    workflow = {
        "1": {"class_type": "QG_ParamInt", "inputs": {"name": "size", "value": 16, "min": 1, "max": 64}},
        "2": {
            "class_type": "EmptyImage",
            "_meta": {"title": "Canvas"},
            "inputs": {"width": ["1", 0], "height": 10**9, "batch_size": 1, "color": 0},
        },
        "3": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}},
    }
    status, reply = call(hard_server, "POST", "/qg/run", {"workflow": workflow, "params": {"size": 32}})
    assert status == 400, reply
    assert set(reply["errors"]) == {"size", "Canvas.height"}, reply
    assert "Required input is missing" in reply["errors"]["size"][0]
    assert "bigger than max of 16384" in reply["errors"]["Canvas.height"][0]
    assert {e["type"] for n in reply["node_errors"].values() for e in n["errors"]} == {
        "required_input_missing",
        "value_bigger_than_max",
    }


def test_templates_saved_before_they_were_per_user_move_to_the_default_user(hard_server):
    status, listing = call(hard_server, "GET", "/qg/templates")
    assert status == 200
    assert "old_one" in [t["name"] for t in listing["templates"]]
    moved = hard_server.workdir / "user" / "default" / "quality_gate" / "templates" / "old_one.json"
    assert moved.is_file()
    assert not (hard_server.workdir / "user" / "quality_gate" / "templates" / "old_one.json").exists()


# --- --multi-user ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def multi_server(tmp_path_factory):
    srv = ComfyServer(workdir=tmp_path_factory.mktemp("comfy-multi"), extra_args=["--multi-user"], name="multi")
    srv.start()
    yield srv
    srv.stop()


def user(server, name: str) -> dict:
    status, user_id = call(server, "POST", "/users", {"username": name})
    assert status == 200, user_id
    return {"comfy-user": user_id}


def test_user_templates_are_kept_per_user_under_multi_user(multi_server):
    alice, bob = user(multi_server, "alice"), user(multi_server, "bob")
    workflow = {"1": {"class_type": "QG_ParamText", "inputs": {"name": "t", "value": "x"}}}
    workflow["2"] = {"class_type": "PreviewAny", "inputs": {"source": ["1", 0]}}
    status, reply = call(multi_server, "PUT", "/qg/templates/alices", {"workflow": workflow}, alice)
    assert status == 200, reply

    def names(headers):
        status, listing = call(multi_server, "GET", "/qg/templates", headers=headers)
        assert status == 200, listing
        return {t["name"]: t["source"] for t in listing["templates"]}

    assert names(alice).get("alices") == "user"
    assert "alices" not in names(bob)
    assert TEMPLATE in names(bob)  # the pack's own templates are everybody's
    assert call(multi_server, "GET", "/qg/templates/alices", headers=bob)[0] == 404
    saved = multi_server.workdir / "user" / alice["comfy-user"] / "quality_gate" / "templates" / "alices.json"
    assert saved.is_file()
    status, reply = call(multi_server, "GET", "/qg/templates", headers={"comfy-user": "nobody"})
    assert status == 403 and list(reply["errors"]) == ["user"]
