"""The graph-editing extensions in the real frontend (fixture ``page``: both frontend versions): QG_Select grows
and shrinks its inputs and the backend runs what the canvas queues, output types follow the connected input on
Switch / Select / Gate, parameter nodes are titled by their name with a warning on duplicates, and the "Save as
Quality Gate template" command saves a template that ``GET /qg/templates`` lists (App Mode inputs offered as
parameters where the frontend has an App Mode builder)."""

from __future__ import annotations

import pytest
from harness import NEWEST_FRONTEND, ComfyClient

LABEL = "Save as Quality Gate template"


@pytest.fixture
def client(page):
    c = ComfyClient(page.server.url, server=page.server)
    yield c
    c.close()


def settle(page) -> None:
    """Let the extensions' deferred updates (one microtask after a link change) run."""
    page.evaluate("() => new Promise((resolve) => setTimeout(resolve, 50))")


def inputs_of(page, node: int) -> list[str]:
    """Input slot names, with ``*`` after the connected ones."""
    return page.evaluate(
        """(id) => { const n = app.graph.getNodeById(id);
            return n.inputs.map((input, i) => input.name + (n.isInputConnected(i) ? "*" : "")); }""",
        node,
    )


def select_slots(page, node: int) -> list[str]:
    return [name for name in inputs_of(page, node) if name.startswith("input_")]


def disconnect(page, node: int, input_name: str) -> None:
    page.evaluate(
        """([id, name]) => { const n = app.graph.getNodeById(id);
            n.disconnectInput(n.inputs.findIndex((i) => i.name === name)); }""",
        [node, input_name],
    )
    settle(page)


def link(page, source: int, output, target: int, input_name: str) -> None:
    page.connect(source, output, target, input_name)
    settle(page)


def output_of(page, node: int, slot: int = 0) -> dict:
    return page.evaluate(
        """([id, slot]) => { const o = app.graph.getNodeById(id).outputs[slot];
            return {type: o.type, label: o.label ?? null, name: o.name}; }""",
        [node, slot],
    )


def is_linked(page, node: int, input_name: str) -> bool:
    return input_name + "*" in inputs_of(page, node)


def frontend_version(page) -> str:
    return page.evaluate("() => window.__COMFYUI_FRONTEND_VERSION__ ?? ''")


# --- QG_Select grows its inputs -----------------------------------------------------------------------------


def test_select_grows_and_shrinks_and_the_backend_runs_what_it_queues(page, client):
    select = page.add_node("QG_Select", {"index": 2}, pos=(400, 100))
    assert select_slots(page, select) == ["input_1"]

    red = page.add_node("EmptyImage", {"width": 8, "height": 8, "color": 0xFF0000}, pos=(50, 50))
    green = page.add_node("EmptyImage", {"width": 8, "height": 8, "color": 0x00FF00}, pos=(50, 300))
    link(page, red, 0, select, "input_1")
    assert select_slots(page, select) == ["input_1*", "input_2"]
    link(page, green, 0, select, "input_2")
    assert select_slots(page, select) == ["input_1*", "input_2*", "input_3"]

    disconnect(page, select, "input_2")  # the last connected one: shrinks back
    assert select_slots(page, select) == ["input_1*", "input_2"]
    disconnect(page, select, "input_1")
    assert select_slots(page, select) == ["input_1"]

    link(page, red, 0, select, "input_1")
    link(page, green, 0, select, "input_2")
    link(page, red, 0, select, "input_3")
    disconnect(page, select, "input_2")  # a gap keeps its number: index still means the same slot
    assert select_slots(page, select) == ["input_1*", "input_2", "input_3*", "input_4"]
    disconnect(page, select, "input_3")
    assert select_slots(page, select) == ["input_1*", "input_2"]
    link(page, green, 0, select, "input_2")

    # saved and reloaded: the same slots, links and prompt
    saved = page.evaluate("() => JSON.parse(JSON.stringify(app.graph.serialize()))")
    page.load_workflow(saved)
    settle(page)
    assert select_slots(page, select) == ["input_1*", "input_2*", "input_3"]

    preview = page.add_node("PreviewImage", pos=(800, 100))
    link(page, select, 0, preview, "images")
    prompt = page.graph_to_prompt()["output"]
    links = {name: value for name, value in prompt[str(select)]["inputs"].items() if name.startswith("input_")}
    assert links == {"input_1": [str(red), 0], "input_2": [str(green), 0]}

    entry = client.wait_finished(page.queue(), 120.0, interval=0.2)
    assert entry["status"]["status_str"] == "success", entry["status"]
    assert entry["outputs"][str(preview)]["images"], "the preview got no image"


