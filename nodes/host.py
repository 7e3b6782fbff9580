"""The one place where Quality Gate touches ComfyUI beyond the public V1 node contract.

Every other module of the pack reaches ComfyUI's ``server``, ``execution``, ``comfy_execution``, ``nodes``,
``folder_paths``, ``comfy.utils``, ``comfy.cli_args``, ``comfy.model_management`` and ``comfy.model_patcher``
through the functions here. Each touchpoint is feature-checked: where a ComfyUI (newer, older, or a tool that stubs
some of its modules) lacks a piece, the pack still loads, logs one line naming the missing piece and what it
degrades (``missing``), and only that feature stops working. Pieces a node cannot work without (GraphBuilder,
ModelPatcher) raise a ``QGError`` that names them instead.

Touchpoints and their fallbacks (the README lists the same):
- ``PromptServer.instance``: routes, ``add_on_prompt_handler``, ``send_sync``, ``client_id`` (the client of the
  running prompt), the ``POST /prompt`` handler, ``prompt_queue`` and ``user_manager``. Without a server (pytest,
  linters) the routes and events are off.
- Run-by-name calls the ``POST /prompt`` handler registered on ``PromptServer.instance.routes`` in-process with
  the filled prompt, so numbering, prompt ids, history and the Jobs API stay ComfyUI's. Without it: runs answer
  503.
- ``execution.validate_prompt`` (saving templates, pre-validating sweep items). Without it: saved templates are
  checked for structure only, and sweep items are validated one by one as they are queued.
- ``prompt_queue`` internals (``mutex``, ``queue``, ``currently_running``, ``history``) for ``/qg/runs`` and
  ``qg.batch``. Without them: only ``get_history`` is asked (pending and running both read ``pending``).
- ``comfy_execution.utils.get_executing_context`` (the running prompt's id for ``qg.loop``). Without it: the
  server's ``last_prompt_id``.
- ``comfy_execution.progress`` registry (pruning a loop's finished nodes). Without it: nothing is pruned (slower
  long loops with a websocket client, nothing wrong).
- ``comfy_execution.graph_utils`` (``GraphBuilder``, ``ExecutionBlocker``): required by Switch/Select/Gate/loop.
- ``nodes.NODE_CLASS_MAPPINGS``: node specs for templates and output-node checks. Without it: no specs.
- ``folder_paths``: model folders, file lists, the user directory. Without it: no files listed.
- ``folder_paths.get_output_directory`` / ``get_save_image_path`` (Save Image with Scores names and places its
  files exactly as ``SaveImage``). Without them: that node fails with a message naming the missing piece.
- ``comfy.cli_args.args.disable_metadata`` (``--disable-metadata``). Without it: PNG text chunks are written, as
  ComfyUI did before the flag existed (logged).
- ``comfy.model_management`` / ``comfy.model_patcher`` / ``comfy.utils``: devices, dtype choice, loading,
  interrupts, progress bars. Interrupt checks and progress become no-ops without them; scoring needs them.
- ``PromptQueue.set_flag`` / ``get_flags`` (wrapped on the server's queue): ``POST /free`` marks the scorer
  cache expired as it sets its flag (so the next run loads afresh), and the cache is emptied on ComfyUI's prompt
  worker thread, when the worker takes the flags or at the next scorer lookup, whichever comes first. Without
  them: ``/free`` does not release the scorer cache (logged).
- ``PromptQueue.task_done`` (wrapped on the server's queue): the pack's ``on_prompt_done`` callbacks amend a
  finished prompt's history entry before ComfyUI stores it (the scores of score nodes that were cache hits,
  the attempt and seed of a loop attempt that failed). Without it: those are missing from ``/history``
  (logged).
- ``PromptServer.send_sync`` (wrapped on the server instance): the pack's ``on_sent`` callbacks may amend a
  message ComfyUI sends before it goes out (the attempt of a failed loop attempt in ``execution_error``; the
  same dict is the one in the prompt's history). Without it: the websocket message is ComfyUI's own.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
from typing import Any, Callable

from .core.errors import QGError

LOG = logging.getLogger("quality_gate")
_warned: set = set()
_free_callbacks: list = []
_done_callbacks: list = []
_send_callbacks: dict = {}


def missing(piece: str, effect: str) -> None:
    """One log line per missing piece: what ComfyUI lacks and which feature of the pack degrades."""
    if piece not in _warned:
        _warned.add(piece)
        LOG.warning("Quality Gate: this ComfyUI has no %s; %s", piece, effect)


def _module(name: str, effect: str):
    """``importlib.import_module(name)``, or None with one warning. Anything the import raises counts as
    missing: tools that stub ComfyUI modules raise AttributeError, TypeError and worse from them."""
    try:
        return importlib.import_module(name)
    except Exception as e:  # noqa: BLE001 - a stubbed or broken module is reported as missing, never fatal
        if not isinstance(e, ImportError):
            effect = f"{effect} (importing it raised {type(e).__name__}: {e})"
        missing(name, effect)
        return None


def _attr(module_name: str, attr: str, effect: str):
    module = _module(module_name, effect)
    value = getattr(module, attr, None) if module is not None else None
    if module is not None and value is None:
        missing(f"{module_name}.{attr}", effect)
    return value


def in_comfyui() -> bool:
    """Running inside a ComfyUI process (its ``folder_paths`` is importable). Quiet: pytest imports the pack
    without ComfyUI, and that is not worth a warning."""
    try:
        importlib.import_module("folder_paths")
    except Exception:  # noqa: BLE001 - anything but a working module means "not inside ComfyUI"
        return False
    return True


# --- the server -------------------------------------------------------------------------------------------


def server():
    """``PromptServer.instance``, or None outside a running ComfyUI."""
    if not in_comfyui():
        return None
    cls = _attr("server", "PromptServer", "the /qg routes and the pack's websocket events are off")
    return getattr(cls, "instance", None) if cls is not None else None


def add_routes(register: Callable) -> bool:
    """``register(routes)`` on the server's route table (before it starts). False without a server."""
    srv = server()
    if srv is None or getattr(srv, "routes", None) is None:
        return False
    register(srv.routes)
    return True


