"""HTTP routes under ``/qg`` (templates, runs by name, sweeps, run status), the ``qg.batch`` events, and the
boolean guard on every ``POST /prompt``.

``setup()`` registers everything on ComfyUI's ``PromptServer``; outside ComfyUI (unit tests) it does nothing.
Queueing follows ComfyUI's own ``POST /prompt``: ``execution.validate_prompt`` then ``prompt_queue.put`` with
the same number, prompt_id, extra_data (client_id, create_time, sensitive keys) and outputs to execute.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from functools import cache
from pathlib import Path

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
BATCH_POLL_SECONDS = 0.2


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
    """``PromptServer.add_on_prompt_handler``: runs on every ``POST /prompt`` before validation."""
    if isinstance(json_data, dict):
        guard_booleans(json_data.get("prompt"), boolean_inputs)
    return json_data


def node_specs():
    """A memoised ``specs(class_type)`` over ComfyUI's node classes (what ``/object_info`` serves)."""
    import nodes as comfy_nodes  # ComfyUI's top-level nodes.py (the pack's own package is imported relatively)

    memo: dict = {}

    def specs(class_type):
        if class_type not in memo:
            cls = comfy_nodes.NODE_CLASS_MAPPINGS.get(class_type)
            memo[class_type] = cls.INPUT_TYPES() if cls is not None else None
        return memo[class_type]

    return specs


class Rejected(Exception):
    """ComfyUI's own validation refused a prompt; ``reply`` is the 400 body."""

    def __init__(self, reply: dict):
        self.reply = reply
        super().__init__(reply.get("error"))


def _error_reply(e: TemplateError):
    from aiohttp import web

    return web.json_response({"error": str(e), "errors": e.errors}, status=e.status)


def handler(method):
    """Route wrapper: TemplateError and Rejected become JSON replies, a bad body a 400; never a traceback."""
    from aiohttp import web

    async def wrapped(self, request):
        try:
            return await method(self, request)
        except TemplateError as e:
            return _error_reply(e)
        except Rejected as e:
            return web.json_response(e.reply, status=400)
        except json.JSONDecodeError as e:
            return _error_reply(fail("body", f"the request body is not valid JSON: {e}"))
        except Exception as e:  # a bug of ours: log it, answer 500 without a traceback
            LOG.exception("quality_gate: %s %s failed", request.method, request.path)
            return web.json_response({"error": f"internal error: {type(e).__name__}: {e}"}, status=500)

    return wrapped


async def _body(request) -> dict:
    body = await request.json()
    if not isinstance(body, dict):
        raise fail("body", "the request body must be a JSON object")
    return body


