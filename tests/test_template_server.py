"""Template parameters and the /qg routes on the real ComfyUI server."""

import json
import time
import uuid

import pytest
import websocket

from client import StatusError

TEMPLATE = "template_solid_image"


def call(client, method, path, body=None):
    """(status, JSON reply) for any answer, errors included."""
    try:
        return 200, client.request(method, path, body)
    except StatusError as e:
        return e.status, e.reply


def wait(client, prompt_id, timeout=120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, reply = call(client, "GET", f"/qg/runs/{prompt_id}")
        assert status == 200, reply
        if reply["status"] in ("success", "error"):
            return reply
        time.sleep(0.05)
    raise TimeoutError(prompt_id)


def run(client, params, name=TEMPLATE, **extra):
    status, reply = call(client, "POST", f"/qg/templates/{name}/run", {"params": params, **extra})
    assert status == 200, reply
    return reply


def seed_workflow(policy, label):
    return {
        "1": {"class_type": "QG_ParamSeed", "inputs": {"name": "seed", "value": 7, "policy": policy}},
        "2": {"class_type": "QGTest_Record", "_meta": {"title": "seen"}, "inputs": {"label": label, "value": ["1", 0]}},
    }


def test_list_get_and_schema(client):
    status, listing = call(client, "GET", "/qg/templates")
    entry = next(t for t in listing["templates"] if t["name"] == TEMPLATE)
    assert entry["source"] == "pack" and entry["params"] == 7 and entry["title"] == "Solid colour image"
    status, info = call(client, "GET", f"/qg/templates/{TEMPLATE}")
    assert status == 200 and info["workflow"]["11"]["class_type"] == "SaveImage"
    assert {p["name"] for p in info["params"]} == {"width", "height", "color", "scale", "method", "save", "prefix"}
    status, schema = call(client, "GET", f"/qg/templates/{TEMPLATE}/schema")
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["additionalProperties"] is False and schema["x-qg-hash"] == entry["hash"]
    props = schema["properties"]
    assert props["width"]["minimum"] == 16 and props["width"]["maximum"] == 512 and props["width"]["default"] == 64
    assert props["scale"]["type"] == "number" and props["scale"]["maximum"] == 4.0
    assert props["method"]["enum"] == ["nearest-exact", "bilinear", "area", "bicubic", "lanczos"]
    assert props["save"]["type"] == "boolean" and props["prefix"]["description"]


def test_run_by_name_reports_outputs_by_title_and_params(client):
    reply = run(client, {"width": 24, "height": 16, "scale": 2, "method": "area", "prefix": "qg_run"})
    assert reply["params"]["scale"] == 2.0 and reply["params"]["color"] == 1582651
    done = wait(client, reply["prompt_id"])
    assert done["status"] == "success" and done["params"] == reply["params"] and done["template"] == TEMPLATE
    assert done["outputs"]["image"]["images"][0]["filename"].startswith("qg_run")
    schema_hash = call(client, "GET", f"/qg/templates/{TEMPLATE}/schema")[1]["x-qg-hash"]
    assert run(client, {"save": False}, hash=schema_hash)["params"]["save"] is False
    status, reply = call(client, "POST", f"/qg/templates/{TEMPLATE}/run", {"params": {}, "hash": "0" * 16})
    assert status == 409 and "the template changed" in reply["error"]
    closed = wait(client, run(client, {"save": False})["prompt_id"])
    assert closed["status"] == "success" and closed["outputs"] == {}


def test_every_bad_input_at_once(client):
    params = {"widht": 32, "height": "64", "scale": 9, "method": "cubic", "save": "false", "Canvas.batch_size": 0}
    status, reply = call(client, "POST", f"/qg/templates/{TEMPLATE}/run", {"params": params})
    assert status == 400, reply
    errors = reply["errors"]
    assert set(errors) == set(params)
    assert "did you mean 'width'" in errors["widht"][0]
    assert "valid integer" in errors["height"][0] and "valid boolean" in errors["save"][0]
    assert "less than or equal to 4" in errors["scale"][0] and "'bilinear'" in errors["method"][0]
    assert "greater than or equal to 1" in errors["Canvas.batch_size"][0]
    assert "Traceback" not in json.dumps(reply)


def test_required_parameter_and_unknown_template(client):
    wf = seed_workflow("fixed", "req")
    wf["3"] = {"class_type": "QG_ParamText", "inputs": {"name": "text", "value": "", "required": True}}
    wf["4"] = {"class_type": "QGTest_Record", "inputs": {"label": "req-text", "value": ["3", 0]}}
    status, reply = call(client, "POST", "/qg/run", {"workflow": wf, "params": {}})
    assert status == 400 and reply["errors"]["text"][0].startswith("required")
    name = f"required_{uuid.uuid4().hex[:8]}"
    assert call(client, "PUT", f"/qg/templates/{name}", {"workflow": wf})[0] == 200
    status, schema = call(client, "GET", f"/qg/templates/{name}/schema")
    assert schema["required"] == ["text"]
    done = wait(client, run(client, {"text": "given"}, name)["prompt_id"])
    assert sorted(str(o["qg_record"][0]["value"]) for o in done["outputs"].values()) == ["7", "given"]
    status, reply = call(client, "POST", "/qg/templates/template_solid_imag/run", {"params": {}})
    assert status == 404 and "did you mean 'template_solid_image'" in reply["error"]


@pytest.mark.parametrize("name", ["..%2F..%2Fetc%2Fpasswd", "a.b", "x" * 65, "%2e%2e", "a%00b", "~root"])
def test_path_tricks_in_names(client, name):
    for method, path, body in [
        ("GET", f"/qg/templates/{name}", None),
        ("GET", f"/qg/templates/{name}/schema", None),
        ("PUT", f"/qg/templates/{name}", {"workflow": seed_workflow("fixed", "x")}),
        ("POST", f"/qg/templates/{name}/run", {"params": {}}),
    ]:
        status, reply = call(client, method, path, body)
        assert status in (400, 404), (path, reply)
        if status == 400:
            assert "template names are" in reply["error"]


def test_save_user_templates(client, server):
    name = f"user_{uuid.uuid4().hex[:8]}"
    wf = seed_workflow("fixed", name)
    wf["3"] = {"class_type": "QG_ParamInt", "inputs": {"name": "size", "value": 8, "min": -10, "max": 99999, "step": 1}}
    wf["4"] = {
        "class_type": "EmptyImage",
        "_meta": {"title": "Canvas"},
        "inputs": {"width": ["3", 0], "height": 8, "batch_size": 1, "color": 0},
    }
    wf["5"] = {"class_type": "PreviewImage", "inputs": {"images": ["4", 0]}}
    status, reply = call(client, "PUT", f"/qg/templates/{name}", {"workflow": wf, "title": "Mine"})
    assert status == 200, reply
    saved = server.workdir / "user" / "default" / "quality_gate" / "templates" / f"{name}.json"
    assert json.loads(saved.read_text())["workflow"] == wf
    status, schema = call(client, "GET", f"/qg/templates/{name}/schema")
    assert schema["properties"]["size"]["minimum"] == 1 and schema["properties"]["size"]["maximum"] == 16384
    assert wait(client, run(client, {"size": 16}, name)["prompt_id"])["status"] == "success"
    # duplicates, broken graphs, a graph ComfyUI refuses, and the pack's names are refused
    dup = {
        **wf,
        "6": {"class_type": "QG_ParamInt", "inputs": {"name": "size", "value": 1, "min": 0, "max": 9, "step": 1}},
    }
    broken = {**wf, "5": {"class_type": "PreviewImage", "inputs": {"images": ["99", 0]}}}
    invalid = {**wf, "4": {**wf["4"], "inputs": {"width": ["3", 0]}}}
    for bad, needle in [(dup, "several nodes"), (broken, "missing node 99"), (invalid, "Required input is missing")]:
        status, reply = call(client, "PUT", f"/qg/templates/{name}_x", {"workflow": bad})
        assert status == 400 and needle in json.dumps(reply), reply
    assert call(client, "PUT", f"/qg/templates/{TEMPLATE}", {"workflow": wf})[0] == 409
    assert not (saved.parent / f"{name}_x.json").exists()


def test_seed_policies(client):
    label = uuid.uuid4().hex
    wf = seed_workflow("random", label)
    seeds = []
    for _ in range(3):
        status, reply = call(client, "POST", "/qg/run", {"workflow": wf, "params": {}})
        assert status == 200, reply
        done = wait(client, reply["prompt_id"])
        assert done["outputs"]["seen"]["qg_record"][0]["value"] == reply["params"]["seed"]
        seeds.append(reply["params"]["seed"])
    assert len(set(seeds)) == 3
    wf = seed_workflow("increment", label + "i")
    used = [call(client, "POST", "/qg/run", {"workflow": wf})[1]["params"]["seed"] for _ in range(3)]
    assert used == [7, 8, 9]
    assert call(client, "POST", "/qg/run", {"workflow": wf, "params": {"seed": 3}})[1]["params"]["seed"] == 3


def test_overrides_by_title_and_id(client):
    reply = run(client, {"Canvas.batch_size": 2, "Resize.scale_by": 0.5, "width": 32})
    done = wait(client, reply["prompt_id"])
    assert len(done["outputs"]["image"]["images"]) == 2 and reply["params"]["Resize.scale_by"] == 0.5
    wf = json.loads(json.dumps(call(client, "GET", f"/qg/templates/{TEMPLATE}")[1]["workflow"]))
    wf["12"] = {**wf["4"], "_meta": {"title": "Canvas"}}
    status, reply = call(client, "POST", "/qg/run", {"workflow": wf, "params": {"Canvas.batch_size": 2}})
    assert status == 400 and "ambiguous" in reply["errors"]["Canvas.batch_size"][0] and "4, 12" in reply["error"]
    status, reply = call(client, "POST", "/qg/run", {"workflow": wf, "params": {"12.batch_size": 3, "4.color": "red"}})
    assert status == 400 and list(reply["errors"]) == ["4.color"]


def sweep_events(server, client_id):
    ws = websocket.create_connection(server.url.replace("http", "ws") + f"/ws?clientId={client_id}", timeout=60)
    return ws


def test_product_and_zip_sweeps_with_batch_events(client, server):
    client_id = uuid.uuid4().hex
    ws = sweep_events(server, client_id)
    try:
        body = {"params": {"save": True}, "sweep": {"width": [16, 32], "color": {"start": 0, "count": 3}}}
        status, reply = call(client, "POST", f"/qg/templates/{TEMPLATE}/sweep", {**body, "client_id": client_id})
        assert status == 200, reply
        assert [(i["params"]["width"], i["params"]["color"]) for i in reply["items"]] == [
            (w, c) for w in (16, 32) for c in range(3)
        ]
        events = []
        while not events or events[-1]["done"] < 6:
            message = json.loads(ws.recv())
            if message["type"] == "qg.batch" and message["data"]["batch_id"] == reply["batch_id"]:
                events.append(message["data"])
        assert events[0]["status"] == "queued" and events[-1]["succeeded"] == 6 and events[-1]["total"] == 6
        assert {e["prompt_id"] for e in events[1:]} == {i["prompt_id"] for i in reply["items"]}
    finally:
        ws.close()
    status, reply = call(
        client,
        "POST",
        f"/qg/templates/{TEMPLATE}/sweep",
        {"sweep": {"width": [16, 24], "prefix": ["a", "b"]}, "mode": "zip"},
    )
    assert [(i["params"]["width"], i["params"]["prefix"]) for i in reply["items"]] == [(16, "a"), (24, "b")]
    for bad, needle in [
        ({"sweep": {"width": [16], "prefix": ["a", "b"]}, "mode": "zip"}, "equal length"),
        ({"sweep": {"width": list(range(16, 56)), "color": list(range(30))}}, "capped at 1000"),
        ({"sweep": {"width": [16, 9999, "x"]}}, "item 1"),
    ]:
        status, reply = call(client, "POST", f"/qg/templates/{TEMPLATE}/sweep", bad)
        assert status == 400 and needle in json.dumps(reply), reply


def gate_prompt(open_value, label):
    return {
        "1": {"class_type": "QGTest_Json", "inputs": {"json": '"passed"'}},
        "2": {"class_type": "QG_Gate", "inputs": {"value": ["1", 0], "open": open_value}},
        "3": {"class_type": "QGTest_Record", "inputs": {"label": label, "value": ["2", 0]}},
    }


def switch_prompt(condition, label):
    return {
        "1": {"class_type": "QGTest_Json", "inputs": {"json": '"on_true"'}},
        "2": {"class_type": "QGTest_Json", "inputs": {"json": '"on_false"'}},
        "3": {"class_type": "QG_Switch", "inputs": {"condition": condition, "on_true": ["1", 0], "on_false": ["2", 0]}},
        "4": {"class_type": "QGTest_Record", "inputs": {"label": label, "value": ["3", 0]}},
    }


def test_boolean_guard_on_plain_post_prompt(client):
    label = uuid.uuid4().hex
    gate_closed = client.run(gate_prompt("false", label))
    assert gate_closed.status == "success" and gate_closed.outputs == {}  # closed: nothing recorded
    gate_open = client.run(gate_prompt(" TRUE ", label))
    assert gate_open.outputs["3"]["qg_record"][0]["value"] == "passed"
    switched = client.run(switch_prompt("false", label))
    assert switched.outputs["4"]["qg_record"][0]["value"] == "on_false"
    wrapped = gate_prompt({"__value__": "no"}, label)  # ComfyUI unwraps {"__value__": ...} before bool()
    cases = [(gate_prompt("no", label), "2", "open"), (switch_prompt("0", label), "3", "condition")]
    cases.append((wrapped, "2", "open"))
    for prompt, node, name in cases:
        status, reply = call(client, "POST", "/prompt", {"prompt": prompt})
        assert status == 400, reply
        error = reply["node_errors"][node]["errors"][0]
        assert error["extra_info"]["input_name"] == name and f"#{node}: input '{name}' is a BOOLEAN" in error["details"]


def test_burst_of_100_runs_none_lost(client):
    ids = [run(client, {"width": 16, "height": 16, "color": i, "prefix": "burst"})["prompt_id"] for i in range(100)]
    assert len(set(ids)) == 100
    results = [wait(client, prompt_id) for prompt_id in ids]
    assert all(r["status"] == "success" for r in results)
    assert [r["params"]["color"] for r in results] == list(range(100))
    files = {r["outputs"]["image"]["images"][0]["filename"] for r in results}
    assert len(files) == 100
    assert call(client, "GET", "/qg/runs/not-a-prompt")[0] == 404
    status, reply = call(client, "POST", f"/qg/templates/{TEMPLATE}/run", {"params": {}, "prompt_id": ids[0]})
    assert status == 409


def param_errors(client, class_type, inputs):
    """The /prompt 400's errors on a parameter node (node "1") feeding a recorder: [(type, input name, details)]."""
    prompt = {
        "1": {"class_type": class_type, "inputs": inputs},
        "2": {"class_type": "QGTest_Record", "inputs": {"label": "param-check", "value": ["1", 0]}},
    }
    status, reply = call(client, "POST", "/prompt", {"prompt": prompt})
    assert status == 400, reply
    errors = reply["node_errors"]["1"]["errors"]
    return [(e["type"], e["extra_info"]["input_name"], e["details"]) for e in errors]


SEED = {"name": "seed", "value": 7, "policy": "fixed"}
BOUNDED = {"name": "count", "value": 5, "min": 0, "max": 9, "step": 1}


@pytest.mark.parametrize(
    "class_type, inputs, expected",
    [  # ComfyUI's own checks stay on for every input VALIDATE_INPUTS does not take
        ("QG_ParamSeed", {**SEED, "value": -5}, [("value_smaller_than_min", "value")]),
        ("QG_ParamSeed", {**SEED, "policy": "sometimes"}, [("value_not_in_list", "policy")]),
        ("QG_ParamSeed", {**SEED, "name": "1 bad"}, [("custom_validation_failed", "name")]),
        ("QG_ParamText", {"name": "a b", "value": "x"}, [("custom_validation_failed", "name")]),
        ("QG_ParamInt", {**BOUNDED, "step": 0}, [("value_smaller_than_min", "step")]),
        ("QG_ParamBool", {"name": "ok", "value": True, "required": True, "description": 3}, None),
    ],
)
def test_param_nodes_keep_comfyuis_own_checks_and_name_the_input(client, class_type, inputs, expected):
    if expected is None:  # valid: queued
        prompt = {
            "1": {"class_type": class_type, "inputs": inputs},
            "2": {"class_type": "QGTest_Record", "inputs": {"label": "param-ok", "value": ["1", 0]}},
        }
        assert call(client, "POST", "/prompt", {"prompt": prompt})[0] == 200
        return
    errors = param_errors(client, class_type, inputs)
    assert [(kind, name) for kind, name, _ in errors] == expected
    if expected[0][0] == "custom_validation_failed":
        assert "is not an identifier" in errors[0][2]


def test_bounded_param_checks_name_the_input_at_fault(client):
    """value, min and max are checked together (ComfyUI cannot); the message names the input at fault, and the
    bounds ComfyUI would have checked on them are still checked."""
    errors = param_errors(client, "QG_ParamInt", {**BOUNDED, "value": 12})
    assert {name for _, name, _ in errors} <= {"name", "value", "min", "max"}
    assert all("value 12 is above max 9" in details for _, _, details in errors)
    errors = param_errors(client, "QG_ParamInt", {**BOUNDED, "max": 2**65})
    assert all("max 36893488147419103232 is above the largest INT" in details for _, _, details in errors)
    errors = param_errors(client, "QG_ParamChoice", {"name": "c", "value": "z", "choices": "a\nb"})
    assert all("value 'z' is not one of the choices: a, b" in details for _, _, details in errors)


def test_a_rejected_run_uses_up_no_increment_seed(client):
    """Only a prompt that is queued takes an ``increment`` seed: not one that ComfyUI's own validation rejects
    (an override of a parameter node's ``min`` above its value, which only the node's VALIDATE_INPUTS sees), nor
    a re-send of a prompt id already queued (what a client retrying after a lost reply does)."""
    name = f"rejected_{uuid.uuid4().hex[:8]}"
    wf = seed_workflow("increment", name)  # one output, which needs both parameters (ComfyUI queues valid outputs)
    wf["3"] = {"class_type": "QG_ParamInt", "inputs": {"name": "size", "value": 16, "min": 1, "max": 64, "step": 1}}
    compare = {"a": ["1", 0], "comparison": "greater_equal", "b": ["3", 0]}
    wf["4"] = {"class_type": "QG_Compare", "inputs": compare}
    wf["2"]["inputs"]["value"] = ["4", 0]
    assert call(client, "PUT", f"/qg/templates/{name}", {"workflow": wf})[0] == 200

    def run(**body):
        return call(client, "POST", f"/qg/templates/{name}/run", body)

    for _ in range(2):
        status, reply = run(params={"3.min": 32})
        assert status == 400 and reply["node_errors"], reply
    status, reply = run()
    assert status == 200 and reply["params"]["seed"] == 7, reply
    prompt_id = str(uuid.uuid4())
    assert run(prompt_id=prompt_id)[1]["params"]["seed"] == 8
    assert run(prompt_id=prompt_id)[0] == 409
    assert run()[1]["params"]["seed"] == 9


def test_dry_run_sweep_does_not_use_up_increment_seeds(client):
    """A dry run reports the seeds the next real run uses, and the real run then uses exactly those."""
    name = f"dry_{uuid.uuid4().hex[:8]}"
    wf = seed_workflow("increment", name)
    wf["3"] = {"class_type": "QG_ParamText", "inputs": {"name": "tag", "value": ""}}
    wf["4"] = {"class_type": "QGTest_Record", "inputs": {"label": name + "-tag", "value": ["3", 0]}}
    assert call(client, "PUT", f"/qg/templates/{name}", {"workflow": wf})[0] == 200
    body = {"sweep": {"tag": ["a", "b", "c"]}}

    def seeds(**extra):
        status, reply = call(client, "POST", f"/qg/templates/{name}/sweep", {**body, **extra})
        assert status == 200, reply
        return [item["params"]["seed"] for item in reply["items"]]

    assert seeds(dry_run=True) == [7, 8, 9]
    assert seeds(dry_run=True) == [7, 8, 9]
    assert seeds() == [7, 8, 9]
    assert seeds(dry_run=True) == [10, 11, 12]
