"""Property-based fuzzing (hypothesis) of every ``/qg`` route body and every ``QG_*`` node's inputs, against the
real ComfyUI server.

Properties checked after every example:
- a ``/qg`` route never answers 5xx, and no reply carries a traceback or raw exception text;
- the server still answers ``GET /system_stats`` and its prompt queue drains (the prompt worker runs);
- nothing on disk changed outside the folders a route owns (output/, temp/, the user templates folder; input/
  for ``/upload/image``), nothing was written next to the server's workdir or into the pack, and no file named
  with the traversal marker exists anywhere we look (checked at the end);
- a ``QG_*`` node that fails at run time fails with the pack's ``QGError`` (a message naming the node and input),
  never a raw TypeError/KeyError/... from inside the pack.

The server is this module's own (a crash here does not take other modules' server down); when an example kills
or wedges it, it is restarted before the next one, so hypothesis can still shrink to the minimal input.

Sizes: ``QG_FUZZ_EXAMPLES=N`` runs N examples per fuzz test instead of the CI-sized defaults below. Examples are
derandomized (the same inputs every run); the number of cases run is printed at the end of the module.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import math
import os
import re
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
from harness import ComfyServer, comfy_dir
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from quality_gate.nodes.registry import NODES
from scoring_models import save_clip, save_hf_clip, tiny_config

ROOT = Path(__file__).resolve().parents[1]
TEST_NODES = ROOT / "tests" / "comfy_nodes"
TEMPLATE = "template_solid_image"  # a pack template without model weights (EmptyImage -> resize -> save)
MARKER = "qgfuzzmark"  # in every traversal name: a file named with it must never appear anywhere
EXAMPLES = os.environ.get("QG_FUZZ_EXAMPLES")
SETTLE_SECONDS = 60.0
CASES: dict[str, int] = {}
FAILURES: dict[str, type] = {}


def failure(kind: str) -> type:
    """One AssertionError subclass per kind of failure, so hypothesis reports (and shrinks) each kind of defect
    on its own instead of stopping at the first one it met."""
    key = re.sub(r"[^A-Za-z]+", "_", kind).strip("_")[:60]
    return FAILURES.setdefault(key, type(f"Fuzz_{key}", (AssertionError,), {}))


def fuzz(examples: int):
    """CI-sized hypothesis settings: ``examples`` per test unless QG_FUZZ_EXAMPLES says otherwise."""
    return settings(
        max_examples=int(EXAMPLES) if EXAMPLES else examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )


def count(test: str) -> None:
    CASES[test] = CASES.get(test, 0) + 1


# ------------------------------------------------------------------------------------------- the server


class Live:
    """This module's ComfyUI, inside ``parent/srv`` so that anything written next to its workdir shows."""

    def __init__(self, parent: Path):
        self.parent = parent
        self.workdir = parent / "srv"
        self.server: ComfyServer | None = None
        self.crashes: list[str] = []
        self.baseline: dict = {}

    def start(self) -> None:
        self.server = ComfyServer(workdir=self.workdir, node_roots=[TEST_NODES], name="fuzz")
        if not self.baseline:  # small real scorers, so fuzzed inputs also reach the judges' own code
            save_clip(self.server.model_dir("open_clip"), "fuzz-tiny", tiny_config(embed_dim=64, image_size=32))
            save_hf_clip(self.server.model_dir("clip_scorers") / "fuzz-hf")
        self.server.start()
        self.baseline = self.baseline or snapshot(self)

    def alive(self) -> bool:
        return self.server is not None and self.server.process is not None and self.server.process.poll() is None

    def ensure(self) -> None:
        """Restart a server that an earlier example killed or wedged (so later examples and shrinking run)."""
        if not self.alive():
            if self.server is not None:
                self.crashes.append(self.server.log_tail(30))
                self.server.stop()
            self.start()

    def restart(self) -> None:
        self.crashes.append(self.server.log_tail(30))
        self.server.stop()
        self.start()

    def request(self, method: str, path: str, body: bytes | None = None, headers=None, timeout=60.0):
        """(status, reply text) of a raw request: ``path`` is sent exactly as given (already %-encoded)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {"Content-Type": "application/json"})
            reply = conn.getresponse()
            return reply.status, reply.read().decode("utf-8", errors="replace")
        except (OSError, http.client.HTTPException) as e:
            error = type(e).__name__
        finally:
            conn.close()
        self.died(f"{method} {path[:100]}: {error}")

    def died(self, doing: str):
        """A request failed at the connection: the server is exiting (or wedged). One failure type for all."""
        deadline = time.monotonic() + 10
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        tail = self.server.log_tail(30)
        if self.alive():
            self.restart()
        raise failure("server dead")(f"ComfyUI stopped answering ({doing}):\n{tail}")

    def get_json(self, path: str):
        status, text = self.request("GET", path)
        assert status == 200, f"GET {path}: {status} {text[:500]}"
        return json.loads(text)


@pytest.fixture(scope="module")
def live(tmp_path_factory, request):
    srv = Live(tmp_path_factory.mktemp("fuzz"))
    srv.start()
    names = [t["name"] for t in srv.get_json("/qg/templates")["templates"]]
    assert TEMPLATE in names, f"the fuzz tests run the pack template {TEMPLATE}; the server lists {names}"
    yield srv
    srv.server.stop()
    total = sum(CASES.values())
    lines = [f"quality_gate fuzz: {total} cases run"] + [f"  {k}: {v}" for k, v in sorted(CASES.items())]
    lines += [f"  server restarts after a crash or wedge: {len(srv.crashes)}"]
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print("\n" + "\n".join(lines))  # noqa: T201 (the case count the README records)


@pytest.fixture(scope="module")
def object_info(live):
    return live.get_json("/object_info")


# -------------------------------------------------------------------------------------------- properties


def owned(rel: tuple[str, ...], uploads: bool) -> bool:
    """Paths under ``srv/`` that a route may create or change: output/, temp/, the user templates folder (for
    any user), ComfyUI's own log, and input/ for /upload/image."""
    if not rel or rel[0] != "srv":
        return False
    rel = rel[1:]
    if rel in ((), ("fuzz.log",)) or rel[0] in ("output", "temp") or (uploads and rel[0] == "input"):
        return True
    if rel[0] == "user":
        joined = "/".join(rel)
        return rel == ("user",) or "quality_gate/templates" in joined or "quality_gate" == rel[-1]
    return False


