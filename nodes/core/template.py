"""Plain logic of template parameters: finding the parameter nodes of an API workflow, their JSON Schema and
validation (pydantic v2 models), overrides by ``"<node title or id>.<input>"``, seed policies, sweeps, the
template folders, run summaries and the boolean guard for API callers.

Nothing here imports ComfyUI. Node input specs come in through a ``specs(class_type)`` callable that returns
a node's ``INPUT_TYPES()`` dict (or None for an unknown class), as ``/object_info`` describes it.
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
import json
import math
import os
import random
import re
import tempfile
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError, create_model

from .errors import QGError

PARAM_KINDS = {
    "QG_ParamText": "text",
    "QG_ParamInt": "int",
    "QG_ParamFloat": "float",
    "QG_ParamBool": "bool",
    "QG_ParamChoice": "choice",
    "QG_ParamSeed": "seed",
}
SEED_POLICIES = ("fixed", "random", "increment")
SEED_MAX = 0xFFFFFFFFFFFFFFFF
INT_LIMIT = 0xFFFFFFFFFFFFFFFF
FLOAT_LIMIT = 1e15
TEMPLATE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
PARAM_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
MAX_SWEEP = 1000
SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
JSON_TYPES = {"text": "string", "int": "integer", "seed": "integer", "float": "number", "bool": "boolean"}
WIDGET_TYPES = ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO")

Specs = Callable[[str], "dict | None"]
Errors = dict[str, list[str]]


class TemplateError(QGError):
    """Bad template, parameters or sweep. ``errors`` maps a parameter name (or ``workflow``, ``sweep``...) to
    every message about it, so a caller sees all problems at once."""

    def __init__(self, errors: Errors, status: int = 400):
        self.errors = {key: list(messages) for key, messages in errors.items()}
        self.status = status
        super().__init__("; ".join(f"{key}: {' / '.join(msgs)}" for key, msgs in self.errors.items()))


def fail(key: str, message: str, status: int = 400) -> TemplateError:
    return TemplateError({key: [message]}, status)


def _add(errors: Errors, key: str, message: str) -> None:
    bucket = errors.setdefault(key, [])
    if message not in bucket:
        bucket.append(message)


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=3, cutoff=0.6)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def is_link(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], str) and isinstance(value[1], int)


def workflow_hash(workflow: dict) -> str:
    """A short content hash of an API workflow (key order does not matter), so callers notice a re-saved graph."""
    text = json.dumps(workflow, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def title_of(workflow: dict, node: str) -> str:
    entry = workflow.get(node) or {}
    meta = entry.get("_meta") if isinstance(entry.get("_meta"), dict) else {}
    return str(meta.get("title") or entry.get("class_type") or node)


# --- parameters ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    name: str
    kind: str  # text, int, float, bool, choice, seed
    node: str
    default: Any
    description: str = ""
    required: bool = False
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    choices: tuple | None = None
    policy: str = "fixed"
    targets: tuple = ()  # (node id, input name) of every input the parameter feeds

    def public(self) -> dict:
        info = {
            "name": self.name,
            "type": self.kind,
            "node": self.node,
            "default": self.default,
            "description": self.description,
            "required": self.required,
            "targets": [f"{node}.{name}" for node, name in self.targets],
        }
        for key in ("minimum", "maximum", "step", "choices"):
            if getattr(self, key) is not None:
                info[key] = list(self.choices) if key == "choices" else getattr(self, key)
        if self.kind == "seed":
            info["policy"] = self.policy
        return info


def parse_choices(text: Any) -> tuple:
    """One choice per line; blank lines and surrounding spaces dropped, duplicates kept once."""
    if not isinstance(text, str):
        raise QGError(f"choices must be text with one choice per line, got {type(text).__name__}")
    return tuple(dict.fromkeys(line.strip() for line in text.splitlines() if line.strip()))


def check_structure(workflow: Any, specs: Specs | None = None) -> None:
    """An API-format workflow: ``{node id: {class_type, inputs}}`` whose links point at existing nodes (and,
    with ``specs``, only at known classes and existing outputs). Raises TemplateError listing every problem."""
    if not isinstance(workflow, dict) or not workflow:
        raise fail("workflow", "expected an API-format workflow: a non-empty JSON object {node id: node}")
    if "nodes" in workflow and "links" in workflow:
        raise fail("workflow", "this is the UI format (File > Save); export it with File > Export (API)")
    errors: Errors = {}
    for node, entry in workflow.items():
        where = f"node {node}"
        if not isinstance(entry, dict) or not isinstance(entry.get("class_type"), str):
            _add(errors, "workflow", f"{where}: expected an object with a class_type")
            continue
        if not isinstance(entry.get("inputs", {}), dict):
            _add(errors, "workflow", f"{where}: inputs must be an object")
            continue
        info = specs(entry["class_type"]) if specs else {}
        if info is None:
            _add(errors, "workflow", f"{where}: unknown node type {entry['class_type']!r} (is its pack installed?)")
        for name, value in entry.get("inputs", {}).items():
            if not is_link(value):
                continue
            source = workflow.get(value[0])
            if not isinstance(source, dict):
                missing = f"input {name} links to missing node {value[0]}"
                _add(errors, "workflow", f"{where} ({entry['class_type']}): {missing}")
    if errors:
        raise TemplateError(errors)


def _constant(entry: dict, node: str, name: str, errors: Errors, default: Any = None) -> Any:
    value = entry.get("inputs", {}).get(name, default)
    if is_link(value):
        _add(errors, "workflow", f"node {node} ({entry['class_type']}): {name} must be a constant, not a link")
        return default
    return value


def find_params(workflow: dict) -> list[Param]:
    """The parameter nodes of a workflow, in node order, with the inputs each one feeds. Duplicate or
    malformed names and linked settings raise TemplateError listing every problem."""
    check_structure(workflow)
    feeds: dict[str, list] = {}
    for node, entry in workflow.items():
        for name, value in entry.get("inputs", {}).items():
            if is_link(value):
                feeds.setdefault(value[0], []).append((node, name))
    errors: Errors = {}
    params: list[Param] = []
    owners: dict[str, list[str]] = {}
    for node, entry in workflow.items():
        kind = PARAM_KINDS.get(entry["class_type"])
        if kind is None:
            continue
        name = _constant(entry, node, "name", errors, "")
        if not isinstance(name, str) or not PARAM_NAME.match(name):
            _add(
                errors,
                "workflow",
                f"node {node} ({entry['class_type']}): name {name!r} is not an identifier "
                "(a letter, then letters, digits or _, at most 64)",
            )
            continue
        owners.setdefault(name, []).append(node)
        get = lambda key, default=None, e=entry, n=node: _constant(e, n, key, errors, default)  # noqa: E731
        param = Param(
            name=name,
            kind=kind,
            node=node,
            default=get("value"),
            description=str(get("description", "") or ""),
            required=bool(get("required", False) is True),
            targets=tuple(sorted(feeds.get(node, []))),
        )
        if kind in ("int", "float"):
            param = replace(param, minimum=get("min"), maximum=get("max"), step=get("step"))
        elif kind == "seed":
            policy = get("policy", "fixed")
            if policy not in SEED_POLICIES:
                _add(errors, name, f"policy {policy!r} is not one of {', '.join(SEED_POLICIES)}")
            param = replace(param, minimum=0, maximum=SEED_MAX, policy=policy)
        elif kind == "choice":
            try:
                param = replace(param, choices=parse_choices(get("choices", "")))
            except QGError as e:
                _add(errors, name, str(e))
        params.append(param)
    for name, nodes in owners.items():
        if len(nodes) > 1:
            _add(errors, name, f"parameter name used by several nodes ({', '.join(nodes)}); names must be unique")
    if errors:
        raise TemplateError(errors)
    return params


def input_spec(specs: Specs, class_type: str, name: str) -> tuple | None:
    """``(type, options)`` of a node's declared input (required or optional), else None."""
    info = specs(class_type)
    if not info:
        return None
    for section in ("required", "optional"):
        spec = (info.get(section) or {}).get(name)
        if spec is not None:
            spec = tuple(spec)
            return (spec[0], spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {})
    return None


