"""Plain walks over an API-format prompt (``{id: {"class_type", "inputs"}}``) that nothing in ComfyUI offers.

``signatures`` gives each node a digest of everything its output depends on in the prompt: its id, class and
constant inputs, and the digests of the nodes its links come from (a Merkle tree over the node's ancestry).
ComfyUI's cache keys a node by the same ancestry (without the id, unless the node reads its unique id), plus
the ``IS_CHANGED`` values the prompt does not show, so two nodes with equal digests in two prompts are the
same computation unless an ``IS_CHANGED`` (a file changed on disk) says otherwise.
"""

from __future__ import annotations

import hashlib
import json

from .errors import QGError
from .prompt import is_link


def signatures(prompt: dict, node_ids) -> dict:
    """{node id: hex digest} for ``node_ids`` (and, on the way, their ancestors). Iterative, so a long chain
    does not hit Python's recursion limit; links to nodes missing from the prompt count as constants, and a
    cycle (a prompt ComfyUI refuses to run) raises ``QGError``."""
    done: dict = {}
    for root in node_ids:
        stack, open_nodes = [root], set()
        while stack:
            node = stack[-1]
            if node in done:
                stack.pop()
                continue
            inputs = prompt[node].get("inputs", {})
            waiting = [v[0] for v in inputs.values() if is_link(v) and v[0] in prompt and v[0] not in done]
            if waiting:
                if node in open_nodes:
                    raise QGError(f"the prompt has a cycle through node {node}")
                open_nodes.add(node)
                stack.extend(waiting)
                continue
            stack.pop()
            parts = {
                name: ["link", done[v[0]], v[1]] if is_link(v) and v[0] in prompt else v for name, v in inputs.items()
            }
            text = json.dumps([node, prompt[node].get("class_type"), parts], sort_keys=True, default=repr)
            done[node] = hashlib.sha256(text.encode()).hexdigest()
    return {n: done[n] for n in node_ids}


def consumers(get_node, node_ids, node: str, slot: int) -> list[str]:
    """The ids (sorted) of the nodes with an input linked to output ``slot`` of ``node``; ``get_node(id)``
    gives a node's ``{"class_type", "inputs"}`` (a prompt's ``__getitem__`` or ComfyUI's dynamic prompt)."""
    return sorted(
        n
        for n in node_ids
        if any(is_link(v) and v[0] == node and int(v[1]) == slot for v in (get_node(n).get("inputs") or {}).values())
    )