def snapshot(live: Live, uploads: bool = False) -> dict:
    """Every path (a content hash for files) under the server's parent folder and the pack's template folders,
    minus what routes own. Symlinks (the pack link) are not followed."""
    found = {}
    roots = [(live.parent, ())] + [(ROOT / d, ("pack", d)) for d in ("example_workflows", "templates")]
    for root, prefix in roots:
        for folder, dirs, files in os.walk(root):
            base = prefix + Path(folder).relative_to(root).parts
            for name in dirs + files:
                rel = (*base, name)
                if owned(rel, uploads) and prefix == ():
                    continue
                path = Path(folder) / name
                if path.is_symlink() or path.is_dir():
                    found["/".join(rel)] = str(path.readlink()) if path.is_symlink() else None
                else:
                    found["/".join(rel)] = hashlib.sha1(path.read_bytes()).hexdigest()
            dirs[:] = [d for d in dirs if not (prefix == () and owned((*base, d), uploads))]
    return found


LEAKS = (
    "Traceback",
    'File "',
    "unhashable type",
    "object has no attribute",
    "NoneType",
    "not subscriptable",
    "is not iterable",
    "could not convert",
    "invalid literal for",
    "positional argument",
    "internal error",
)


def check_reply(status: int, text: str, sent: bytes = b"") -> None:
    """A /qg reply: never 5xx, never a traceback or raw exception text (unless the caller sent that text)."""
    if status >= 500:
        try:
            error = str(json.loads(text).get("error"))
        except (ValueError, AttributeError):
            error = text
        kind = re.sub(r"\d+|'[^']*'", "", error)[:70]  # e.g. "internal error: ValueError: could not convert"
        raise failure(f"HTTP {status} {kind}")(f"HTTP {status} from a /qg route: {text[:1000]}")
    leaked = [w for w in LEAKS if w in text and w.encode() not in sent and json.dumps(w).encode() not in sent]
    if leaked:
        raise failure(f"leak {leaked[0]}")(f"exception text {leaked} in a /qg reply (HTTP {status}): {text[:1000]}")