def combo_options(kind: Any, options: dict) -> tuple | None:
    if isinstance(kind, (list, tuple)):
        return tuple(kind)
    if kind == "COMBO" and isinstance(options.get("options"), (list, tuple)):
        return tuple(options["options"])
    return None


def narrow(param: Param, workflow: dict, specs: Specs) -> Param:
    """Bounds and choices narrowed by the spec of every input the parameter feeds."""
    for node, name in param.targets:
        spec = input_spec(specs, workflow[node]["class_type"], name)
        if spec is None:
            continue
        kind, options = spec
        combo = combo_options(kind, options)
        if combo is not None and param.kind in ("choice", "text"):
            current = param.choices if param.choices is not None else combo
            param = replace(param, choices=tuple(c for c in current if c in combo))
        if kind in ("INT", "FLOAT") and param.kind in ("int", "float", "seed"):
            low, high = options.get("min"), options.get("max")
            if isinstance(low, (int, float)) and (param.minimum is None or low > param.minimum):
                param = replace(param, minimum=low)
            if isinstance(high, (int, float)) and (param.maximum is None or high < param.maximum):
                param = replace(param, maximum=high)
    return param


def widget_type(kind: Any, options: dict, minimum=None, maximum=None, choices=None):
    """The pydantic type of a widget value: strict JSON types, bounds, choices (one function for parameters
    and for overrides)."""
    combo = choices if choices is not None else combo_options(kind, options)
    if combo is not None:
        return Literal[tuple(combo)] if combo else Literal["(no choice is valid)"]
    low = options.get("min") if minimum is None else minimum
    high = options.get("max") if maximum is None else maximum
    bounds = {}
    if isinstance(low, (int, float)) and not isinstance(low, bool):
        bounds["ge"] = low
    if isinstance(high, (int, float)) and not isinstance(high, bool):
        bounds["le"] = high
    if kind == "INT":
        return Annotated[int, Field(**bounds)]
    if kind == "FLOAT":
        return Annotated[float, Field(allow_inf_nan=False, **bounds)]
    if kind == "STRING":
        return str
    if kind == "BOOLEAN":
        return bool
    return None