def add_on_prompt_handler(handler: Callable) -> bool:
    srv = server()
    add = getattr(srv, "add_on_prompt_handler", None)
    if add is None:
        if srv is not None:
            missing("PromptServer.add_on_prompt_handler", "POST /prompt is not guarded (booleans, client_id)")
        return False
    add(handler)
    return True


def send_event(event: str, data: dict, sid) -> None:
    """A websocket event to one client (``sid``) or to all (None). A sid that is not a string would kill
    ComfyUI 0.3.75's publisher (and the server with it), so it is never passed on."""
    srv = server()
    if srv is None or not (sid is None or isinstance(sid, str)):
        return
    send = getattr(srv, "send_sync", None)
    if send is None:
        missing("PromptServer.send_sync", f"the {event} websocket events are off")
        return
    send(event, data, sid)


def client_id():
    """The client that queued the running prompt (events go to it), None when nobody listens."""
    value = getattr(server(), "client_id", None)
    return value if isinstance(value, str) else None


def executing_prompt_id():
    """The id of the prompt running now (from the executing context, else the server's last prompt id)."""
    get_context = _attr(
        "comfy_execution.utils", "get_executing_context", "qg.loop events take the server's last prompt id"
    )
    context = get_context() if get_context is not None else None
    if context is not None and getattr(context, "prompt_id", None) is not None:
        return context.prompt_id
    return getattr(server(), "last_prompt_id", None)


