"""Template parameter nodes (category ``quality_gate/template``).

Each node names a value that API callers set by name (``POST /qg/templates/{name}/run``). On the canvas it
simply returns its ``value``, so a template runs unchanged in the web UI. Thin adapters over ``core.template.schema``.
"""

from __future__ import annotations

from .common import ANY, HIDDEN_ID, QGNode, boolean, combo, integer, number
from .core.errors import QGError
from .core.prompt import SEED_MAX
from .core.template.schema import FLOAT_LIMIT, INT_LIMIT, PARAM_NAME, SEED_POLICIES, parse_choices

CATEGORY = "quality_gate/template"


def _text(default: str, tooltip: str, multiline: bool = False):
    return ("STRING", {"default": default, "multiline": multiline, "tooltip": tooltip})


class Param(QGNode):
    """Shared inputs and behaviour: ``name``, ``value``, optional ``description`` and ``required``."""

    CATEGORY = CATEGORY
    DEFAULT_NAME = ""
    OUTPUT_TOOLTIPS = ("The value: the default on the canvas, the caller's value in an API run.",)

    @classmethod
    def value_spec(cls):
        raise NotImplementedError

    @classmethod
    def extra_inputs(cls) -> dict:
        return {}

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "name": _text(
                    cls.DEFAULT_NAME,
                    "The parameter's name for API callers: a letter, then letters, digits or _ (at most 64), "
                    "unique in the workflow.",
                ),
                "value": cls.value_spec(),
                **cls.extra_inputs(),
            },
            "optional": {
                "description": _text("", "What the parameter does, shown in the template's JSON Schema.", True),
                "required": boolean(
                    False,
                    "true = API callers must give a value (the default is used only on the canvas); "
                    "false = the default is used when a caller leaves it out.",
                ),
            },
            "hidden": HIDDEN_ID,
        }

    @classmethod
    def check(cls, name, value, **settings) -> None:
        """Everything ComfyUI cannot check itself (run again when the node executes)."""
        if name is not None and (not isinstance(name, str) or not PARAM_NAME.match(name)):
            raise QGError(f"name {name!r} is not an identifier (a letter, then letters, digits or _, at most 64)")

    @classmethod
    def VALIDATE_INPUTS(cls, name=None):
        """At /prompt time. ComfyUI switches its own min/max/choice checks off for every input this method takes and
        copies a failure to each of them, so it takes only the inputs of checks ComfyUI cannot make (the name's
        pattern here; the relation of value and its bounds or choices in subclasses)."""
        return cls.validation(lambda: cls.check(name, None))

    def execute(self, name, value, unique_id=None, **settings):
        with self.errors_named(unique_id):
            self.check(name, value, **settings)
        return (value,)


class ParamText(Param):
    TITLE = "Text Parameter"
    DEFAULT_NAME = "text"
    DESCRIPTION = "A named text parameter (e.g. a prompt). Returns its value; API callers set it by name."
    RETURN_TYPES = ("STRING",)
    RETURN_NAMES = ("value",)

    @classmethod
    def value_spec(cls):
        return _text("", "The default text.", multiline=True)


class Bounded(Param):
    """INT and FLOAT parameters: ``min`` <= ``value`` <= ``max``."""

    @classmethod
    def check(cls, name, value, min=None, max=None, **settings):
        super().check(name, value)
        if None not in (min, max) and min > max:
            raise QGError(f"min {min} is greater than max {max}")
        if value is not None and min is not None and value < min:
            raise QGError(f"value {value} is below min {min}")
        if value is not None and max is not None and value > max:
            raise QGError(f"value {value} is above max {max}")

    @classmethod
    def check_declared(cls, **values) -> None:
        """The declared widget range of inputs VALIDATE_INPUTS takes (ComfyUI skips its own check for them)."""
        spec = cls.INPUT_TYPES()["required"]
        for key, value in values.items():
            kind, options = spec[key]
            if value is not None and value < options["min"]:
                raise QGError(f"{key} {value} is below the smallest {kind} {options['min']}")
            if value is not None and value > options["max"]:
                raise QGError(f"{key} {value} is above the largest {kind} {options['max']}")

    @classmethod
    def VALIDATE_INPUTS(cls, name=None, value=None, min=None, max=None):
        def check():
            cls.check_declared(value=value, min=min, max=max)
            cls.check(name, value, min=min, max=max)

        return cls.validation(check)