PARAM_WIDGET = {"text": "STRING", "int": "INT", "seed": "INT", "float": "FLOAT", "bool": "BOOLEAN", "choice": "COMBO"}
STRICT = ConfigDict(strict=True)


def _field(param: Param):
    kind = widget_type(PARAM_WIDGET[param.kind], {}, param.minimum, param.maximum, param.choices)
    extra = {"x-qg-policy": param.policy} if param.kind == "seed" else None
    default = ... if param.required else param.default
    return (
        kind,
        Field(
            default, alias=param.name, title=param.name, description=param.description or None, json_schema_extra=extra
        ),
    )


@dataclass
class Template:
    """A loaded template: its workflow and parameters (bounds narrowed), a pydantic model of them, and a hash."""

    name: str
    workflow: dict
    title: str = ""
    description: str = ""
    source: str = "adhoc"
    params: list[Param] = field(default_factory=list)
    hash: str = ""
    model: Any = None

    @classmethod
    def build(cls, name: str, workflow: dict, specs: Specs, title: str = "", description: str = "", source="adhoc"):
        check_structure(workflow, specs)
        params = [narrow(p, workflow, specs) for p in find_params(workflow)]
        errors: Errors = {}
        fields = {}
        for i, p in enumerate(params):
            if p.kind in ("int", "float") and None not in (p.minimum, p.maximum) and p.minimum > p.maximum:
                _add(errors, p.name, f"min {p.minimum} is greater than max {p.maximum} (after the inputs it feeds)")
                continue
            fields[f"p{i}"] = _field(p)
            if not p.required:
                try:
                    TypeAdapter(fields[f"p{i}"][0], config=STRICT).validate_python(p.default)
                except ValidationError as e:
                    _add(errors, p.name, f"the default is not valid: {_pydantic_message(e.errors()[0])}")
        if errors:
            raise TemplateError(errors)
        config = ConfigDict(strict=True, extra="forbid", title=title or name, populate_by_name=False)
        model = create_model("Params", __config__=config, **fields)
        return cls(name, workflow, title or name, description, source, params, workflow_hash(workflow), model)

    def schema(self) -> dict:
        schema = self.model.model_json_schema(by_alias=True)
        schema = {"$schema": SCHEMA_DIALECT, **schema, "x-qg-hash": self.hash}
        if self.description:
            schema["description"] = self.description
        return schema

    def info(self) -> dict:
        return {
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "source": self.source,
            "hash": self.hash,
            "workflow": self.workflow,
            "params": [p.public() for p in self.params],
            "warnings": self.warnings(),
        }

    def warnings(self) -> list[str]:
        """Template lint that does not stop a run: parameters that feed nothing."""
        return [f"parameter {p.name!r} (node {p.node}) feeds no input" for p in self.params if not p.targets]