def settle(live: Live, uploads: bool = False, queued: bool = False) -> None:
    """After each example: the server is up, its queue drains, /system_stats answers, the disk is clean.
    ``queued``: a prompt was queued, so give a crash in the websocket publisher time to show."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        if not live.alive():
            live.died("after the example")
        status, text = live.request("GET", "/queue")
        queue = json.loads(text) if status == 200 else {}
        if status == 200 and not queue["queue_running"] and not queue["queue_pending"]:
            break
        if time.monotonic() > deadline:
            tail = live.server.log_tail(30)
            live.restart()
            raise failure("wedged")(f"the prompt queue did not drain within {SETTLE_SECONDS:.0f} s:\n{tail}")
        time.sleep(0.02)
    if queued:
        time.sleep(0.5)
        if not live.alive():
            live.died("after its prompt ran")
    status, text = live.request("GET", "/system_stats")
    assert status == 200, f"GET /system_stats answered {status}: {text[:500]}"
    now = snapshot(live, uploads)
    changed = sorted(k for k in now.keys() | live.baseline.keys() if now.get(k, 0) != live.baseline.get(k, 0))
    if changed:
        raise failure("disk")(f"files changed outside the folders routes own: {changed[:20]}")


# -------------------------------------------------------------------------------------------- strategies

EDGE_INTS = [-1, 0, 1, 2**31, 2**53 + 1, 2**63, 2**64, -(2**64) - 1, 10**30, 10**400]
ODD_STRINGS = [
    "",
    " ",
    "NaN",
    "Infinity",
    "-1",
    "1e999",
    "0x10",
    "１２",
    "true",
    "false",
    "None",
    "null",
    "\x00",
    "\ud800",
    "a\nb",
    "../../x.safetensors",
    f"../{MARKER}",
    "/etc/passwd",
    "C:\\Windows\\win.ini",
    "%2e%2e%2f",
    "😀" * 3,
    "\u202e\u0301",
]


def huge_string():
    return st.builds(lambda c, n: c * n, st.sampled_from(["x", "é", "😀"]), st.sampled_from([10_000, 100_000]))


SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-10, 100),
    st.sampled_from(EDGE_INTS),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 1e-320, 1e308]),
    st.text(max_size=12),
    st.sampled_from(ODD_STRINGS),
)
WEIRD = st.recursive(
    SCALARS | huge_string(),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
    max_leaves=6,
)
NOT_STRING = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.lists(st.text(max_size=4), min_size=1, max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(), min_size=1, max_size=2),
)
RAW_BODIES = st.one_of(
    st.sampled_from(
        [
            b"",
            b"{",
            b"[1,",
            b"{'params': {}}",
            b"\xff\xfe\x00",
            b"null",
            b"NaN",
            b"-Infinity",
            b'"just a string"',
            b'{"params": {"width": 1e999}}',
            b'{"number": ' + b"9" * 5000 + b"}",
            b'{"params": {"width": ' + b"9" * 5000 + b"}}",
            b'{"a": ' * 2000 + b"1" + b"}" * 2000,
            b"[" * 100_000 + b"]" * 100_000,
        ]
    ),
    st.binary(max_size=40),
)

VALID = {
    "width": st.integers(16, 64),
    "height": st.integers(16, 64),
    "color": st.integers(0, 0xFFFFFF),
    "scale": st.sampled_from([0.25, 0.5, 1, 1.5]),
    "method": st.sampled_from(["nearest-exact", "bilinear", "area", "bicubic", "lanczos"]),
    "save": st.booleans(),
    "prefix": st.sampled_from(["qg_fuzz", "sub/qg_fuzz", "../qg_fuzz", f"../../{MARKER}", "/tmp/" + MARKER]),
}
OVERRIDES = {  # "<title or id>.<input>" keys; values kept small where a valid one would allocate a big image
    "Canvas.batch_size": st.sampled_from([0, -1, 4097, "2", 2.5, math.nan, None, [1], True, 2]),
    "Canvas.color": WEIRD,
    "image.filename_prefix": st.one_of(WEIRD, st.sampled_from(VALID["prefix"].elements)),
    "Resize.upscale_method": WEIRD,
    "Save gate.on_closed": WEIRD,
    "11.filename_prefix": WEIRD,
    "nope.value": WEIRD,
    "Canvas": WEIRD,
    ".": WEIRD,
    "": WEIRD,
    "a.b.c": WEIRD,
    "Width.value": WEIRD,
}
PARAMS = st.one_of(
    WEIRD,
    st.fixed_dictionaries({}, optional={k: st.one_of(v, v, WEIRD) for k, v in {**VALID, **OVERRIDES}.items()}),
)
SWEEP_AXIS = st.one_of(
    WEIRD,
    st.lists(st.one_of(VALID["width"], WEIRD), min_size=0, max_size=3),
    st.fixed_dictionaries({}, optional={"start": WEIRD, "count": st.sampled_from([0, 1, 2, 1001, -3]), "step": WEIRD}),
    st.fixed_dictionaries({"start": st.integers(16, 64), "count": st.integers(1001, 10**6)}),  # over the cap
    st.integers(1001, 3000).map(lambda n: list(range(n))),  # over the cap
)
SWEEP = st.one_of(
    WEIRD,
    st.dictionaries(st.sampled_from([*VALID, *OVERRIDES, "unknown"]), SWEEP_AXIS, max_size=3),
    st.just({"width": list(range(100)), "height": list(range(100)), "color": list(range(100))}),  # 10^6 combos
)
RUN_FIELDS = {
    "params": PARAMS,
    "client_id": st.one_of(st.uuids().map(str), NOT_STRING, WEIRD),
    "prompt_id": st.one_of(st.uuids().map(str), WEIRD),
    "number": st.one_of(st.integers(-5, 5), WEIRD),
    "front": WEIRD,
    "extra_data": st.one_of(WEIRD, st.fixed_dictionaries({"client_id": NOT_STRING})),
    "hash": WEIRD,
    "partial_execution_targets": st.one_of(WEIRD, st.lists(st.sampled_from(["11", "9", "x", ""]), max_size=3)),
}


def workflow_strategy():
    """Random JSON, or the pack template's workflow with one input, class or node broken."""
    base = json.loads((ROOT / "templates" / f"{TEMPLATE}.json").read_text())["workflow"]

    @st.composite
    def mutated(draw):
        workflow = json.loads(json.dumps(base))
        for _ in range(draw(st.integers(1, 3))):
            node = draw(st.sampled_from(sorted(workflow)))
            kind = draw(st.sampled_from(["input", "input", "class", "drop", "node", "inputs", "meta"]))
            if kind == "input" and isinstance(workflow[node], dict) and isinstance(workflow[node].get("inputs"), dict):
                name = draw(st.sampled_from(sorted(workflow[node]["inputs"]) + ["extra"]))
                safe = name not in ("width", "height", "batch_size", "max", "scale_by") or node in "1235"
                value = draw(WEIRD if safe else st.sampled_from([0, -1, "64", math.nan, None, [node, 9], ["99", 0]]))
                workflow[node]["inputs"][name] = value
            elif kind == "class":
                workflow[node]["class_type"] = draw(st.one_of(WEIRD, st.sampled_from(sorted(NODES))))
            elif kind == "drop":
                del workflow[node]
                if not workflow:
                    return workflow
            elif kind == "node":
                workflow[node] = draw(WEIRD)
            elif kind == "inputs" and isinstance(workflow[node], dict):
                workflow[node]["inputs"] = draw(WEIRD)
            elif kind == "meta" and isinstance(workflow[node], dict):
                workflow[node]["_meta"] = draw(st.one_of(WEIRD, st.fixed_dictionaries({"title": WEIRD})))
        return workflow

    return st.one_of(mutated(), WEIRD, st.just(base))


