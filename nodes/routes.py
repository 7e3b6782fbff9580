"""HTTP routes under ``/qg`` (templates, runs by name, sweeps, run status), the ``qg.batch`` events, and the
guard on every ``POST /prompt`` (booleans, a non-string ``client_id``).

``setup()`` registers everything on ComfyUI's server through ``host`` (the pack's one adapter to ComfyUI's
internals); outside ComfyUI (unit tests) it does nothing. Runs are queued through ComfyUI's own ``POST /prompt``
handler, called in-process with the filled prompt, so numbering, prompt ids, the sensitive-data split, history
and the Jobs API stay ComfyUI's.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import shutil
import uuid
from functools import cache
from pathlib import Path

from . import host
from .core.prompt import is_link, title_of
from .core.template.errors import TemplateError, fail
from .core.template.fill import SeedState, guard_booleans, prepare
from .core.template.runs import run_record, summarize_history
from .core.template.schema import Template
from .core.template.store import TemplateStore, check_name
from .core.template.sweep import expand_sweep
from .registry import NODES

LOG = logging.getLogger("quality_gate")
ROOT = Path(__file__).resolve().parents[1]
PACK_TEMPLATES = ROOT / "templates"  # the pack's run-by-name templates (read-only)
USER_TEMPLATES = "quality_gate/templates"  # inside each user's ComfyUI user folder
BATCH_POLL_SECONDS = 0.2
QUEUE_FIELDS = ("prompt_id", "number", "front", "partial_execution_targets", "extra_data")


@cache
def _boolean_names(class_type: str) -> frozenset:
    """The BOOLEAN-declared inputs of one of this pack's classes, read once per class (only classes that appear
    in a prompt are asked, so one class whose INPUT_TYPES fails cannot switch the guard off for the others)."""
    info = NODES[class_type].INPUT_TYPES()
    return frozenset(
        name
        for section in ("required", "optional")
        for name, spec in (info.get(section) or {}).items()
        if spec[0] == "BOOLEAN"
    )


def boolean_inputs(class_type) -> frozenset:
    """The BOOLEAN-declared inputs of this pack's node classes (other packs' nodes are left alone)."""
    return _boolean_names(class_type) if isinstance(class_type, str) and class_type in NODES else frozenset()


def guard_prompt(json_data):
    """``PromptServer.add_on_prompt_handler``: runs on every ``POST /prompt`` before validation. Refuses string
    booleans on this pack's nodes, and drops a ``client_id`` that is not a string: ComfyUI 0.3.75's websocket
    publisher fails on it when the prompt runs (``unhashable type``) and the whole server exits."""
    if isinstance(json_data, dict):
        extra = json_data.get("extra_data")
        for where in (json_data, extra if isinstance(extra, dict) else {}):
            client = where.get("client_id")
            if client is not None and not isinstance(client, str):
                LOG.warning(
                    "Quality Gate: dropped a client_id of type %s from a POST /prompt (it must be a string; "
                    "ComfyUI would crash sending events to it); the prompt runs without events",
                    type(client).__name__,
                )
                del where["client_id"]
        guard_booleans(json_data.get("prompt"), boolean_inputs)
    return json_data


def node_specs():
    """A memoised ``specs(class_type)`` over ComfyUI's node classes (what ``/object_info`` serves)."""
    memo: dict = {}

    def specs(class_type):
        if class_type not in memo:
            cls = host.node_class(class_type)
            memo[class_type] = cls.INPUT_TYPES() if cls is not None else None
        return memo[class_type]

    return specs


class Rejected(Exception):
    """ComfyUI refused a prompt; ``reply`` is the body and ``status`` the HTTP status to answer."""

    def __init__(self, reply: dict, status: int = 400):
        self.reply = reply
        self.status = status
        super().__init__(reply.get("error"))


def _error_reply(e: TemplateError):
    from aiohttp import web

    return web.json_response({"error": str(e), "errors": e.errors}, status=e.status)