def _pydantic_message(error: dict) -> str:
    if error["type"] == "missing":
        return "required: this parameter has no default for API runs; give a value"
    value = json.dumps(error.get("input"), default=str)[:80]
    return f"{error['msg']}; got {value}"


class SeedState:
    """The next value of each ``increment`` seed, per template and parameter (in memory, thread-safe)."""

    def __init__(self):
        self._next: dict = {}
        self._lock = threading.Lock()
        self._random = random.SystemRandom()

    def draw(self, template: Template, param: Param) -> int:
        low, high = int(param.minimum or 0), int(SEED_MAX if param.maximum is None else param.maximum)
        if param.policy == "random":
            return self._random.randint(low, high)
        with self._lock:
            key = (template.name, template.hash, param.name)
            value = self._next.get(key, param.default)
            self._next[key] = low if value >= high else value + 1
            return value


def resolve_override(workflow: dict, key: str) -> tuple[str, str]:
    """``"<node title or id>.<input>"`` to ``(node id, input)``; an untitled node answers to its class type.
    Raises TemplateError keyed by ``key`` (an ambiguous title lists the node ids)."""
    target, _, name = key.rpartition(".")
    if target in workflow:
        return target, name
    matches = [node for node in workflow if title_of(workflow, node) == target]
    if len(matches) > 1:
        raise fail(key, f"the title {target!r} is ambiguous: nodes {', '.join(matches)} have it; use '<id>.{name}'")
    if not matches:
        names = list(workflow) + [title_of(workflow, n) for n in workflow]
        raise fail(key, f"no node has the id or title {target!r}{did_you_mean(target, names)}")
    return matches[0], name


def check_override(workflow: dict, specs: Specs, key: str, value: Any) -> tuple[str, str]:
    node, name = resolve_override(workflow, key)
    class_type = workflow[node]["class_type"]
    spec = input_spec(specs, class_type, name)
    label = f"node {node} ({class_type})"
    if spec is None:
        info = specs(class_type) or {}
        known = [n for s in ("required", "optional") for n in (info.get(s) or {})]
        raise fail(key, f"{label} has no input {name!r}{did_you_mean(name, known)}")
    kind = widget_type(*spec)
    if kind is None:
        raise fail(key, f"{label}: input {name!r} is a {spec[0]} socket, not a widget value; it cannot be overridden")
    try:
        TypeAdapter(kind, config=STRICT).validate_python(value)
    except ValidationError as e:
        raise TemplateError({key: [_pydantic_message(err) for err in e.errors(include_url=False)]}) from None
    return node, name


def prepare(template: Template, values: Any, specs: Specs, seeds: SeedState) -> tuple[dict, dict]:
    """Validate ``values`` (parameter names and ``"<title or id>.<input>"`` overrides) and fill them into a copy
    of the workflow. Returns ``(prompt, used)`` where ``used`` holds every parameter's value (random seeds
    included) and the overrides. Raises TemplateError with every problem, keyed by parameter name."""
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise fail("params", f"params must be a JSON object {{name: value}}, got {type(values).__name__}")
    names = {p.name for p in template.params}
    plain = {k: v for k, v in values.items() if "." not in k}
    overrides = {k: v for k, v in values.items() if "." in k}
    errors: Errors = {}
    try:
        validated = template.model.model_validate(plain).model_dump(by_alias=True)
    except ValidationError as e:
        validated = {}
        for err in e.errors(include_url=False):
            key = str(err["loc"][0]) if err["loc"] else "params"
            if err["type"] == "extra_forbidden":
                hint = did_you_mean(key, names) or (f"; parameters: {', '.join(sorted(names))}" if names else "")
                _add(errors, key, f"unknown parameter{hint}")
            else:
                _add(errors, key, _pydantic_message(err))
    targets = {}
    for key, value in overrides.items():
        try:
            targets[key] = check_override(template.workflow, specs, key, value)
        except TemplateError as e:
            for k, msgs in e.errors.items():
                for m in msgs:
                    _add(errors, k, m)
    if errors:
        raise TemplateError(errors)
    prompt = json.loads(json.dumps(template.workflow))
    used = {}
    for p in template.params:
        value = validated[p.name]
        if p.kind == "seed" and p.name not in plain and p.policy != "fixed":
            value = seeds.draw(template, p)
        prompt[p.node]["inputs"]["value"] = value
        used[p.name] = value
    for key, (node, name) in targets.items():
        prompt[node]["inputs"][name] = overrides[key]
        used[key] = overrides[key]
    return prompt, used