def test_select_saved_with_every_slot_loads_with_one_free_slot(page):
    """A workflow saved without this extension lists all 16 input_ slots; it loads trimmed, links kept."""
    select = page.add_node("QG_Select", pos=(400, 100))
    source = page.add_node("EmptyImage", {"width": 8, "height": 8}, pos=(50, 50))
    link(page, source, 0, select, "input_1")
    link(page, source, 0, select, "input_2")
    saved = page.evaluate("() => JSON.parse(JSON.stringify(app.graph.serialize()))")
    node = next(n for n in saved["nodes"] if str(n["id"]) == str(select))
    names = {i["name"] for i in node["inputs"]}
    node["inputs"] += [
        {"name": f"input_{k}", "type": "*", "link": None} for k in range(3, 17) if f"input_{k}" not in names
    ]
    page.load_workflow(saved)
    settle(page)
    assert select_slots(page, select) == ["input_1*", "input_2*", "input_3"]
    prompt = page.graph_to_prompt()["output"]
    assert sorted(k for k in prompt[str(select)]["inputs"] if k.startswith("input_")) == ["input_1", "input_2"]


def test_select_stops_at_its_last_declared_input(page):
    select = page.add_node("QG_Select", pos=(400, 100))
    source = page.add_node("EmptyImage", {"width": 8, "height": 8}, pos=(50, 50))
    for k in range(1, 17):
        link(page, source, 0, select, f"input_{k}")
    assert select_slots(page, select) == [f"input_{k}*" for k in range(1, 17)]


# --- types follow the connected input -----------------------------------------------------------------------


def test_output_types_follow_the_connected_input_and_reset(page):
    image = page.add_node("EmptyImage", {"width": 8, "height": 8}, pos=(50, 50))
    latent = page.add_node("EmptyLatentImage", {"width": 64, "height": 64}, pos=(50, 350))
    switch = page.add_node("QG_Switch", pos=(400, 50))
    gate = page.add_node("QG_Gate", pos=(700, 50))
    select = page.add_node("QG_Select", pos=(400, 350))
    save = page.add_node("SaveImage", pos=(1000, 50))

    assert output_of(page, switch)["type"] == "*"
    link(page, image, 0, switch, "on_true")
    assert output_of(page, switch) == {"type": "IMAGE", "label": "IMAGE", "name": "value"}

    link(page, switch, 0, gate, "value")  # follows through a chain of these nodes
    assert output_of(page, gate)["type"] == "IMAGE"
    link(page, gate, 0, save, "images")
    assert is_linked(page, save, "images")

    with pytest.raises(Exception, match="cannot link"):  # a LATENT next to an IMAGE is refused
        page.connect(latent, 0, switch, "on_false")
    assert not is_linked(page, switch, "on_false")

    link(page, latent, 0, select, "input_1")
    assert output_of(page, select, 0) == {"type": "LATENT", "label": "LATENT", "name": "value"}
    assert output_of(page, select, 1)["type"] == "INT"  # the index output keeps its type

    disconnect(page, switch, "on_true")  # nothing connected: back to ANY, down the chain too
    assert output_of(page, switch)["type"] == "*"
    assert output_of(page, switch)["label"] in (None, "value")
    assert output_of(page, gate)["type"] == "*"
    assert is_linked(page, save, "images")  # ANY still fits

    link(page, latent, 0, switch, "on_false")  # now LATENT: the SaveImage link no longer fits
    assert output_of(page, switch)["type"] == "LATENT"
    assert output_of(page, gate)["type"] == "LATENT"
    assert not is_linked(page, save, "images")


