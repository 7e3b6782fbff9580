"""What every Quality Gate node class shares: the ANY socket type, widget spec helpers, error naming."""

from __future__ import annotations

from contextlib import contextmanager

from .core.errors import QGError

PACK_TAG = "QG"


class AnyType(str):
    """A socket type that links to and from every other type, combo inputs included.

    ComfyUI 0.3.75 checks links with ``not received != declared``; a plain ``"*"`` fails that check, while
    this subclass answers "not different" to everything (Python asks the subclass first)."""

    def __ne__(self, other: object) -> bool:
        return False

    __hash__ = str.__hash__


ANY = AnyType("*")
HIDDEN_ID = {"unique_id": "UNIQUE_ID"}


def combo(options, default: str, tooltip: str):
    return (list(options), {"default": default, "tooltip": tooltip})


def boolean(default: bool, tooltip: str, **extra):
    return ("BOOLEAN", {"default": default, "tooltip": tooltip, **extra})


def integer(default: int, minimum: int, maximum: int, tooltip: str, step: int = 1):
    return ("INT", {"default": default, "min": minimum, "max": maximum, "step": step, "tooltip": tooltip})


def number(default: float, minimum: float, maximum: float, tooltip: str, step: float = 0.01):
    return ("FLOAT", {"default": default, "min": minimum, "max": maximum, "step": step, "tooltip": tooltip})


def socket(kind, tooltip: str, lazy: bool = False):
    options = {"tooltip": tooltip}
    if lazy:
        options["lazy"] = True
    return (kind, options)


class QGNode:
    """Base of every node class: V1 API, ``execute`` as the function, a title for messages."""

    TITLE = ""
    FUNCTION = "execute"
    NODE_ID = ""  # set by the registry: the id this class is registered under

    @classmethod
    def label(cls, unique_id=None) -> str:
        name = f"{cls.TITLE} ({PACK_TAG})"
        return f"{name} #{unique_id}" if unique_id is not None else name

    @classmethod
    @contextmanager
    def errors_named(cls, unique_id=None):
        """Prefix a QGError raised by the plain logic with this node's name and id."""
        try:
            yield
        except QGError as e:
            raise QGError(f"{cls.label(unique_id)}: {e}") from e

    @classmethod
    def validation(cls, check) -> bool | str:
        """Run a check at /prompt time: True when it passes, else the sentence ComfyUI shows."""
        try:
            check()
        except QGError as e:
            return str(e)
        return True