# --- sweeps -------------------------------------------------------------------------------------------


def sweep_values(key: str, spec: Any) -> list:
    """A sweep axis: a non-empty list of values, or a range ``{"start", "count", "step"?}`` (integers, e.g. seeds)."""
    if isinstance(spec, list) and spec:
        return spec
    if isinstance(spec, dict):
        start, count, step = spec.get("start"), spec.get("count"), spec.get("step", 1)
        unknown = set(spec) - {"start", "count", "step"}
        ints = all(isinstance(v, int) and not isinstance(v, bool) for v in (start, count, step))
        if unknown or not ints or count < 1:
            raise fail(key, 'a range is {"start": int, "count": int >= 1, "step": int (default 1)}')
        if count > MAX_SWEEP:
            raise fail(key, f"a sweep is capped at {MAX_SWEEP} items; this range has {count}")
        return [start + i * step for i in range(count)]
    raise fail(key, 'sweep values must be a non-empty list or a range {"start": int, "count": int, "step": int}')


def expand_sweep(base: Any, sweep: Any, mode: str = "product") -> list[dict]:
    """Every combination (``product``) or the items side by side (``zip``) of the sweep axes over ``base``."""
    if base is None:
        base = {}
    if not isinstance(base, dict):
        raise fail("params", "params must be a JSON object {name: value}")
    if not isinstance(sweep, dict) or not sweep:
        raise fail("sweep", "sweep must be a non-empty object {parameter: [values] or range}")
    if mode not in ("product", "zip"):
        raise fail("mode", f"mode must be 'product' or 'zip', got {mode!r}")
    errors: Errors = {}
    axes = {}
    for key, spec in sweep.items():
        try:
            axes[key] = sweep_values(key, spec)
        except TemplateError as e:
            errors.update(e.errors)
    if errors:
        raise TemplateError(errors)
    lengths = {key: len(values) for key, values in axes.items()}
    if mode == "zip" and len(set(lengths.values())) > 1:
        raise fail("sweep", f"zip needs axes of equal length, got {lengths}")
    total = next(iter(lengths.values())) if mode == "zip" else math.prod(lengths.values())
    if total > MAX_SWEEP:
        raise fail("sweep", f"a sweep is capped at {MAX_SWEEP} items; this one has {total} ({lengths})")
    combos = zip(*axes.values(), strict=True) if mode == "zip" else itertools.product(*axes.values())
    return [{**base, **dict(zip(axes, combo, strict=True))} for combo in combos]


# --- run status -----------------------------------------------------------------------------------------


def outputs_by_title(prompt: dict, outputs: dict, meta: dict | None = None) -> dict:
    """History outputs keyed by the save node's title (``"<title> #<id>"`` where titles repeat)."""
    meta = meta or {}
    titles = {}
    for node in outputs:
        shown = (meta.get(node) or {}).get("display_node") or node
        titles[node] = title_of(prompt, shown) if shown in prompt else str(node)
    counts: dict[str, int] = {}
    for title in titles.values():
        counts[title] = counts.get(title, 0) + 1
    return {(t if counts[t] == 1 else f"{t} #{node}"): outputs[node] for node, t in titles.items()}


def summarize_history(entry: dict) -> dict:
    """``/qg/runs`` reply for a finished prompt from its history entry."""
    prompt_tuple = entry.get("prompt") or [None, None, {}, {}, []]
    prompt, extra = prompt_tuple[2] or {}, prompt_tuple[3] or {}
    status = entry.get("status") or {}
    reply = {
        "status": "success" if status.get("status_str") == "success" else "error",
        "outputs": outputs_by_title(prompt, entry.get("outputs") or {}, entry.get("meta")),
        **run_record(extra),
    }
    for kind, data in status.get("messages") or []:
        if kind in ("execution_error", "execution_interrupted"):
            reply["error"] = {
                "type": kind,
                "node": data.get("node_id"),
                "node_type": data.get("node_type"),
                "message": data.get("exception_message", "interrupted"),
            }
    return reply


def run_record(extra: dict) -> dict:
    record = extra.get("qg") if isinstance(extra, dict) else None
    if not isinstance(record, dict):
        return {"params": None}
    return {k: v for k, v in record.items() if k in ("template", "params", "batch_id")}