def handler(method):
    """Route wrapper: TemplateError and Rejected become JSON replies, a bad body a 400. A bug of ours is
    logged with its traceback and answered with a 500 that says only that (no exception text)."""
    from aiohttp import web

    async def wrapped(self, request):
        try:
            return await method(self, request)
        except TemplateError as e:
            return _error_reply(e)
        except Rejected as e:
            return web.json_response(e.reply, status=e.status)
        except Exception:  # noqa: BLE001 - a bug of ours: logged in full, answered without internals
            LOG.exception("Quality Gate: %s %s failed", request.method, request.path)
            message = "internal error in Quality Gate (the server log has the details)"
            return web.json_response({"error": message}, status=500)

    return wrapped


def _kind(expected: str, check):
    return expected, check


BODY_FIELDS = {
    "client_id": _kind("a string", lambda v: isinstance(v, str)),
    "prompt_id": _kind("a UUID string", lambda v: isinstance(v, str)),
    "number": _kind(
        "a finite number",
        lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v),
    ),
    "front": _kind("true or false", lambda v: isinstance(v, bool)),
    "extra_data": _kind("a JSON object", lambda v: isinstance(v, dict)),
    "partial_execution_targets": _kind(
        "a list of node ids (strings)", lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v)
    ),
    "params": _kind("a JSON object of parameter values", lambda v: isinstance(v, dict)),
    "workflow": _kind("an API-format workflow (a JSON object)", lambda v: isinstance(v, dict)),
    "sweep": _kind("a JSON object of parameter: values", lambda v: isinstance(v, dict)),
    "mode": _kind('"product" or "zip"', lambda v: isinstance(v, str)),
    "dry_run": _kind("true or false", lambda v: isinstance(v, bool)),
    "batch_id": _kind("a string", lambda v: isinstance(v, str) and 0 < len(v) <= 200),
    "hash": _kind("a string", lambda v: isinstance(v, str)),
    "title": _kind("a string", lambda v: isinstance(v, str)),
    "description": _kind("a string", lambda v: isinstance(v, str)),
}


async def _body(request, allowed: tuple) -> dict:
    """The JSON object of a request, each known field of the right type (null counts as absent); unknown
    fields and wrong types are one 400 listing them all."""
    try:
        body = json.loads(await request.text())
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except (UnicodeError, LookupError):  # bytes that are not UTF-8 (or the charset named), lone surrogates
        raise fail("body", "the request body is not valid UTF-8 text (or holds a lone surrogate)") from None
    except (ValueError, RecursionError):  # not JSON, numbers over Python's digit limit, absurd nesting
        raise fail("body", "the request body is not valid JSON (or is nested too deeply)") from None
    if not isinstance(body, dict):
        raise fail("body", "the request body must be a JSON object")
    errors: dict = {}
    for key, value in body.items():
        if key not in allowed:
            errors[str(key)[:80]] = [f"unknown field; expected one of {', '.join(allowed)}"]
        elif value is not None and not BODY_FIELDS[key][1](value):
            errors[key] = [f"must be {BODY_FIELDS[key][0]}, got {type(value).__name__}"]
    extra_client = body.get("extra_data", {}).get("client_id") if isinstance(body.get("extra_data"), dict) else None
    if extra_client is not None and not isinstance(extra_client, str):
        errors["extra_data"] = [f"extra_data.client_id must be a string, got {type(extra_client).__name__}"]
    prompt_id = body.get("prompt_id")
    if isinstance(prompt_id, str) and "prompt_id" not in errors:
        try:
            canonical = str(uuid.UUID(prompt_id))
        except ValueError:
            canonical = None
        if canonical != prompt_id:
            errors["prompt_id"] = [f"must be a canonical UUID string (like {uuid.uuid4()}), got {prompt_id[:80]!r}"]
    if errors:
        raise TemplateError(errors)
    return {k: v for k, v in body.items() if v is not None}


RUN_FIELDS = ("params", "client_id", "hash", *QUEUE_FIELDS)