def test_loading_a_workflow_never_drops_links(page):
    """A saved graph whose Switch has inputs of two types (made before this extension, or by hand) loads with
    every link kept; the output stays ANY because no single type fits them all."""
    image = page.add_node("EmptyImage", {"width": 8, "height": 8}, pos=(50, 50))
    latent = page.add_node("EmptyLatentImage", {"width": 64, "height": 64}, pos=(50, 350))
    switch = page.add_node("QG_Switch", pos=(400, 50))
    save = page.add_node("SaveImage", pos=(700, 50))
    link(page, image, 0, switch, "on_false")
    link(page, switch, 0, save, "images")
    page.evaluate("(id) => { app.graph.getNodeById(id).onConnectInput = () => true; }", switch)  # bypass
    link(page, latent, 0, switch, "on_true")  # two types: the output is ANY, and no link is dropped
    assert output_of(page, switch)["type"] == "*" and is_linked(page, save, "images")
    saved = page.evaluate(
        """(id) => { delete app.graph.getNodeById(id).onConnectInput;
            return JSON.parse(JSON.stringify(app.graph.serialize())); }""",
        switch,
    )
    page.load_workflow(saved)
    settle(page)
    assert {"on_true*", "on_false*"} <= set(inputs_of(page, switch))
    assert is_linked(page, save, "images")
    assert output_of(page, switch)["type"] == "*"


# --- parameter titles ---------------------------------------------------------------------------------------


def param_state(page, node: int) -> dict:
    return page.evaluate(
        """(id) => { const n = app.graph.getNodeById(id);
            return {title: n.title, duplicate: n.qgDuplicate ? n.qgDuplicate.map(String) : null,
                    color: n.color ?? null}; }""",
        node,
    )


def rename(page, node: int, name: str) -> None:
    page.evaluate(
        """([id, name]) => { const w = app.graph.getNodeById(id).widgets.find((w) => w.name === "name");
            w.value = name; w.callback?.(name); }""",
        [node, name],
    )
    settle(page)


def test_parameter_nodes_are_titled_by_name_and_duplicates_are_flagged(page):
    first = page.add_node("QG_ParamInt", {"name": "steps"}, pos=(50, 50))
    second = page.add_node("QG_ParamFloat", {"name": "cfg"}, pos=(50, 300))
    settle(page)
    assert param_state(page, first)["title"] == "steps"
    assert param_state(page, second) == {"title": "cfg", "duplicate": None, "color": None}

    rename(page, second, "steps")
    one, two = param_state(page, first), param_state(page, second)
    assert (one["title"], two["title"]) == ("steps", "steps")
    assert one["duplicate"] == [str(second)] and two["duplicate"] == [str(first)]
    assert one["color"] and two["color"], "duplicates are not coloured"
    page.wait_for_function("() => document.body.innerText.includes('Duplicate parameter name')", timeout=10_000)

    rename(page, second, "guidance")
    assert param_state(page, second) == {"title": "guidance", "duplicate": None, "color": None}
    assert param_state(page, first)["duplicate"] is None

    seed = page.add_node("QG_ParamSeed", pos=(400, 50))  # a fresh node takes its default name
    settle(page)
    assert param_state(page, seed)["title"] == "seed"
    prompt = page.graph_to_prompt()["output"]
    assert prompt[str(second)]["_meta"]["title"] == "guidance"


def retitle(page, node: int, title: str) -> None:
    """Give a node a title as the title editor does."""
    page.evaluate("([id, title]) => { app.graph.getNodeById(id).title = title; }", [node, title])
    settle(page)