WORKFLOW = workflow_strategy()


def json_body(fields: dict):
    """A JSON object body with any subset of ``fields`` (each valid or not)."""
    return st.fixed_dictionaries({}, optional=fields).map(encode)


def encode(value) -> bytes:
    return json.dumps(value).encode()  # allow_nan: NaN and Infinity, as Python's json (and aiohttp's) read them


TRAVERSAL = st.one_of(
    st.sampled_from(
        [
            f"../{MARKER}",
            f"../../{MARKER}",
            f"../../../../../../tmp/{MARKER}",
            f"..%2F{MARKER}",
            f"..%2f..%2f{MARKER}",
            f"%2e%2e%2f{MARKER}",
            f"%2E%2E/{MARKER}",
            f"/tmp/{MARKER}",
            f"//tmp/{MARKER}",
            f"{MARKER}%00.json",
            f"{MARKER}\x00",
            f"..\\{MARKER}",
            f"{MARKER}/../../x",
            f"{MARKER}.json",
            f"{MARKER}.",
            f"{MARKER} ",
            f"{MARKER}" + "a" * 60,
            f"ü{MARKER}",
            f"{MARKER}\n",
            f"~/{MARKER}",
            f"{MARKER}" * 200,
        ]
    ),
    st.text(min_size=1, max_size=10).map(lambda s: f"{s}{MARKER}"),
)
# how a name becomes a path segment: all encoded (%2F stays in the segment), slashes raw, or %-sequences kept
QUOTING = st.sampled_from(["", "/", "/%"])


