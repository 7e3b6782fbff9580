"""The template folders: the pack's own (read-only) and the user's (atomic writes), and template names."""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from .errors import did_you_mean, fail
from .schema import Specs, Template

TEMPLATE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


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