class Api:
    def __init__(self, server, user_dir: Path):
        self.server = server
        self.store = TemplateStore(PACK_TEMPLATES, user_dir)
        self.seeds = SeedState()
        self._templates: dict = {}
        self._watchers: set = set()  # running qg.batch watchers (the loop keeps only weak references to tasks)

    # --- templates ---

    def template(self, name: str) -> Template:
        path, source = self.store.locate(name)
        stat = path.stat()
        key = (str(path), stat.st_mtime_ns, stat.st_size)
        cached = self._templates.get(name)
        if cached is None or cached[0] != key:
            cached = (key, self.store.load(name, node_specs()))
            self._templates[name] = cached
        return cached[1]

    @handler
    async def list_templates(self, request):
        from aiohttp import web

        items = []
        for name in self.store.names():
            try:
                t = self.template(name)
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

        return web.json_response(self.template(check_name(request.match_info["name"])).info())

    @handler
    async def get_schema(self, request):
        from aiohttp import web

        return web.json_response(self.template(check_name(request.match_info["name"])).schema())

    @handler
    async def put_template(self, request):
        from aiohttp import web

        name = check_name(request.match_info["name"])
        body = await _body(request)
        unknown = set(body) - {"workflow", "title", "description"}
        if unknown:
            raise fail("body", f"unknown fields {sorted(unknown)}; expected workflow, title, description")
        title, description = body.get("title") or "", body.get("description") or ""
        if not isinstance(title, str) or not isinstance(description, str):
            raise fail("body", "title and description must be strings")
        template = Template.build(name, body.get("workflow"), node_specs(), title, description, "user")
        prompt = json.loads(json.dumps(template.workflow))  # as saved: what the canvas would run
        await self.validate(prompt, str(uuid.uuid4()), template, None, strict=True)
        self.store.save(name, template.workflow, title, description)
        self._templates.pop(name, None)
        reply = {"name": name, "source": "user", "hash": template.hash, "params": len(template.params)}
        return web.json_response(reply)

    # --- runs ---

    async def validate(self, prompt: dict, prompt_id: str, template: Template, partial, strict=False) -> tuple:
        """ComfyUI's own validation, as POST /prompt does it: ``(outputs to execute, node errors)``. Like
        POST /prompt, outputs that fail are left out when others pass, unless ``strict``. Errors on nodes fed by a
        parameter are also keyed by the parameter's name."""
        import execution

        guard_booleans(prompt, boolean_inputs)
        valid = await execution.validate_prompt(prompt_id, prompt, partial)
        if valid[0] and not (strict and valid[3]):
            return valid[2], valid[3]
        owners = {p.node: p.name for p in template.params}
        errors: dict = {}
        for node, info in (valid[3] or {}).items():
            for err in info.get("errors", []):
                name = (err.get("extra_info") or {}).get("input_name")
                source = prompt.get(node, {}).get("inputs", {}).get(name)
                key = owners.get(node) or (owners.get(source[0]) if is_link(source) else None)
                key = key or f"{title_of(prompt, node)}.{name}"
                errors.setdefault(key, []).append(f"{err.get('message')}: {err.get('details')}")
        if not valid[3] and not valid[0]:
            errors["workflow"] = [f"{valid[1].get('message')}: {valid[1].get('details')}"]
        message = valid[1].get("message") if valid[1] else "some outputs of the workflow failed validation"
        raise Rejected({"error": message, "errors": errors, "node_errors": valid[3]})

    def known(self, prompt_id: str) -> bool:
        """The prompt id is queued, running or in the history."""
        return self.status(prompt_id) is not None

    def put(self, body: dict, prompt_id: str, prompt: dict, outputs: list, record: dict) -> float:
        """``prompt_queue.put`` exactly as ComfyUI's POST /prompt does (number, extra_data, sensitive keys)."""
        import execution

        if "number" in body:
            number = float(body["number"])
        else:
            number = self.server.number
            if body.get("front"):
                number = -number
            self.server.number += 1
        extra_data = dict(body.get("extra_data") or {})
        if body.get("client_id"):
            extra_data["client_id"] = body["client_id"]
        sensitive = {key: extra_data.pop(key) for key in execution.SENSITIVE_EXTRA_DATA_KEYS if key in extra_data}
        extra_data["create_time"] = int(time.time() * 1000)
        extra_data["qg"] = record
        self.server.prompt_queue.put((number, prompt_id, prompt, extra_data, outputs, sensitive))
        return number

    def new_prompt_id(self, body: dict) -> str:
        prompt_id = str(body.get("prompt_id") or uuid.uuid4())
        if body.get("prompt_id") and self.known(prompt_id):
            raise fail("prompt_id", f"prompt_id {prompt_id!r} is already queued, running or in the history", 409)
        return prompt_id

    @staticmethod
    def check_hash(template: Template, body: dict) -> None:
        """A caller that sends the ``x-qg-hash`` it built against learns when the template was re-saved."""
        expected = body.get("hash")
        if expected is not None and expected != template.hash:
            message = f"the template changed (hash {template.hash}, the request expects {expected}); reread its schema"
            raise fail("hash", message, 409)

    async def run(self, template: Template, body: dict):
        from aiohttp import web

        self.check_hash(template, body)
        prompt, used = prepare(template, body.get("params"), node_specs(), self.seeds)
        prompt_id = self.new_prompt_id(body)
        outputs, node_errors = await self.validate(prompt, prompt_id, template, body.get("partial_execution_targets"))
        record = {"template": template.name, "params": used}
        number = self.put(body, prompt_id, prompt, outputs, record)
        return web.json_response({"prompt_id": prompt_id, "number": number, "params": used, "node_errors": node_errors})

    @handler
    async def run_template(self, request):
        body = await _body(request)
        return await self.run(self.template(check_name(request.match_info["name"])), body)

    @handler
    async def run_adhoc(self, request):
        body = await _body(request)
        workflow = body.get("workflow")
        return await self.run(Template.build("adhoc", workflow, node_specs()), body)

    @handler
    async def sweep(self, request):
        from aiohttp import web

        body = await _body(request)
        template = self.template(check_name(request.match_info["name"]))
        self.check_hash(template, body)
        combos = expand_sweep(body.get("params"), body.get("sweep"), body.get("mode", "product"))
        specs = node_specs()
        seeds = self.seeds.preview() if body.get("dry_run") is True else self.seeds  # a dry run uses up no seeds
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
        batch_id = str(body.get("batch_id") or uuid.uuid4())
        checked = []
        for i, (prompt, used) in enumerate(prepared):
            prompt_id = str(uuid.uuid4())
            try:
                outputs, _ = await self.validate(prompt, prompt_id, template, None)
            except Rejected as e:
                e.reply["error"] = f"item {i} ({json.dumps(used)[:200]}): {e.reply['error']}"
                raise
            checked.append((prompt_id, prompt, outputs, used))
        items = []
        for index, (prompt_id, prompt, outputs, used) in enumerate(checked):
            record = {"template": template.name, "params": used, "batch_id": batch_id, "index": index}
            self.put({k: body[k] for k in ("client_id", "extra_data") if k in body}, prompt_id, prompt, outputs, record)
            items.append({"prompt_id": prompt_id, "params": used})
        task = asyncio.get_running_loop().create_task(self.watch_batch(batch_id, items, body.get("client_id")))
        self._watchers.add(task)
        task.add_done_callback(self._watchers.discard)
        return web.json_response({"batch_id": batch_id, "items": items})

    async def watch_batch(self, batch_id: str, items: list, client_id):
        """``qg.batch`` events: one when queued, then one per finished item, until every item ended."""
        total = len(items)
        state = {"batch_id": batch_id, "total": total, "done": 0, "succeeded": 0, "failed": 0}
        self.server.send_sync("qg.batch", {**state, "prompt_id": None, "status": "queued"}, client_id)
        pending = {item["prompt_id"]: i for i, item in enumerate(items)}
        q = self.server.prompt_queue
        last_full_check = time.monotonic()
        while pending:
            await asyncio.sleep(BATCH_POLL_SECONDS)
            finished = []
            with q.mutex:
                for prompt_id in pending:
                    entry = q.history.get(prompt_id)
                    if entry is not None:
                        finished.append((prompt_id, (entry.get("status") or {}).get("status_str")))
                if time.monotonic() - last_full_check > 5:  # items deleted from the queue never finish
                    last_full_check = time.monotonic()
                    alive = {item[1] for item in q.queue} | {item[1] for item in q.currently_running.values()}
                    finished += [(p, "cancelled") for p in pending if p not in alive and p not in q.history]
            for prompt_id, status in finished:
                index = pending.pop(prompt_id)
                state["done"] += 1
                state["succeeded" if status == "success" else "failed"] += 1
                event = {**state, "prompt_id": prompt_id, "index": index, "status": status}
                self.server.send_sync("qg.batch", event, client_id)

    # --- status ---

    def status(self, prompt_id: str) -> dict | None:
        """Under the queue's lock, so a prompt is always seen in exactly one place: queued, running or history."""
        q = self.server.prompt_queue
        with q.mutex:
            entry = q.history.get(prompt_id)
            if entry is not None:
                return {"prompt_id": prompt_id, **summarize_history(entry)}
            for item in q.currently_running.values():
                if item[1] == prompt_id:
                    return {"prompt_id": prompt_id, "status": "running", "outputs": {}, **run_record(item[3])}
            for item in q.queue:
                if item[1] == prompt_id:
                    return {"prompt_id": prompt_id, "status": "pending", "outputs": {}, **run_record(item[3])}
        return None

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


def setup() -> bool:
    """Register the routes and the POST /prompt boolean guard on ComfyUI's server (False outside ComfyUI)."""
    try:
        import folder_paths
        from server import PromptServer
    except ImportError:
        return False
    server = getattr(PromptServer, "instance", None)
    if server is None:
        return False
    api = Api(server, Path(folder_paths.get_user_directory()) / "quality_gate" / "templates")
    api.register(server.routes)
    server.add_on_prompt_handler(guard_prompt)
    return True