def test_parameter_titles_typed_by_the_user_are_kept(page):
    typed = page.add_node("QG_ParamInt", {"name": "steps"}, pos=(50, 50))
    auto = page.add_node("QG_ParamFloat", {"name": "cfg"}, pos=(50, 300))
    settle(page)
    retitle(page, typed, "Sampling steps")
    rename(page, typed, "count")
    rename(page, auto, "guidance")
    assert param_state(page, typed)["title"] == "Sampling steps"
    assert param_state(page, auto)["title"] == "guidance"

    saved = page.evaluate("() => JSON.parse(JSON.stringify(app.graph.serialize()))")
    page.load_workflow(saved)
    settle(page)
    rename(page, typed, "n_steps")
    rename(page, auto, "scale")
    assert param_state(page, typed)["title"] == "Sampling steps"
    assert param_state(page, auto)["title"] == "scale"  # an automatic title still follows the name
    prompt = page.graph_to_prompt()["output"]
    assert prompt[str(typed)]["_meta"]["title"] == "Sampling steps"
    assert prompt[str(typed)]["inputs"]["name"] == "n_steps"

    retitle(page, typed, "")  # clearing the title hands it back to the name
    rename(page, typed, "steps")
    assert param_state(page, typed)["title"] == "steps"

    # a workflow saved before the title was remembered: a title other than the name is the user's
    saved = page.evaluate("() => JSON.parse(JSON.stringify(app.graph.serialize()))")
    node = next(n for n in saved["nodes"] if str(n["id"]) == str(auto))
    node["title"], node["properties"] = "Guidance scale", {}
    page.load_workflow(saved)
    settle(page)
    assert param_state(page, auto)["title"] == "Guidance scale"


# --- Save as Quality Gate template --------------------------------------------------------------------------


def build_scored_image(page) -> tuple[int, int]:
    """EmptyImage -> QG_TechnicalScore -> PreviewAny, with a width parameter: a template without weights."""
    image = page.add_node("EmptyImage", {"width": 32, "height": 24}, pos=(400, 50))
    score = page.add_node("QG_TechnicalScore", pos=(750, 50))
    preview = page.add_node("PreviewAny", pos=(1050, 50))
    width = page.add_node("QG_ParamInt", {"name": "width", "value": 32, "min": 8, "max": 256}, pos=(50, 50))
    link(page, image, 0, score, "image")
    link(page, score, 0, preview, "source")
    link(page, width, 0, image, "width")
    return image, score


def open_save_dialog(page) -> None:
    commands = page.evaluate("() => app.extensionManager.command.commands.map((c) => [c.id, c.label])")
    assert ["qg.SaveTemplate", LABEL] in commands
    menu = page.evaluate("() => app.canvas.getCanvasMenuOptions().filter(Boolean).map((o) => o.content)")
    assert LABEL in menu, "the canvas menu has no entry"
    page.evaluate('() => { app.extensionManager.command.execute("qg.SaveTemplate"); }')
    page.wait_for_selector("#qg-save-template", timeout=10_000)
    # in the frontend's own dialog (its title, close button and Escape), not an overlay of the pack's
    dialog = page.evaluate(
        """() => {
            const form = document.querySelector("#qg-save-template");
            const dialog = form.closest('[role="dialog"]');
            return { text: dialog?.textContent ?? null, onBody: form.parentElement === document.body };
        }"""
    )
    assert dialog["text"] is not None and LABEL in dialog["text"] and not dialog["onBody"], dialog


def save_from_dialog(page, name: str, press_enter: bool = False) -> None:
    page.fill("#qg-save-template-title", f"Title of {name}")
    page.fill("#qg-save-template-name", name)
    if press_enter:
        page.press("#qg-save-template-name", "Enter")
    else:
        page.click("#qg-save-template-save")


def saved_from_dialog(page, name: str, press_enter: bool = False) -> None:
    save_from_dialog(page, name, press_enter)
    page.wait_for_function(
        "() => !document.querySelector('#qg-save-template') || document.querySelector('#qg-save-template-status')"
        "?.dataset.ok === 'false'",
        timeout=20_000,
    )
    if page.locator("#qg-save-template").count():
        pytest.fail("not saved: " + page.text_content("#qg-save-template-status"))