def request_user_dir(request, folder: str):
    """The requesting user's own copy of ``folder`` in ComfyUI's user directory (``<user dir>/<user>/folder``;
    the user is ``default`` unless ``--multi-user``), or None for an unknown or refused user."""
    manager = getattr(server(), "user_manager", None)
    get_path = getattr(manager, "get_request_user_filepath", None)
    if get_path is None:
        missing("UserManager.get_request_user_filepath", "templates are stored for one shared user")
        user_dir = get_user_directory()
        return None if user_dir is None else os.path.join(user_dir, "default", folder)
    try:
        return get_path(request, folder, create_dir=False)
    except KeyError:  # ComfyUI's way of saying "unknown user"
        return None


# --- queueing ---------------------------------------------------------------------------------------------


class _Request:
    """The caller's request with another JSON body: what ComfyUI's ``POST /prompt`` handler reads. Everything
    else (headers, the user, the app) is the caller's own request."""

    def __init__(self, request, body: dict):
        self._request = request
        self._text = json.dumps(body)

    def __getattr__(self, name):
        return getattr(self._request, name)

    async def json(self, *, loads=json.loads):
        return loads(self._text)

    async def text(self):
        return self._text

    async def read(self):
        return self._text.encode()

    @property
    def can_read_body(self):
        return True

    @property
    def body_exists(self):
        return True


def _prompt_handler():
    for route in getattr(server(), "routes", None) or ():
        if getattr(route, "method", None) == "POST" and getattr(route, "path", None) == "/prompt":
            return route.handler
    return None


async def queue_prompt(request, body: dict) -> tuple[int, dict]:
    """Queue ``body`` (the JSON of a ``POST /prompt``) through ComfyUI's own handler, in-process: ``(HTTP
    status, reply)``. Numbering, prompt ids, the sensitive-data split, history and the Jobs API stay
    ComfyUI's; the pack's on-prompt handler runs on it like on every other prompt."""
    handler = _prompt_handler()
    if handler is None:
        missing("POST /prompt handler on PromptServer.routes", "running templates by name is off (503)")
        return 503, {"error": "this ComfyUI does not expose its POST /prompt handler; runs by name are off"}
    response = await handler(_Request(request, body))
    text = getattr(response, "text", None)
    try:
        reply = json.loads(text) if text else {}
    except ValueError:
        reply = {"error": text}
    return int(getattr(response, "status", 500)), reply if isinstance(reply, dict) else {"reply": reply}


async def validate_prompt(prompt_id: str, prompt: dict, partial=None):
    """ComfyUI's own validation (``execution.validate_prompt``): ``(ok, error, outputs, node_errors)``, or
    None where this ComfyUI lacks it (the caller then leaves validation to queueing)."""
    validate = _attr("execution", "validate_prompt", "templates are not validated before they are saved")
    if validate is None:
        return None
    return await validate(prompt_id, prompt, partial)


def find_prompt(prompt_id: str):
    """Where a prompt is: ``("history", entry)``, ``("running", extra_data)``, ``("pending", extra_data)`` or
    None. Read under the queue's lock, so a prompt is seen in exactly one place."""
    queue = getattr(server(), "prompt_queue", None)
    if queue is None:
        return None
    parts = [getattr(queue, name, None) for name in ("mutex", "history", "currently_running", "queue")]
    if any(p is None for p in parts):
        missing("PromptQueue internals (mutex, history, currently_running, queue)", "/qg/runs sees history only")
        entry = (queue.get_history(prompt_id=prompt_id) or {}).get(prompt_id)
        return ("history", entry) if entry is not None else None
    mutex, history, running, pending = parts
    with mutex:
        entry = history.get(prompt_id)
        if entry is not None:
            return "history", entry
        for where, items in (("running", running.values()), ("pending", pending)):
            for item in items:
                if _item_field(item, 1) == prompt_id:
                    extra = _item_field(item, 3)
                    return where, extra if isinstance(extra, dict) else {}
    return None


def _item_field(item, index: int):
    return item[index] if isinstance(item, (tuple, list)) and len(item) > index else None


# --- execution --------------------------------------------------------------------------------------------


def graph_builder():
    cls = _attr("comfy_execution.graph_utils", "GraphBuilder", "Select, the loop and expansions cannot run")
    if cls is None:
        raise QGError("this ComfyUI has no comfy_execution.graph_utils.GraphBuilder (node expansion)")
    return cls()


