"""Writes the pack's subgraph blueprints, ``subgraphs/<name>.json``, with the real frontend (1.58.1) in headless
Chromium: an example workflow (dev/build_examples.py) is loaded, the nodes of the blueprint are converted with
the frontend's own "Convert to Subgraph" command, every other node is removed, and the graph is saved as the
frontend saves a blueprint: a workflow whose only node is the subgraph instance, its definition in
``definitions.subgraphs[0]`` with a category and a description. ComfyUI serves ``subgraphs/*.json`` of every
custom node pack at ``GET /global_subgraphs``; newer frontends list them in the node library under
"Subgraph Blueprints/Quality Gate".

    .venv/bin/python dev/build_blueprints.py

The tests (tests/test_blueprints.py) check every file against the live /object_info and load them in 1.58.1.
"""

from __future__ import annotations

import json
import sys

from browser import CanvasPage, browser_server, launch
from build_examples import ROOT, Example, hires_fix_quality_gate, retry_until_quality, show, ui

FRONTEND = "1.58.1"
CATEGORY = "Quality Gate"
OUT = ROOT / "subgraphs"


def retry_with_every_output() -> Example:
    """The retry example with Retry End's score, attempts and passed outputs used outside too, so that the
    blueprint outputs them (a subgraph outputs what leaves it)."""
    example = retry_until_quality()
    extra = [show(20 + slot, (9, slot), name) for slot, name in ((1, "Best score"), (3, "Attempts"), (4, "Passed"))]
    return Example(example.name, [*example.nodes, *extra])


# file name (the name the node library shows): (example, ids of the nodes inside, description, names of the
# outputs by the inner node they come from, where the frontend's default names say too little)
BLUEPRINTS = {
    "Sample until quality (QG retry loop)": (
        retry_with_every_output,
        {4, 6, 7, 8, 9},
        "KSampler + VAE Decode inside a Quality Gate retry loop scored by the weights-free technical score: up "
        "to max_attempts seeds until the score reaches the threshold; outputs the best image, its score, the "
        "attempts, whether it passed and every attempt's score. Connect model, conditioning, latent and VAE.",
        {},
    ),
    "Hi-res fix behind a quality gate (QG)": (
        hires_fix_quality_gate,
        {6, 7, 8, 9, 10, 11, 12, 13, 14},
        "The two-pass hi-res fix with the expensive second pass behind a gate: the draft is decoded and given a "
        "technical score; only a draft at or above the minimum is upscaled 2x, encoded and refined at denoise "
        "0.45 (a closed gate skips the rest without an error). Connect the draft latent, model, conditioning "
        "and VAE.",
        {14: "image", 6: "draft", 9: "gate_reason"},
    ),
}

# After the conversion: the subgraph node alone, saved as the frontend saves a blueprint.
ONLY_THE_SUBGRAPH = """([id, title, category, description]) => {
    const sub = app.graph.getNodeById(id);
    for (const n of [...app.graph.nodes]) if (n !== sub) app.graph.remove(n);
    sub.pos = [0, 0];
    sub.title = title;
    const data = JSON.parse(JSON.stringify(app.graph.serialize()));
    const definition = data.definitions.subgraphs[0];
    Object.assign(definition, {name: title, category, description});
    return data;
}"""


def rename_outputs(data: dict, names: dict) -> dict:
    """Name the blueprint's outputs after what they are (``names``: inner node id -> name), in the definition
    and on the instance node alike."""
    definition = data["definitions"]["subgraphs"][0]
    origin = {link["id"]: link["origin_id"] for link in definition["links"]}
    for index, output in enumerate(definition["outputs"]):
        new = names.get(origin[output["linkIds"][0]])
        if new:
            for entry in (output, data["nodes"][0]["outputs"][index]):
                entry["name"] = entry["localized_name"] = new
    return data


def main() -> int:
    from playwright.sync_api import sync_playwright

    OUT.mkdir(exist_ok=True)
    server = browser_server(FRONTEND, name="blueprints").start()
    try:
        with sync_playwright() as playwright:
            browser = launch(playwright)
            try:
                page = CanvasPage(browser, server).open()
                for name, (make, inside, description, names) in BLUEPRINTS.items():
                    page.reset()
                    page.load_workflow(ui(make()))
                    sub = page.convert_to_subgraph(sorted(inside))
                    data = page.evaluate(ONLY_THE_SUBGRAPH, [sub, name, CATEGORY, description])
                    data = rename_outputs(data, names)
                    path = OUT / f"{name}.json"
                    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
                    print(f"{path.relative_to(ROOT)}: {len(data['definitions']['subgraphs'][0]['nodes'])} nodes")
                page.close()
            finally:
                browser.close()
    finally:
        server.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