def listed(client: ComfyClient, name: str) -> dict | None:
    return next((t for t in client.get("/qg/templates")["templates"] if t["name"] == name), None)


def test_save_template_command_saves_what_the_server_then_lists(page, client):
    build_scored_image(page)
    open_save_dialog(page)
    save_from_dialog(page, "bad name!")  # refused in the dialog: nothing sent
    assert "letters, digits" in page.text_content("#qg-save-template-status")
    saved_from_dialog(page, "browser_saved", press_enter=True)

    entry = listed(client, "browser_saved")
    assert entry is not None and entry["source"] == "user"
    assert entry["title"] == "Title of browser_saved" and entry["params"] == 1
    template = client.get("/qg/templates/browser_saved")
    assert [p["name"] for p in template["params"]] == ["width"]

    # the same name again: the dialog asks first, and only a second Save replaces the template
    open_save_dialog(page)
    page.fill("#qg-save-template-title", "Replaced")
    page.fill("#qg-save-template-name", "browser_saved")
    page.click("#qg-save-template-save")
    page.wait_for_function(
        "() => document.querySelector('#qg-save-template-status')?.dataset.ok === 'exists'", timeout=20_000
    )
    assert "already exists" in page.text_content("#qg-save-template-status")
    assert listed(client, "browser_saved")["title"] == "Title of browser_saved"  # nothing sent yet
    page.click("#qg-save-template-save")
    page.wait_for_selector("#qg-save-template", state="detached", timeout=20_000)
    assert listed(client, "browser_saved")["title"] == "Replaced"


def test_save_template_shows_the_servers_error(page, client):
    build_scored_image(page)
    page.add_node("QG_ParamInt", {"name": "width"}, pos=(50, 400))  # a second "width": the server refuses
    open_save_dialog(page)
    save_from_dialog(page, "browser_refused")
    page.wait_for_function(
        "() => document.querySelector('#qg-save-template-status')?.dataset.ok === 'false'", timeout=20_000
    )
    status = page.text_content("#qg-save-template-status")
    assert "Not saved (400)" in status and "width" in status, status
    assert listed(client, "browser_refused") is None
    page.click("#qg-save-template-cancel")
    page.wait_for_selector("#qg-save-template", state="detached", timeout=10_000)


def test_save_template_dialog_closes_and_opens_again_like_the_frontends_dialogs(page, client):
    """Escape closes it (the frontend's dialog does that), and it opens again at once, while the last one may
    still be fading out; keys typed into its fields never reach the canvas."""
    build_scored_image(page)
    open_save_dialog(page)
    page.keyboard.press("Escape")
    page.wait_for_selector("#qg-save-template", state="detached", timeout=10_000)
    open_save_dialog(page)
    select_all = "() => { app.canvas.selectItems ? app.canvas.selectItems() : app.canvas.selectNodes(); }"
    page.evaluate(select_all)
    nodes = page.evaluate("() => app.graph.nodes.length")
    page.fill("#qg-save-template-name", "")
    page.type("#qg-save-template-name", "typed_here")
    page.press("#qg-save-template-name", "Backspace")
    page.press("#qg-save-template-name", "Delete")  # on the canvas these delete the selected nodes
    assert page.evaluate("() => app.graph.nodes.length") == nodes
    assert page.input_value("#qg-save-template-name") == "typed_her"
    page.click("#qg-save-template-cancel")
    page.wait_for_selector("#qg-save-template", state="detached", timeout=10_000)
    assert listed(client, "typed_here") is None


APP_MODE_STORE = """() => {
    const root = [...document.querySelectorAll("body *")].find((el) => el.__vue_app__);
    return root?.__vue_app__.config.globalProperties.$pinia?._s.get("appMode") ?? null;
}"""


