"""Plain logic of template parameters, one module per job (nothing here imports ComfyUI):

- ``errors``: TemplateError, every problem keyed by parameter name;
- ``schema``: the parameter nodes of an API workflow, bounds narrowed by the inputs they feed, the pydantic model
  and JSON Schema of a template;
- ``fill``: validating a caller's values and overrides (``"<node title or id>.<input>"``), seed policies, filling
  them into the prompt, and the boolean guard for API callers;
- ``sweep``: sweep axes and their combinations;
- ``store``: template names and the template folders;
- ``runs``: ``/qg/runs`` replies from ComfyUI's history.

Node input specs come in through a ``specs(class_type)`` callable that returns a node's ``INPUT_TYPES()`` dict
(or None for an unknown class), as ``/object_info`` describes it.
"""