def blocker(message=None):
    cls = _attr("comfy_execution.graph_utils", "ExecutionBlocker", "Gate and blocking loops cannot run")
    if cls is None:
        raise QGError("this ComfyUI has no comfy_execution.graph_utils.ExecutionBlocker")
    return cls(message)


def node_class(class_type: str):
    """ComfyUI's registered class for ``class_type`` (its top-level ``nodes`` module), or None."""
    mappings = _attr("nodes", "NODE_CLASS_MAPPINGS", "node specs are unknown to templates and loops")
    return mappings.get(class_type) if isinstance(mappings, dict) else None


def progress(node_id: str, value: int, total: int) -> None:
    """ComfyUI progress on a node (its progress hook also raises when the user interrupted)."""
    bar = _attr("comfy.utils", "ProgressBar", "no progress is shown for loops")
    if bar is not None:
        bar(total, node_id=node_id).update_absolute(value)


def forget_finished(prefix: str) -> None:
    """Drop finished nodes whose id starts with ``prefix`` from ComfyUI's progress registry. ComfyUI 0.3.75
    sends the state of every node in it at each node start, finish and progress update, so a loop's cost grew
    with the square of its attempts. Only a speed-up: a registry of another shape is left alone."""
    get_state = _attr("comfy_execution.progress", "get_progress_state", "long loops are slower")
    finished_state = getattr(_module("comfy_execution.progress", "long loops are slower"), "NodeState", None)
    nodes = getattr(get_state(), "nodes", None) if get_state is not None else None
    finished_state = getattr(finished_state, "Finished", None)
    if not isinstance(nodes, dict) or finished_state is None:
        return
    for node_id in [
        n
        for n, s in nodes.items()
        if isinstance(n, str) and n.startswith(prefix) and isinstance(s, dict) and s.get("state") is finished_state
    ]:
        del nodes[node_id]


# --- models, folders, devices ------------------------------------------------------------------------------


def _mm():
    return _module("comfy.model_management", "scoring cannot load models; interrupts are not checked")


def interrupt_check() -> None:
    """Raise ComfyUI's interrupt exception when the user cancelled (never catch it)."""
    check = getattr(_mm(), "throw_exception_if_processing_interrupted", None)
    if check is not None:
        check()


def _require(value, piece: str):
    if value is None:
        raise QGError(f"this ComfyUI has no {piece}, which scoring needs")
    return value


def torch_device():
    return _require(getattr(_mm(), "get_torch_device", None), "comfy.model_management.get_torch_device")()


def offload_device():
    return _require(
        getattr(_mm(), "text_encoder_offload_device", None), "comfy.model_management.text_encoder_offload_device"
    )()


def prefers_fp16(device) -> bool:
    should = getattr(_mm(), "should_use_fp16", None)
    return bool(should(device, prioritize_performance=False)) if should is not None else False


def load_models(patchers: list) -> None:
    """Load models with ComfyUI's memory management, evicting others as needed (full load: plain torch)."""
    _require(getattr(_mm(), "load_models_gpu", None), "comfy.model_management.load_models_gpu")(
        patchers, force_full_load=True
    )


def model_patcher(model, load_device, offload_device):
    cls = _attr("comfy.model_patcher", "ModelPatcher", "scoring cannot load models")
    return _require(cls, "comfy.model_patcher.ModelPatcher")(
        model, load_device=load_device, offload_device=offload_device
    )


def _folder_paths():
    return _module("folder_paths", "model files are not listed")


def models_dir():
    return getattr(_folder_paths(), "models_dir", None)


def register_model_folder(name: str, extensions: set) -> None:
    """Add ``models/<name>`` to a model folder, keeping paths ``extra_model_paths.yaml`` already gave it, and
    list only ``extensions``."""
    fp = _folder_paths()
    table = getattr(fp, "folder_names_and_paths", None)
    if not isinstance(table, dict) or models_dir() is None:
        missing("folder_paths.folder_names_and_paths", f"models/{name} is not registered")
        return
    default = os.path.join(fp.models_dir, name)
    paths = list(table.get(name, ([], set()))[0])
    if default not in paths:
        paths.append(default)
    table[name] = (paths, set(extensions))