def segment(name: str, safe: str) -> str:
    return quote(name, safe=safe + "~")


# ------------------------------------------------------------------------------------------- /qg routes


def send(live: Live, method: str, path: str, body: bytes | None, test: str) -> bool:
    """Send, check the reply; True when a prompt was queued (for ``settle``)."""
    live.ensure()
    count(test)
    status, text = live.request(method, path, body)
    check_reply(status, text, body or b"")
    return status == 200 and method == "POST" and '"prompt_id": "' in text


@fuzz(60)
@given(name=TRAVERSAL, safe=QUOTING, route=st.sampled_from(["", "/schema", "/run", "/sweep", "/put"]))
def test_template_names_never_leave_their_folder(live, name, safe, route):
    body = encode({"params": {}, "sweep": {"width": [16]}, "dry_run": True, "workflow": {}})
    method = {"": "GET", "/schema": "GET", "/put": "PUT"}.get(route, "POST")
    path = f"/qg/templates/{segment(name, safe)}{'' if route == '/put' else route}"
    send(live, method, path, None if method == "GET" else body, "template names")
    settle(live)


@fuzz(30)
@given(name=TRAVERSAL, safe=QUOTING)
def test_put_traversal_with_a_valid_workflow(live, name, safe):
    """A saveable workflow under a traversal name: refused, and nothing lands anywhere."""
    workflow = json.loads((ROOT / "templates" / f"{TEMPLATE}.json").read_text())["workflow"]
    send(live, "PUT", f"/qg/templates/{segment(name, safe)}", encode({"workflow": workflow}), "put traversal")
    settle(live)


@fuzz(80)
@given(body=json_body(RUN_FIELDS))
def test_run_template_bodies(live, body):
    settle(live, queued=send(live, "POST", f"/qg/templates/{TEMPLATE}/run", body, "run template"))


@fuzz(60)
@given(body=json_body({**RUN_FIELDS, "workflow": WORKFLOW}))
def test_run_adhoc_bodies(live, body):
    settle(live, queued=send(live, "POST", "/qg/run", body, "run ad hoc"))


SWEEP_FIELDS = {
    "params": PARAMS,
    "sweep": SWEEP,
    "mode": st.one_of(st.sampled_from(["product", "zip", "PRODUCT", "cartesian", ""]), WEIRD),
    "dry_run": st.one_of(st.just(True), WEIRD),
    "client_id": RUN_FIELDS["client_id"],
    "extra_data": RUN_FIELDS["extra_data"],
    "batch_id": WEIRD,
    "hash": WEIRD,
}


@fuzz(60)
@given(body=json_body(SWEEP_FIELDS))
def test_sweep_bodies(live, body):
    settle(live, queued=send(live, "POST", f"/qg/templates/{TEMPLATE}/sweep", body, "sweep"))


@fuzz(50)
@given(
    name=st.one_of(st.sampled_from(["fuzz_a", "fuzz_b", TEMPLATE]), TRAVERSAL),
    body=json_body({"workflow": WORKFLOW, "title": WEIRD, "description": WEIRD, "extra": WEIRD}),
)
def test_put_template_bodies(live, name, body):
    send(live, "PUT", f"/qg/templates/{segment(name, '')}", body, "put template")
    settle(live)
    for path in ("/qg/templates", f"/qg/templates/{segment(name, '')}", f"/qg/templates/{segment(name, '')}/schema"):
        send(live, "GET", path, None, "put template")  # what was saved reads back without a 5xx


@fuzz(40)
@given(
    route=st.sampled_from(
        [
            ("POST", f"/qg/templates/{TEMPLATE}/run"),
            ("POST", "/qg/run"),
            ("POST", f"/qg/templates/{TEMPLATE}/sweep"),
            ("PUT", "/qg/templates/fuzz_raw"),
        ]
    ),
    body=st.one_of(RAW_BODIES, WEIRD.filter(lambda v: not isinstance(v, dict)).map(encode)),
)
def test_bodies_that_are_not_json_objects(live, route, body):
    settle(live, queued=send(live, *route, body, "non-object bodies"))


