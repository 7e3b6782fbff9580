"""The parameters of a template: finding the parameter nodes of an API workflow, narrowing their bounds and
choices by the inputs they feed, and the pydantic model and JSON Schema of the whole template."""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError, create_model

from ..errors import QGError
from ..prompt import SEED_MAX, is_link
from .errors import Errors, TemplateError, add_error, fail

PARAM_KINDS = {
    "QG_ParamText": "text",
    "QG_ParamInt": "int",
    "QG_ParamFloat": "float",
    "QG_ParamBool": "bool",
    "QG_ParamChoice": "choice",
    "QG_ParamSeed": "seed",
}
SEED_POLICIES = ("fixed", "random", "increment")
INT_LIMIT = 0xFFFFFFFFFFFFFFFF
FLOAT_LIMIT = 1e15
PARAM_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

Specs = Callable[[str], "dict | None"]


def workflow_hash(workflow: dict) -> str:
    """A short content hash of an API workflow (key order does not matter), so callers notice a re-saved graph."""
    text = json.dumps(workflow, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


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
            add_error(errors, "workflow", f"{where}: expected an object with a class_type")
            continue
        if not isinstance(entry.get("inputs", {}), dict):
            add_error(errors, "workflow", f"{where}: inputs must be an object")
            continue
        meta = entry.get("_meta", {})
        if not isinstance(meta, dict) or not isinstance(meta.get("title", ""), str):
            add_error(errors, "workflow", f"{where}: _meta must be an object whose title is a string")
        info = specs(entry["class_type"]) if specs else {}
        if info is None:
            unknown = f"unknown node type {entry['class_type']!r} (is its pack installed?)"
            add_error(errors, "workflow", f"{where}: {unknown}")
        for name, value in entry.get("inputs", {}).items():
            if not is_link(value):
                continue
            source = workflow.get(value[0])
            if not isinstance(source, dict):
                missing = f"input {name} links to missing node {value[0]}"
                add_error(errors, "workflow", f"{where} ({entry['class_type']}): {missing}")
    if errors:
        raise TemplateError(errors)


def _finite_number(value: Any, integer: bool) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return isinstance(value, int) if integer else math.isfinite(value)


def _constant(entry: dict, node: str, name: str, errors: Errors, default: Any = None) -> Any:
    value = entry.get("inputs", {}).get(name, default)
    if is_link(value):
        add_error(errors, "workflow", f"node {node} ({entry['class_type']}): {name} must be a constant, not a link")
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
            add_error(
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
            bounds = {key: get(key) for key in ("min", "max", "step")}
            for key, value in bounds.items():
                if value is not None and not _finite_number(value, integer=kind == "int"):
                    expected = "an integer" if kind == "int" else "a finite number"
                    add_error(errors, name, f"{key} must be {expected}, got {str(value)[:80]!r}")
            param = replace(param, minimum=bounds["min"], maximum=bounds["max"], step=bounds["step"])
        elif kind == "seed":
            policy = get("policy", "fixed")
            if policy not in SEED_POLICIES:
                add_error(errors, name, f"policy {policy!r} is not one of {', '.join(SEED_POLICIES)}")
            param = replace(param, minimum=0, maximum=SEED_MAX, policy=policy)
        elif kind == "choice":
            try:
                param = replace(param, choices=parse_choices(get("choices", "")))
            except QGError as e:
                add_error(errors, name, str(e))
        params.append(param)
    for name, nodes in owners.items():
        if len(nodes) > 1:
            add_error(errors, name, f"parameter name used by several nodes ({', '.join(nodes)}); names must be unique")
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
                message = f"min {p.minimum} is greater than max {p.maximum} (after the inputs it feeds)"
                add_error(errors, p.name, message)
                continue
            fields[f"p{i}"] = _field(p)
            if not p.required:
                try:
                    TypeAdapter(fields[f"p{i}"][0], config=STRICT).validate_python(p.default)
                except ValidationError as e:
                    add_error(errors, p.name, f"the default is not valid: {pydantic_message(e.errors()[0])}")
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


def pydantic_message(error: dict) -> str:
    if error["type"] == "missing":
        return "required: this parameter has no default for API runs; give a value"
    value = json.dumps(error.get("input"), default=str)[:80]
    return f"{error['msg']}; got {value}"
