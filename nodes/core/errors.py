"""The one exception type the plain logic raises for bad input."""


class QGError(ValueError):
    """Bad input to a Quality Gate node. The message names the input and what was expected; the node
    adapter prefixes it with the node's name and id before ComfyUI shows it."""