class Api:
    def __init__(self, legacy_user_dir: Path | None = None):
        self.seeds = SeedState()
        self._seeding = asyncio.Lock()  # from drawing increment seeds to queueing: a rejected prompt uses up none
        self._templates: dict = {}
        self._watchers: set = set()  # running qg.batch watchers (the loop keeps only weak references to tasks)
        self.legacy_user_dir = legacy_user_dir

    # --- templates ---

    def store(self, request) -> TemplateStore:
        """The pack's templates and the requesting user's own (per user under ``--multi-user``)."""
        folder = host.request_user_dir(request, USER_TEMPLATES)
        if folder is None:
            raise fail("user", "unknown user (the comfy-user header names no user of this server)", 403)
        folder = Path(folder)
        if self.legacy_user_dir is not None and folder.parent.parent.name == "default":
            migrate_templates(self.legacy_user_dir, folder)
            self.legacy_user_dir = None
        return TemplateStore(PACK_TEMPLATES, folder)

    def template(self, store: TemplateStore, name: str) -> Template:
        path, source = store.locate(name)
        stat = path.stat()
        key = (str(path), stat.st_mtime_ns, stat.st_size)
        cached = self._templates.get(str(path))
        if cached is None or cached[0] != key:
            cached = (key, store.load(name, node_specs()))
            self._templates[str(path)] = cached
        return cached[1]

    def named(self, request) -> Template:
        return self.template(self.store(request), check_name(request.match_info["name"]))

    @handler
    async def list_templates(self, request):
        from aiohttp import web

        store = self.store(request)
        items = []
        for name in store.names():
            try:
                t = self.template(store, name)
            except TemplateError as e:
                items.append({"name": name, "error": str(e)})
                continue
            items.append(
                {
                    "name": name,
                    "title": t.title,
                    "description": t.description,
                    "source": t.source,
                    "params": len(t.params),
                    "hash": t.hash,
                }
            )
        return web.json_response({"templates": items})

    @handler
    async def get_template(self, request):
        from aiohttp import web

        return web.json_response(self.named(request).info())

    @handler
    async def get_schema(self, request):
        from aiohttp import web

        return web.json_response(self.named(request).schema())

    @handler
    async def put_template(self, request):
        from aiohttp import web

        name = check_name(request.match_info["name"])
        store = self.store(request)
        body = await _body(request, ("workflow", "title", "description"))
        title, description = body.get("title", ""), body.get("description", "")
        template = Template.build(name, body.get("workflow"), node_specs(), title, description, "user")
        prompt = json.loads(json.dumps(template.workflow))  # as saved: what the canvas would run
        await self.validate(prompt, str(uuid.uuid4()), template, strict=True)
        path = store.save(name, template.workflow, title, description)
        self._templates.pop(str(path), None)
        reply = {"name": name, "source": "user", "hash": template.hash, "params": len(template.params)}
        return web.json_response(reply)

    # --- runs ---

    @staticmethod
    def by_param(prompt: dict, template: Template, node_errors: dict) -> dict:
        """ComfyUI's node errors keyed as a caller knows them: by the parameter that feeds the node or the
        input, else ``<node title>.<input>``."""
        owners = {p.node: p.name for p in template.params}
        errors: dict = {}
        for node, info in (node_errors or {}).items():
            for err in (info or {}).get("errors", []):
                name = (err.get("extra_info") or {}).get("input_name")
                source = (prompt.get(node) or {}).get("inputs", {}).get(name)
                key = owners.get(node) or (owners.get(source[0]) if is_link(source) else None)
                key = key or f"{title_of(prompt, node)}.{name}"
                errors.setdefault(key, []).append(f"{err.get('message')}: {err.get('details')}")
        return errors

    def rejected(self, prompt: dict, template: Template, reply: dict, status: int = 400) -> Rejected:
        error = reply.get("error")
        node_errors = reply.get("node_errors") or {}
        errors = self.by_param(prompt, template, node_errors)
        if isinstance(error, dict):
            if not node_errors:
                errors["workflow"] = [f"{error.get('message')}: {error.get('details')}"]
            error = error.get("message")
        message = error or "some outputs of the workflow failed validation"
        return Rejected({"error": message, "errors": errors, "node_errors": node_errors}, status)

    async def validate(self, prompt: dict, prompt_id: str, template: Template, strict=False) -> None:
        """ComfyUI's own validation without queueing (saving a template, checking every sweep item before any
        is queued). Like POST /prompt, outputs that fail are allowed when others pass, unless ``strict``."""
        guard_booleans(prompt, boolean_inputs)
        valid = await host.validate_prompt(prompt_id, prompt)
        if valid is None or (valid[0] and not (strict and valid[3])):
            return
        raise self.rejected(prompt, template, {"error": valid[1], "node_errors": valid[3]})

    async def queue(self, request, body: dict, prompt: dict, template: Template, record: dict) -> dict:
        """Queue one filled prompt through ComfyUI's own POST /prompt handler; its reply (prompt_id, number,
        node_errors), or Rejected with the errors keyed by parameter."""
        prompt_id = body.get("prompt_id") or str(uuid.uuid4())
        if body.get("prompt_id") and host.find_prompt(prompt_id) is not None:
            raise fail("prompt_id", f"prompt_id {prompt_id!r} is already queued, running or in the history", 409)
        core = {k: body[k] for k in QUEUE_FIELDS if k in body}
        core.update(prompt=prompt, prompt_id=prompt_id, extra_data={**body.get("extra_data", {}), "qg": record})
        if "client_id" in body:
            core["client_id"] = body["client_id"]
        status, reply = await host.queue_prompt(request, core)
        if status != 200:
            raise self.rejected(prompt, template, reply, status)
        return reply

    async def run(self, request, template: Template, body: dict):
        from aiohttp import web

        self.check_hash(template, body)
        async with self._seeding:
            seeds = self.seeds.preview()
            prompt, used = prepare(template, body.get("params"), node_specs(), seeds)
            reply = await self.queue(request, body, prompt, template, {"template": template.name, "params": used})
            self.seeds.commit(seeds)
        return web.json_response({**reply, "params": used})

    @staticmethod
    def check_hash(template: Template, body: dict) -> None:
        """A caller that sends the ``x-qg-hash`` it built against learns when the template was re-saved."""
        expected = body.get("hash")
        if expected is not None and expected != template.hash:
            message = f"the template changed (hash {template.hash}, the request expects {expected}); reread its schema"
            raise fail("hash", message, 409)

    @handler
    async def run_template(self, request):
        template = self.named(request)
        return await self.run(request, template, await _body(request, RUN_FIELDS))

    @handler
    async def run_adhoc(self, request):
        body = await _body(request, ("workflow", *RUN_FIELDS))
        return await self.run(request, Template.build("adhoc", body.get("workflow"), node_specs()), body)

    @handler
    async def sweep(self, request):
        template = self.named(request)
        fields = ("params", "sweep", "mode", "dry_run", "batch_id", "client_id", "extra_data", "hash")
        body = await _body(request, fields)
        self.check_hash(template, body)
        combos = expand_sweep(body.get("params"), body.get("sweep"), body.get("mode", "product"))
        async with self._seeding:
            return await self._sweep(request, template, body, combos)

    async def _sweep(self, request, template: Template, body: dict, combos: list):
        from aiohttp import web

        specs = node_specs()
        seeds = self.seeds.preview()  # used up once every item passed ComfyUI's validation; never by a dry run
        prepared, errors = [], {}
        for i, values in enumerate(combos):
            try:
                prepared.append(prepare(template, values, specs, seeds))
            except TemplateError as e:
                for key, messages in e.errors.items():
                    bucket = errors.setdefault(key, [])
                    bucket += [f"item {i}: {m}" for m in messages if len(bucket) < 5]
        if errors:
            raise TemplateError(errors)
        if body.get("dry_run") is True:  # validated items, not queued (clients that spread items over servers)
            return web.json_response(
                {"batch_id": None, "items": [{"prompt_id": None, "params": u} for _, u in prepared]}
            )
        batch_id = body.get("batch_id") or str(uuid.uuid4())
        for i, (prompt, used) in enumerate(prepared):
            try:
                await self.validate(prompt, str(uuid.uuid4()), template)
            except Rejected as e:
                e.reply["error"] = f"item {i} ({json.dumps(used)[:200]}): {e.reply['error']}"
                raise
        self.seeds.commit(seeds)
        items = []
        for index, (prompt, used) in enumerate(prepared):
            record = {"template": template.name, "params": used, "batch_id": batch_id, "index": index}
            queued = {k: body[k] for k in ("client_id", "extra_data") if k in body}
            reply = await self.queue(request, queued, prompt, template, record)
            items.append({"prompt_id": reply["prompt_id"], "params": used})
        task = asyncio.get_running_loop().create_task(self.watch_batch(batch_id, items, body.get("client_id")))
        self._watchers.add(task)
        task.add_done_callback(self._watchers.discard)
        return web.json_response({"batch_id": batch_id, "items": items})

    async def watch_batch(self, batch_id: str, items: list, client_id):
        """``qg.batch`` events: one when queued, then one per finished item, until every item ended (an item
        deleted from the queue counts as ``cancelled``)."""
        total = len(items)
        state = {"batch_id": batch_id, "total": total, "done": 0, "succeeded": 0, "failed": 0}
        host.send_event("qg.batch", {**state, "prompt_id": None, "status": "queued"}, client_id)
        pending = {item["prompt_id"]: i for i, item in enumerate(items)}
        while pending:
            await asyncio.sleep(BATCH_POLL_SECONDS)
            for prompt_id in list(pending):
                found = host.find_prompt(prompt_id)
                if found is None:
                    status = "cancelled"
                elif found[0] == "history":
                    status = (found[1].get("status") or {}).get("status_str")
                else:
                    continue
                index = pending.pop(prompt_id)
                state["done"] += 1
                state["succeeded" if status == "success" else "failed"] += 1
                event = {**state, "prompt_id": prompt_id, "index": index, "status": status}
                host.send_event("qg.batch", event, client_id)

    # --- status ---

    @staticmethod
    def status(prompt_id: str) -> dict | None:
        found = host.find_prompt(prompt_id)
        if found is None:
            return None
        where, data = found
        if where == "history":
            return {"prompt_id": prompt_id, **summarize_history(data)}
        return {"prompt_id": prompt_id, "status": where, "outputs": {}, **run_record(data)}

    @handler
    async def get_run(self, request):
        from aiohttp import web

        prompt_id = request.match_info["prompt_id"]
        reply = self.status(prompt_id)
        if reply is None:
            raise fail("prompt_id", f"no prompt {prompt_id[:80]!r} is queued, running or in the history", 404)
        return web.json_response(reply)

    def register(self, routes) -> None:
        def bind(method):
            async def route(request):
                return await method(self, request)

            return route

        cls = type(self)
        routes.get("/qg/templates")(bind(cls.list_templates))
        routes.get("/qg/templates/{name}")(bind(cls.get_template))
        routes.get("/qg/templates/{name}/schema")(bind(cls.get_schema))
        routes.put("/qg/templates/{name}")(bind(cls.put_template))
        routes.post("/qg/templates/{name}/run")(bind(cls.run_template))
        routes.post("/qg/templates/{name}/sweep")(bind(cls.sweep))
        routes.post("/qg/run")(bind(cls.run_adhoc))
        routes.get("/qg/runs/{prompt_id}")(bind(cls.get_run))


def migrate_templates(legacy: Path, folder: Path) -> None:
    """User templates saved before they were kept per user (``<user dir>/quality_gate/templates``) move to the
    default user's folder, where ComfyUI without ``--multi-user`` keeps every user's files. Nothing is
    overwritten: a name already in the new folder stays in the old one (and is logged)."""
    if not legacy.is_dir():
        return
    for path in sorted(legacy.glob("*.json")):
        target = folder / path.name
        if target.exists():
            LOG.warning(
                "Quality Gate: template %s exists in %s too; the old copy stays in %s", path.name, folder, legacy
            )
            continue
        folder.mkdir(parents=True, exist_ok=True)
        shutil.move(str(path), str(target))
        LOG.info("Quality Gate: moved user template %s to %s", path.name, folder)


def setup() -> bool:
    """Register the routes and the POST /prompt guard on ComfyUI's server (False outside ComfyUI)."""
    if not host.in_comfyui():
        return False
    user_dir = host.get_user_directory()
    api = Api(Path(user_dir) / "quality_gate" / "templates" if user_dir else None)
    if not host.add_routes(api.register):
        return False
    host.add_on_prompt_handler(guard_prompt)
    return True