@fuzz(40)
@given(prompt_id=st.one_of(st.uuids().map(str), TRAVERSAL, st.text(min_size=1, max_size=30), huge_string()))
def test_run_status_ids(live, prompt_id):
    send(live, "GET", f"/qg/runs/{segment(prompt_id, '')}", None, "run status")
    settle(live)


@fuzz(25)
@given(
    route=st.sampled_from([f"/qg/templates/{TEMPLATE}/run", "/qg/run", f"/qg/templates/{TEMPLATE}/sweep"]),
    client_id=NOT_STRING,
    inside_extra_data=st.booleans(),
)
def test_non_string_client_id_never_kills_the_server(live, route, client_id, inside_extra_data):
    """issue 14 item 3.0: a non-string client_id is a 400 on the pack's routes, or at least never reaches
    ComfyUI's websocket publisher (which raises and takes the server down when the prompt runs)."""
    workflow = json.loads((ROOT / "templates" / f"{TEMPLATE}.json").read_text())["workflow"]
    body = {"params": {"save": False}, "workflow": workflow, "sweep": {"width": [16]}}
    body.update({"extra_data": {"client_id": client_id}} if inside_extra_data else {"client_id": client_id})
    settle(live, queued=send(live, "POST", route, encode(body), "client_id"))


@fuzz(15)
@given(client_id=NOT_STRING)
def test_core_prompt_with_non_string_client_id_never_kills_the_server(live, client_id):
    """The same upstream bug through core POST /prompt: the pack's on-prompt handler neutralises it."""
    live.ensure()
    count("core client_id")
    prompt = {"1": {"class_type": "QGTest_Record", "inputs": {"label": uuid.uuid4().hex, "value": 1}}}
    status, _ = live.request("POST", "/prompt", encode({"prompt": prompt, "client_id": client_id}))
    settle(live, queued=status == 200)