@pytest.mark.parametrize("frontend_server", [NEWEST_FRONTEND], indirect=True, ids=["app-mode"])
def test_app_mode_inputs_are_offered_as_named_parameters(page, client):
    """The App Mode builder exists on the newest frontend only (1.32.9 has none)."""
    assert page.evaluate(f"() => !!({APP_MODE_STORE})()"), f"frontend {frontend_version(page)}: no App Mode"
    image, score = build_scored_image(page)
    # Choose inputs the way the App Mode builder does: enter the builder, select, leave (the frontend then
    # keeps them in the workflow's extra.linearData with its own widget ids).
    page.evaluate(
        f"""async ([image, score]) => {{
            const store = ({APP_MODE_STORE})();
            await store.enterBuilder();
            store.loadSelections({{inputs: [[image, "height"], [image, "color"]], outputs: [score]}});
            await new Promise((resolve) => setTimeout(resolve, 300));
            await store.exitBuilder();
        }}""",
        [image, score],
    )
    chosen = page.evaluate("() => app.rootGraph.extra.linearData?.inputs ?? []")
    assert [entry[1] for entry in chosen] == ["height", "color"]

    open_save_dialog(page)
    names = page.eval_on_selector_all("#qg-save-template .qg-param-name", "els => els.map((e) => e.value)")
    assert names == ["height", "color"]
    page.fill("#qg-save-template .qg-param-name >> nth=1", "background")
    saved_from_dialog(page, "browser_app_mode")

    template = client.get("/qg/templates/browser_app_mode")
    params = {p["name"]: (p["type"], p["default"]) for p in template["params"]}
    assert params == {"width": ("int", 32), "height": ("int", 24), "background": ("int", 0)}


def test_widgets_become_parameters_of_the_matching_kind(page):
    """What the template command turns an App Mode input into, on a KSampler (no weights needed)."""
    sampler = page.add_node("KSampler", {"seed": 7, "steps": 12, "cfg": 6.5}, pos=(400, 50))
    kinds = page.evaluate(
        """async (id) => {
            const { paramFor } = await import("/extensions/quality_gate/save_template.js");
            const node = app.graph.getNodeById(id);
            const value = (name) => node.widgets.find((w) => w.name === name).value;
            const kinds = {};
            for (const name of ["seed", "steps", "cfg", "sampler_name", "denoise"]) {
                const param = paramFor(node, name, value(name), name, "");
                kinds[name] = [param.class_type, param.inputs.value, param.inputs.policy ?? null];
            }
            kinds.linked = paramFor(node, "model", ["1", 0], "model", "");
            return kinds;
        }""",
        sampler,
    )
    assert kinds["seed"] == ["QG_ParamSeed", 7, "random"]  # control_after_generate defaults to randomize
    assert kinds["steps"] == ["QG_ParamInt", 12, None]
    assert kinds["cfg"] == ["QG_ParamFloat", 6.5, None]
    assert kinds["sampler_name"][0] == "QG_ParamChoice"
    assert kinds["denoise"][0] == "QG_ParamFloat"
    assert kinds["linked"] is None