def filenames(folder: str) -> list:
    """The files ComfyUI lists in a model folder; none for a folder that is not registered (yet)."""
    fp = _folder_paths()
    get, table = getattr(fp, "get_filename_list", None), getattr(fp, "folder_names_and_paths", None)
    if get is None or not isinstance(table, dict) or folder not in table:
        return []
    return list(get(folder))


def full_path(folder: str, name: str):
    get = getattr(_folder_paths(), "get_full_path", None)
    return get(folder, name) if get is not None else None


def folder_list(folder: str) -> list:
    get = getattr(_folder_paths(), "get_folder_paths", None)
    return list(get(folder)) if get is not None else []


def get_user_directory():
    get = getattr(_folder_paths(), "get_user_directory", None)
    return get() if get is not None else None


def save_image_path(filename_prefix: str, width: int, height: int) -> tuple:
    """Where the next images of ``filename_prefix`` go in ComfyUI's output directory, as ``SaveImage`` asks:
    ``(folder, filename, counter, subfolder, filename_prefix)`` (``%year%``, ``%width%`` and the like expanded,
    the counter after the highest file already there). A prefix ComfyUI refuses (outside the output folder,
    unusable characters) is a ``QGError`` naming it."""
    fp = _folder_paths()
    output_dir = getattr(fp, "get_output_directory", None)
    save_path = getattr(fp, "get_save_image_path", None)
    if output_dir is None or save_path is None:
        raise QGError("this ComfyUI has no folder_paths.get_output_directory/get_save_image_path to save images")
    try:
        return save_path(filename_prefix, output_dir(), width, height)
    except Exception as e:  # noqa: BLE001 - ComfyUI raises a plain Exception for a prefix outside the output folder
        reason = str(e).replace("*", "").strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise QGError(f"filename_prefix {str(filename_prefix)[:80]!r} cannot be used: {reason}") from e


def metadata_disabled() -> bool:
    """ComfyUI was started with ``--disable-metadata``: saved files carry no prompt, workflow or other text."""
    args = _attr("comfy.cli_args", "args", "saved PNGs always carry their metadata (no --disable-metadata)")
    if args is None:
        return False
    value = getattr(args, "disable_metadata", None)
    if value is None:
        missing("comfy.cli_args.args.disable_metadata", "saved PNGs always carry their metadata")
    return bool(value)


# --- POST /free -------------------------------------------------------------------------------------------


FREE_FLAGS = ("unload_models", "free_memory")


def on_free(requested: Callable[[], Any], taken: Callable[[], Any]) -> bool:
    """Two hooks on ``POST /free`` (``{"unload_models", "free_memory"}``), through the server's ``PromptQueue``
    (ComfyUI has none of its own, so ``set_flag`` and ``get_flags`` are wrapped once):

    - ``requested()`` in the request's thread as ``/free`` sets a flag, before the worker is woken: it may only
      take note (so the next run already sees it); dropping a model there would race the worker, which walks
      ComfyUI's list of loaded models (that killed the worker thread once);
    - ``taken()`` on ComfyUI's prompt worker thread when it takes those flags, before it unloads models: the
      place to release models while no prompt runs."""
    queue = getattr(server(), "prompt_queue", None)
    if queue is None:
        return False
    set_flag, get_flags = getattr(queue, "set_flag", None), getattr(queue, "get_flags", None)
    if not callable(set_flag) or not callable(get_flags):
        missing("PromptQueue.set_flag and get_flags", "POST /free does not release the pack's caches")
        return False
    first = not _free_callbacks
    _free_callbacks.append((requested, taken))
    if first:

        def flag_set(name, data, *args, **kwargs):
            if name in FREE_FLAGS and data:
                for note, _ in _free_callbacks:
                    _guarded(note)
            return set_flag(name, data, *args, **kwargs)

        def flags_taken(*args, **kwargs):
            flags = get_flags(*args, **kwargs)
            reset = args[0] if args else kwargs.get("reset", True)
            if reset and isinstance(flags, dict) and any(flags.get(f) for f in FREE_FLAGS):
                for _, release in _free_callbacks:
                    _guarded(release)
            return flags

        queue.set_flag, queue.get_flags = flag_set, flags_taken
    return True


