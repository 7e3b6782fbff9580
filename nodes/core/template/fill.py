"""Filling a template: validating a caller's values (parameter names and ``"<node title or id>.<input>"``
overrides against ``/object_info``), seed policies, the filled-in prompt, and the boolean guard for API callers."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable, Iterable
from typing import Any

from pydantic import TypeAdapter, ValidationError

from ..errors import QGError
from ..prompt import SEED_MAX, title_of
from .errors import Errors, TemplateError, add_error, did_you_mean, fail
from .schema import STRICT, Param, Specs, Template, input_spec, pydantic_message, widget_type


class SeedState:
    """The next value of each ``increment`` seed, per template and parameter (in memory, thread-safe)."""

    def __init__(self):
        self._next: dict = {}
        self._lock = threading.Lock()
        self._random = random.SystemRandom()

    def preview(self) -> SeedState:
        """A copy to draw from without using up seeds: a dry run reports the seeds a real run would use next,
        and a real run draws from one and ``commit``s it only once its prompt is queued."""
        copy = SeedState()
        with self._lock:
            copy._next = dict(self._next)
        return copy

    def commit(self, preview: SeedState) -> None:
        """Take the seeds drawn from ``preview`` as used (the caller serialises preview..commit)."""
        with self._lock, preview._lock:
            self._next.update(preview._next)

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
        raise TemplateError({key: [pydantic_message(err) for err in e.errors(include_url=False)]}) from None
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
                add_error(errors, key, f"unknown parameter{hint}")
            else:
                add_error(errors, key, pydantic_message(err))
    targets = {}
    for key, value in overrides.items():
        try:
            targets[key] = check_override(template.workflow, specs, key, value)
        except TemplateError as e:
            for k, msgs in e.errors.items():
                for m in msgs:
                    add_error(errors, k, m)
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