# --- template folders -------------------------------------------------------------------------------------


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not TEMPLATE_NAME.match(name):
        raise fail("name", f"template names are 1-64 letters, digits, _ or -; got {str(name)[:80]!r}")
    return name


def read_template_file(path: Path) -> tuple[dict, str, str]:
    """``(workflow, title, description)`` from a template file: a plain API workflow, or
    ``{workflow, title?, description?}``."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(data, dict) and isinstance(data.get("workflow"), dict):
        return data["workflow"], str(data.get("title") or ""), str(data.get("description") or "")
    return data, "", ""


class TemplateStore:
    """Pack templates (read-only) and user templates (atomic writes). Only ``<folder>/<name>.json`` for a name
    matching TEMPLATE_NAME is ever read or written."""

    def __init__(self, pack_dir: Path, user_dir: Path):
        self.pack_dir = Path(pack_dir)
        self.user_dir = Path(user_dir)

    def _path(self, folder: Path, name: str) -> Path | None:
        path = folder / f"{check_name(name)}.json"
        if not path.is_file() or path.resolve().parent != folder.resolve():
            return None
        return path

    def locate(self, name: str) -> tuple[Path, str]:
        for folder, source in ((self.pack_dir, "pack"), (self.user_dir, "user")):
            path = self._path(folder, name)
            if path is not None:
                return path, source
        raise fail("name", f"no template named {name!r}{did_you_mean(name, self.names())}", status=404)

    def names(self) -> list[str]:
        found = []
        for folder in (self.pack_dir, self.user_dir):
            if folder.is_dir():
                found += sorted(p.stem for p in folder.glob("*.json") if TEMPLATE_NAME.match(p.stem))
        return list(dict.fromkeys(found))

    def load(self, name: str, specs: Specs) -> Template:
        path, source = self.locate(name)
        try:
            workflow, title, description = read_template_file(path)
        except (OSError, ValueError) as e:
            raise fail("name", f"template {name!r} cannot be read: {e}", status=500) from None
        return Template.build(name, workflow, specs, title, description, source)

    def save(self, name: str, workflow: dict, title: str = "", description: str = "") -> Path:
        check_name(name)
        if self._path(self.pack_dir, name) is not None:
            raise fail("name", f"{name!r} is a template of the pack (read-only); choose another name", status=409)
        self.user_dir.mkdir(parents=True, exist_ok=True)
        data = {"workflow": workflow, "title": title, "description": description}
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=self.user_dir)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, indent=1, ensure_ascii=False)
            os.replace(tmp, self.user_dir / f"{name}.json")
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return self.user_dir / f"{name}.json"


# --- boolean guard for API callers ----------------------------------------------------------------------


class RefusedBoolean(str):
    """A string sent where this pack declares a BOOLEAN. ComfyUI 0.3.75 converts BOOLEAN constants with
    ``bool()``; converting this one raises, so validation fails with our message (invalid_input_type) instead
    of reading ``"no"`` as true."""

    message = ""

    def __bool__(self) -> bool:
        raise QGError(self.message)


SPELLED = {"true": True, "false": False}


def guard_booleans(prompt: Any, boolean_inputs: Callable[[str], Iterable[str]]) -> Any:
    """For every node whose class declares BOOLEAN inputs (``boolean_inputs(class_type)``), a string constant
    there is read as the boolean it spells (``"true"``/``"false"``, any case, surrounding spaces ignored) and
    any other string is refused at validation with a message naming the node and the input."""
    if not isinstance(prompt, dict):
        return prompt
    for node, entry in prompt.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("inputs"), dict):
            continue
        names = boolean_inputs(entry.get("class_type"))
        if not names:
            continue
        inputs = entry["inputs"]
        for name in names:
            raw = inputs.get(name)
            if isinstance(raw, dict) and set(raw) == {"__value__"}:  # ComfyUI unwraps this before bool()
                raw = inputs[name] = raw["__value__"]
            if not isinstance(raw, str) or isinstance(raw, RefusedBoolean):
                continue
            spelled = SPELLED.get(raw.strip().lower())
            if spelled is not None:
                inputs[name] = spelled
                continue
            refused = RefusedBoolean(raw)
            refused.message = (
                f"{entry['class_type']} #{node}: input '{name}' is a BOOLEAN; the string {raw[:40]!r} is not "
                "true or false (send JSON true/false)"
            )
            inputs[name] = refused
    return prompt