@fuzz(25)
@given(
    filename=st.one_of(TRAVERSAL, st.just("plain.png")),
    subfolder=st.one_of(st.just(""), TRAVERSAL, st.sampled_from(["..", "../..", "/tmp", "a/../../.."])),
    kind=st.sampled_from(["input", "temp", "output", "../", "nope"]),
)
def test_upload_names_stay_in_the_input_folder(live, filename, subfolder, kind):
    """Core's /upload/image, which the pack's client uses for @file params: nothing lands outside input/,
    temp/ or output/ (filenames with the traversal marker are looked for everywhere at the end)."""
    live.ensure()
    count("upload")
    png = bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
    )
    boundary = "qgfuzzboundary"
    parts = []
    for field, value in (("subfolder", subfolder), ("type", kind), ("overwrite", "true")):
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"\r\n\r\n{value}\r\n'.encode())
    safe_name = filename.replace('"', "").replace("\r", "").replace("\n", "")
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{safe_name}"\r\n'
    parts.append(head.encode("utf-8", "surrogatepass") + b"Content-Type: image/png\r\n\r\n" + png + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    conn = http.client.HTTPConnection("127.0.0.1", live.server.port, timeout=60)
    try:
        conn.request("POST", "/upload/image", body=body, headers=headers)
        conn.getresponse().read()
    finally:
        conn.close()
    settle(live, uploads=True)


# ----------------------------------------------------------------------------------------- node inputs

IMAGE_SHAPES = ["1,8,8,3", "2,5,7,3", "1,1,1,3", "1,0,4,3", "0,4,4,3", "1,6,6,4", "1,6,6,1", "1,3,8,8", "4,4", "3"]
CONNECTED = object()  # a placeholder: "link this input from a source of its type"


def widget_values(kind, options: dict):
    """Valid and wrong values for a widget of ``kind`` (INT, FLOAT, STRING, BOOLEAN or a combo list)."""
    if isinstance(kind, list):
        valid = st.sampled_from(kind) if kind else st.nothing()
        return st.one_of(valid, valid, st.sampled_from(["==", ">=", "../../x.safetensors", f"../{MARKER}"]), WEIRD)
    if kind == "INT":
        lo, hi = options.get("min", -(2**63)), options.get("max", 2**63)
        edges = [v for v in (lo, hi, lo - 1, hi + 1) if isinstance(v, int)]
        small = st.integers(max(lo, -10), min(hi, 6)) if max(lo, -10) <= min(hi, 6) else st.just(lo)
        return st.one_of(small, small, st.sampled_from(edges), WEIRD)
    if kind == "FLOAT":
        lo, hi = options.get("min", -1e9), options.get("max", 1e9)
        return st.one_of(st.floats(lo, hi), st.sampled_from([lo, hi, lo - 1, hi + 1]), WEIRD)
    if kind == "BOOLEAN":
        return st.one_of(st.booleans(), st.booleans(), st.sampled_from(["false", "true", 0, 1, "no", ""]), WEIRD)
    return st.one_of(st.text(max_size=20), st.sampled_from(ODD_STRINGS), huge_string(), WEIRD)


class Prompt:
    def __init__(self):
        self.nodes: dict[str, dict] = {}

    def add(self, class_type: str, **inputs) -> str:
        node = str(len(self.nodes) + 1)
        self.nodes[node] = {"class_type": class_type, "inputs": inputs}
        return node


def source(draw, prompt: Prompt, kind: str, object_info: dict, depth: int = 0) -> list:
    """A link from a small upstream node that makes ``kind`` (or something else, for the wrong-type cases)."""
    if kind == "IMAGE":
        if draw(st.booleans()):
            size = st.integers(1, 24)
            node = prompt.add(
                "EmptyImage",
                width=draw(size),
                height=draw(size),
                batch_size=draw(st.integers(1, 3)),
                color=draw(st.integers(0, 0xFFFFFF)),
            )
        else:
            fill = draw(st.sampled_from([0.0, 0.5, 1.0, -1.0, 2.0, math.nan, math.inf]))
            node = prompt.add("QGTest_Tensor", shape=draw(st.sampled_from(IMAGE_SHAPES)), fill=fill)
        return [node, 0]
    if kind in ("QG_SCORES", "QG_SCORER", "QG_LOOP") and depth < 2:
        maker = {"QG_SCORES": ("QG_TechnicalScore", 1), "QG_SCORER": ("QG_ScorerLoader", 0)}
        maker["QG_LOOP"] = ("QG_RetryStart", 0)
        class_type, slot = maker[kind]
        return [build_node(draw, prompt, class_type, object_info, depth + 1), slot]
    text = draw(st.one_of(WEIRD, st.sampled_from(["[1, 2]", "{}", "NaN", "null", '"x"'])).map(json.dumps))
    return [prompt.add("QGTest_Json", json=text), 0]


def build_node(draw, prompt: Prompt, class_type: str, object_info: dict, depth: int = 0) -> str:
    """``class_type`` with every input drawn: left out, a widget value (valid or not), or a link."""
    spec = object_info[class_type]["input"]
    inputs = {}
    for section in ("required", "optional"):
        for name, decl in (spec.get(section) or {}).items():
            kind, options = decl[0], (decl[1] if len(decl) > 1 else {})
            if name == "max_attempts":  # a valid large value is a long (not a wrong) run
                options = {**options, "max": 3}
            choice = draw(
                st.sampled_from(
                    ["value", "value", "link", "omit"]
                    if section == "optional"
                    else ["value", "value", "value", "link", "omit"]
                )
            )
            widget = isinstance(kind, list) or kind in ("INT", "FLOAT", "STRING", "BOOLEAN")
            if choice == "omit" and draw(st.integers(0, 3)) > 0 and section == "required":
                choice = "value"  # a missing required input is one case; keep most prompts valid-shaped
            if choice == "omit":
                continue
            if choice == "value" and widget:
                inputs[name] = draw(widget_values(kind, options))
            elif choice == "value":
                inputs[name] = source(draw, prompt, kind, object_info, depth)
            elif widget or kind != "*":  # a widget fed by a link (any JSON value), a socket by its own type
                inputs[name] = source(draw, prompt, "*" if widget else kind, object_info, depth)
            else:
                inputs[name] = source(
                    draw, prompt, draw(st.sampled_from(["*", "IMAGE", "QG_SCORES"])), object_info, depth
                )
    if class_type == "QG_RetryEnd" and "loop" in inputs and "score" in inputs and draw(st.booleans()):
        start = inputs["loop"][0]  # a real loop body: start.seed -> SeedScore -> end.score
        body = prompt.add(
            "QGTest_SeedScore", seed=[start, 1], scores="{}", default=draw(st.floats(-10, 10)), label="fuzz"
        )
        inputs["score"], inputs["candidate"] = [body, 0], [start, 1]
    node = str(len(prompt.nodes) + 1)
    prompt.nodes[node] = {"class_type": class_type, "inputs": inputs}
    return node


def run_prompt(live: Live, prompt: dict) -> dict | None:
    """Queue through core POST /prompt; None when validation refused it, else the finished history entry."""
    status, text = live.request("POST", "/prompt", encode({"prompt": prompt}))
    assert status in (200, 400), f"POST /prompt answered {status}: {text[:1000]}"
    if status == 400:
        return None
    prompt_id = json.loads(text)["prompt_id"]
    deadline = time.monotonic() + SETTLE_SECONDS
    while time.monotonic() < deadline:
        assert live.alive(), f"ComfyUI exited while running the prompt:\n{live.server.log_tail(30)}"
        entry = json.loads(live.request("GET", f"/history/{prompt_id}")[1]).get(prompt_id)
        if entry and entry.get("status", {}).get("completed") is not None:
            return entry
        time.sleep(0.02)
    tail = live.server.log_tail(30)
    live.restart()
    raise AssertionError(f"the prompt did not finish within {SETTLE_SECONDS:.0f} s:\n{tail}")


def pack_errors(entry: dict) -> list[dict]:
    """execution_error messages of a finished prompt raised by a QG_ node with anything but QGError."""
    found = []
    for kind, data in entry.get("status", {}).get("messages", []):
        if kind == "execution_error" and str(data.get("node_type", "")).startswith("QG_"):
            if not str(data.get("exception_type", "")).endswith("QGError"):
                keep = ("node_id", "node_type", "exception_type", "exception_message")
                found.append({k: data.get(k) for k in keep})
    return found


NODE_EXAMPLES = {"QG_ScorerLoader": 25, "QG_AestheticScore": 8, "QG_PromptAdherence": 8, "QG_ZeroShotClassify": 8}
NODE_EXAMPLES.update({"QG_HFScorerLoader": 10, "QG_PreferenceScore": 10, "QG_ClipIQA": 10})


@pytest.mark.parametrize("class_type", sorted(NODES))
def test_node_inputs_through_core_prompt(live, object_info, class_type):
    @fuzz(NODE_EXAMPLES.get(class_type, 14))
    @given(data=st.data())
    def check(data):
        live.ensure()
        count(f"node {class_type}")
        prompt = Prompt()
        node = build_node(data.draw, prompt, class_type, object_info)
        for slot in range(len(object_info[class_type]["output"])):
            prompt.add("QGTest_Record", label=uuid.uuid4().hex, value=[node, slot])
        data.draw(st.just(prompt.nodes), label="prompt")
        entry = run_prompt(live, prompt.nodes)
        if entry is not None:
            errors = pack_errors(entry)
            assert not errors, f"a QG_ node failed with a raw exception, not a QGError: {errors}"
        settle(live)

    check()


# --------------------------------------------------------------------------------------------- the end


def test_zz_worker_still_runs_and_nothing_named_marker_anywhere(live):
    """After everything above: a tiny prompt completes, and no file named with the traversal marker exists in
    the pack, the server's parent folder, ComfyUI's folder or near the filesystem root."""
    live.ensure()
    count("final")
    prompt = {"1": {"class_type": "QGTest_Record", "inputs": {"label": uuid.uuid4().hex, "value": "done"}}}
    entry = run_prompt(live, prompt)
    assert entry is not None and entry["status"]["status_str"] == "success", entry
    hits = []
    for root, depth in ((ROOT, 6), (live.parent, 8), (comfy_dir(), 4), (Path("/tmp"), 2), (Path("/"), 1)):
        for folder, dirs, files in os.walk(root):
            level = len(Path(folder).relative_to(root).parts)
            dirs[:] = [d for d in dirs if level < depth and d not in (".git", ".venv", "node_modules")]
            hits += [str(Path(folder) / n) for n in dirs + files if MARKER in n]
    owned_by = (live.workdir / "output", live.workdir / "temp", live.workdir / "input")
    saved = re.compile(r".*/user/(.+/)?quality_gate/templates/[A-Za-z0-9_-]{1,64}\.json")  # a valid name with it
    hits = [h for h in hits if not any(Path(h).is_relative_to(o) for o in owned_by) and not saved.fullmatch(h)]
    assert not hits, f"files named with the traversal marker outside the folders routes own: {hits[:20]}"
