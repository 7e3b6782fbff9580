"""Quality Gate: lazy logic, quality scoring, retry loops and template parameters for ComfyUI.

Wiring only: the node table lives in ``nodes/registry.py``.
"""

from .nodes.registry import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

WEB_DIRECTORY = "./js"

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]

from .nodes import routes as _routes  # noqa: E402

_routes.setup()  # the /qg HTTP routes and the POST /prompt boolean guard (a no-op outside ComfyUI)