@pytest.mark.parametrize("frontend_server", [NEWEST_FRONTEND], indirect=True, ids=["subgraph"])
def test_parameters_and_app_mode_inputs_inside_a_subgraph_are_saved(page, client):
    """A parameter node converted into a subgraph (the frontend's own command) stays a parameter of the saved
    template, and an App Mode input on a widget the frontend promoted to the subgraph node becomes a
    parameter feeding the inner widget (by its execution id outer:inner); the template runs by name."""
    image, score = build_scored_image(page)
    width = page.evaluate("() => Number(app.graph.nodes.find((n) => n.type === 'QG_ParamInt').id)")
    sub = page.convert_to_subgraph([image, width])
    promoted = page.evaluate(
        """(id) => {
            const node = app.graph.getNodeById(id);
            const slot = node.subgraph.inputs.find((i) => i.name === "height")
                ?? node.subgraph.addInput("height", "INT");
            const inner = node.subgraph.nodes.find((n) => n.type === "EmptyImage");
            const target = inner.inputs.findIndex((i) => i.name === "height");
            if (!slot.linkIds.length) node.subgraph.inputNode.slots.at(-1).connect(inner.inputs[target], inner);
            const outer = node.inputs.find((i) => i.name === "height");
            return {slot: slot.name, outer: !!outer, widgetId: outer?.widgetId ?? null, inner: Number(inner.id)};
        }""",
        sub,
    )
    assert promoted["outer"], promoted
    page.evaluate(
        f"""async ([sub]) => {{
            const store = ({APP_MODE_STORE})();
            await store.enterBuilder();
            store.loadSelections({{inputs: [[sub, "height"]], outputs: []}});
            await new Promise((resolve) => setTimeout(resolve, 300));
            await store.exitBuilder();
        }}""",
        [sub],
    )
    open_save_dialog(page)
    labels = page.eval_on_selector_all("#qg-save-template label", "els => els.map((e) => e.textContent)")
    assert any(f"#{sub}:{promoted['inner']} · height" in text for text in labels), labels
    saved_from_dialog(page, "browser_subgraph")

    template = client.get("/qg/templates/browser_subgraph")
    assert {p["name"] for p in template["params"]} == {"width", "height"}
    workflow = client.get("/qg/templates/browser_subgraph")["workflow"]
    height_param = next(
        k for k, v in workflow.items() if v["class_type"] == "QG_ParamInt" and v["inputs"]["name"] == "height"
    )
    assert workflow[f"{sub}:{promoted['inner']}"]["inputs"]["height"] == [height_param, 0]
    run = client.request("POST", "/qg/templates/browser_subgraph/run", {"params": {"width": 40, "height": 20}})
    result = client.wait_finished(run["prompt_id"], 60)
    assert result["status"]["status_str"] == "success"


@pytest.mark.parametrize("frontend_server", [NEWEST_FRONTEND], indirect=True, ids=["tabs"])
def test_a_loop_shows_only_in_the_tab_that_queued_it(page):
    """A loop queued from tab A, then a second tab B opened with the same graph (the same node ids): while and
    after A's prompt runs, B's Retry End shows nothing; back on tab A (the frontend's own tab switching) the
    finished loop is shown."""
    from test_browser_results import build_loop, panel_text, wait_for_history, wait_text

    end = build_loop(page)
    tabs = page.evaluate(
        """async () => {
            const store = app.extensionManager.workflow;
            const workflow = app.graph.serialize();
            return {first: store.activeWorkflow.path, workflow};
        }"""
    )
    prompt_id = page.queue()
    second = page.evaluate(
        """async (workflow) => {
            await app.extensionManager.command.execute("Comfy.NewBlankWorkflow");
            await app.loadGraphData(workflow);
            return app.extensionManager.workflow.activeWorkflow.path;
        }""",
        tabs["workflow"],
    )
    assert second != tabs["first"]
    assert wait_for_history(page.server, prompt_id)["status"]["status_str"] == "success"
    page.wait_for_timeout(500)
    assert page.evaluate("(id) => app.graph.getNodeById(id)?.type", end) == "QG_RetryEnd"
    assert panel_text(page, end) is None
    assert page.evaluate("(id) => app.graph.getNodeById(id).properties.qg_loop ?? null", end) is None

    back = page.evaluate(
        """async (first) => {
            const store = app.extensionManager.workflow;
            for (let i = 0; i < store.openWorkflows.length && store.activeWorkflow.path !== first; i++) {
                await app.extensionManager.command.execute("Workspace.PreviousOpenedWorkflow");
                await new Promise((resolve) => setTimeout(resolve, 300));
            }
            return store.activeWorkflow.path;
        }""",
        tabs["first"],
    )
    assert back == tabs["first"]
    assert "attempt 4/5 · best 6.50 · passed" in wait_text(page, end, "· passed")
