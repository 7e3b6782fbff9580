"""Quality Gate: lazy logic, quality scoring, retry loops and template parameters for ComfyUI.

Wiring only: the node table lives in ``nodes/registry.py``.
"""

from .nodes import loop, routes, score
from .nodes.registry import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

score.setup()  # the model folders, and a warning when open_clip is missing (a no-op outside ComfyUI)
routes.setup()  # the /qg HTTP routes and the POST /prompt boolean guard (a no-op outside ComfyUI)
loop.setup()  # failed loop attempts named in /history (a no-op outside ComfyUI)

WEB_DIRECTORY = "./js"

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