class ParamInt(Bounded):
    TITLE = "Integer Parameter"
    DEFAULT_NAME = "count"
    DESCRIPTION = (
        "A named integer parameter with bounds. Returns its value; API callers set it by name and values outside "
        "min..max are refused (bounds are also narrowed by the inputs it feeds)."
    )
    RETURN_TYPES = ("INT",)
    RETURN_NAMES = ("value",)

    @classmethod
    def value_spec(cls):
        return integer(0, -INT_LIMIT, INT_LIMIT, "The default value.")

    @classmethod
    def extra_inputs(cls):
        return {
            "min": integer(0, -INT_LIMIT, INT_LIMIT, "Smallest value callers may give (inclusive)."),
            "max": integer(100, -INT_LIMIT, INT_LIMIT, "Largest value callers may give (inclusive)."),
            "step": integer(1, 1, INT_LIMIT, "Widget step for UIs; values are not snapped to it."),
        }


class ParamFloat(Bounded):
    TITLE = "Float Parameter"
    DEFAULT_NAME = "strength"
    DESCRIPTION = (
        "A named decimal parameter with bounds. Returns its value; API callers set it by name (integers are "
        "accepted) and values outside min..max are refused."
    )
    RETURN_TYPES = ("FLOAT",)
    RETURN_NAMES = ("value",)

    @classmethod
    def value_spec(cls):
        return number(0.0, -FLOAT_LIMIT, FLOAT_LIMIT, "The default value.", step=0.001)

    @classmethod
    def extra_inputs(cls):
        return {
            "min": number(0.0, -FLOAT_LIMIT, FLOAT_LIMIT, "Smallest value callers may give (inclusive).", 0.001),
            "max": number(1.0, -FLOAT_LIMIT, FLOAT_LIMIT, "Largest value callers may give (inclusive).", 0.001),
            "step": number(0.01, 0.0, FLOAT_LIMIT, "Widget step for UIs; values are not snapped to it.", 0.001),
        }


class ParamBool(Param):
    TITLE = "Boolean Parameter"
    DEFAULT_NAME = "enabled"
    DESCRIPTION = "A named true/false parameter. Returns its value; API callers must send JSON true or false."
    RETURN_TYPES = ("BOOLEAN",)
    RETURN_NAMES = ("value",)

    @classmethod
    def value_spec(cls):
        return boolean(False, "The default: true or false.")


class ParamChoice(Param):
    TITLE = "Choice Parameter"
    DEFAULT_NAME = "choice"
    DESCRIPTION = (
        "A named choice among fixed options (one per line). Its output links into combo inputs (sampler, "
        "scheduler, checkpoint...). API callers must give one of the choices."
    )
    RETURN_TYPES = (ANY,)
    RETURN_NAMES = ("value",)

    @classmethod
    def value_spec(cls):
        return _text("", "The default choice; must be one of the choices.")

    @classmethod
    def extra_inputs(cls):
        return {"choices": _text("", "The allowed values, one per line (blank lines ignored).", multiline=True)}

    @classmethod
    def VALIDATE_INPUTS(cls, name=None, value=None, choices=None):
        return cls.validation(lambda: cls.check(name, value, choices=choices))

    @classmethod
    def check(cls, name, value, choices=None, **settings):
        super().check(name, value)
        if choices is None or value is None:
            return
        options = parse_choices(choices)
        if not options:
            raise QGError("choices is empty: write one choice per line")
        if value not in options:
            raise QGError(f"value {value!r} is not one of the choices: {', '.join(options)}")


class ParamSeed(Param):
    TITLE = "Seed Parameter"
    DEFAULT_NAME = "seed"
    DESCRIPTION = (
        "A named seed. policy decides what API runs use when the caller gives no seed: fixed = value, random = "
        "a new random seed per run (reported back), increment = value, then value + 1 on each later run. "
        "On the canvas it returns value."
    )
    RETURN_TYPES = ("INT",)
    RETURN_NAMES = ("seed",)

    @classmethod
    def value_spec(cls):
        return integer(0, 0, SEED_MAX, "The default seed (0 to 2^64 - 1).")

    @classmethod
    def extra_inputs(cls):
        return {
            "policy": combo(
                SEED_POLICIES,
                "fixed",
                "API runs without a seed: fixed = value; random = a fresh seed each run; increment = value, "
                "value + 1, ... per run.",
            )
        }
