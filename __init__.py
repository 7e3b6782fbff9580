"""Quality Gate: lazy logic, quality scoring, retry loops and template parameters for ComfyUI.

Wiring only: the node table lives in ``nodes/registry.py``.
"""

from .nodes import score
from .nodes.registry import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

score.setup()

WEB_DIRECTORY = "./js"

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
