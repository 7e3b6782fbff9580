"""Template errors: every problem keyed by the parameter (or ``workflow``, ``sweep``...) it is about."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from ..errors import QGError

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


def add_error(errors: Errors, key: str, message: str) -> None:
    bucket = errors.setdefault(key, [])
    if message not in bucket:
        bucket.append(message)


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=3, cutoff=0.6)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