def _guarded(callback) -> None:
    try:
        callback()
    except Exception:  # noqa: BLE001 - neither the request nor the worker thread may fail on the pack's clean-up
        LOG.exception("Quality Gate: releasing the pack's caches on POST /free failed")


# --- finished prompts -------------------------------------------------------------------------------------


def on_prompt_done(callback: Callable[[str, dict, dict, dict, list], Any]) -> bool:
    """Call ``callback(prompt_id, prompt, outputs, meta, messages)`` when a prompt has run, before ComfyUI
    writes its history entry: ``outputs`` and ``meta`` are the entry's (node id -> ui, node id -> ids),
    ``messages`` its status messages (``[(event, data), ...]``); the callback may amend all three in place.
    ComfyUI has no hook for this, so the server's ``PromptQueue.task_done`` is wrapped (once)."""
    queue = getattr(server(), "prompt_queue", None)
    if queue is None:
        return False
    original = getattr(queue, "task_done", None)
    if not callable(original) or not isinstance(getattr(queue, "currently_running", None), dict):
        missing("PromptQueue.task_done and currently_running", "cached scores and loop attempts stay out of /history")
        return False
    _done_callbacks.append(callback)
    if len(_done_callbacks) == 1:

        def task_done(item_id, history_result, *args, **kwargs):
            status = args[0] if args else kwargs.get("status")
            _prompt_done(queue, item_id, history_result, status)
            return original(item_id, history_result, *args, **kwargs)

        queue.task_done = task_done
    return True


def _prompt_done(queue, item_id, history_result, status) -> None:
    """Run the ``on_prompt_done`` callbacks on a finished prompt. Whatever they raise is logged and never
    stops ComfyUI from writing the history."""
    with getattr(queue, "mutex", None) or contextlib.nullcontext():
        item = queue.currently_running.get(item_id)
    prompt_id, prompt = _item_field(item, 1), _item_field(item, 2)
    if not isinstance(history_result, dict) or not isinstance(prompt, dict):
        return
    outputs = history_result.setdefault("outputs", {})
    meta = history_result.setdefault("meta", {})
    messages = getattr(status, "messages", None)
    for callback in _done_callbacks:
        try:
            callback(prompt_id, prompt, outputs, meta, messages if isinstance(messages, list) else [])
        except Exception:  # noqa: BLE001 - the pack's additions must never cost the user the prompt's history
            LOG.exception("Quality Gate: amending the history of prompt %s failed", prompt_id)


def on_sent(event: str, callback: Callable[[dict], Any]) -> bool:
    """Call ``callback(data)`` on every ``event`` message ComfyUI's server sends to the websocket, before it
    goes out; the callback may amend ``data`` in place. ComfyUI has no hook for this, so the server
    instance's ``send_sync`` is wrapped (once)."""
    srv = server()
    original = getattr(srv, "send_sync", None)
    if srv is None:
        return False
    if not callable(original):
        missing("PromptServer.send_sync", "websocket messages are ComfyUI's own")
        return False
    if not _send_callbacks:

        def send_sync(event, data, sid=None):
            for callback in _send_callbacks.get(event, ()):
                try:
                    callback(data)
                except Exception:  # noqa: BLE001 - the pack's additions must never cost the user a message
                    LOG.exception("Quality Gate: amending a %s message failed", event)
            return original(event, data, sid)

        srv.send_sync = send_sync
    _send_callbacks.setdefault(event, []).append(callback)
    return True
