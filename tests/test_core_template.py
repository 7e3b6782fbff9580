"""Plain logic of template parameters (no ComfyUI): parameters, schema, validation, overrides, sweeps,
template folders, boolean guard."""

import json

import pytest
from quality_gate.nodes.core.errors import QGError
from quality_gate.nodes.core.template.errors import TemplateError
from quality_gate.nodes.core.template.fill import SeedState, guard_booleans, prepare
from quality_gate.nodes.core.template.runs import outputs_by_title
from quality_gate.nodes.core.template.schema import Template
from quality_gate.nodes.core.template.store import TemplateStore
from quality_gate.nodes.core.template.sweep import MAX_SWEEP, expand_sweep
from quality_gate.nodes.registry import NODES
from quality_gate.nodes.template import ParamChoice, ParamInt

SPECS = {
    "EmptyImage": {
        "required": {
            "width": ("INT", {"default": 512, "min": 1, "max": 16384}),
            "height": ("INT", {"default": 512, "min": 1, "max": 16384}),
            "batch_size": ("INT", {"default": 1, "min": 1, "max": 4096}),
        }
    },
    "Sampler": {"required": {"sampler_name": (["euler", "dpmpp_2m", "ddim"],), "cfg": ("FLOAT", {"min": 0.0})}},
    "Save": {"required": {"images": ("IMAGE",), "filename_prefix": ("STRING", {})}},
}
SPECS.update({node: cls.INPUT_TYPES() for node, cls in NODES.items()})
specs = SPECS.get


def workflow():
    return {
        "1": {"class_type": "QG_ParamInt", "inputs": {"name": "width", "value": 64, "min": -5, "max": 99999}},
        "2": {
            "class_type": "QG_ParamChoice",
            "inputs": {"name": "sampler", "value": "euler", "choices": "euler\nlms\nddim"},
        },
        "3": {"class_type": "QG_ParamFloat", "inputs": {"name": "cfg", "value": 7.0, "min": -1.0, "max": 30.0}},
        "4": {"class_type": "QG_ParamSeed", "inputs": {"name": "seed", "value": 5, "policy": "increment"}},
        "5": {
            "class_type": "QG_ParamText",
            "inputs": {"name": "prompt", "value": "", "required": True, "description": "d"},
        },
        "6": {"class_type": "EmptyImage", "_meta": {"title": "Canvas"}, "inputs": {"width": ["1", 0], "height": 8}},
        "7": {
            "class_type": "Sampler",
            "_meta": {"title": "Twin"},
            "inputs": {"sampler_name": ["2", 0], "cfg": ["3", 0]},
        },
        "8": {"class_type": "Sampler", "_meta": {"title": "Twin"}, "inputs": {"sampler_name": "ddim", "cfg": 1.0}},
    }


def build():
    return Template.build("t", workflow(), specs)


def errors_of(values, template=None):
    with pytest.raises(TemplateError) as info:
        prepare(template or build(), values, specs, SeedState())
    return info.value.errors


def test_schema_types_defaults_bounds_narrowed_by_the_inputs_fed():
    schema = build().schema()
    assert schema["$schema"].endswith("2020-12/schema") and schema["additionalProperties"] is False
    props = schema["properties"]
    assert props["width"] == {
        "default": 64,
        "maximum": 16384,
        "minimum": 1,
        "title": "width",
        "type": "integer",
    }
    assert props["sampler"]["enum"] == ["euler", "ddim"]  # lms is not an option of the sampler it feeds
    assert props["cfg"]["minimum"] == 0.0 and props["cfg"]["maximum"] == 30.0 and props["cfg"]["type"] == "number"
    assert props["seed"]["x-qg-policy"] == "increment"
    assert props["prompt"]["description"] == "d" and schema["required"] == ["prompt"]
    assert len(schema["x-qg-hash"]) == 16
    assert build().info()["warnings"] == [
        "parameter 'seed' (node 4) feeds no input",
        "parameter 'prompt' (node 5) feeds no input",
    ]


def test_every_problem_at_once_keyed_by_name():
    errors = errors_of({"widht": 3, "sampler": "lms", "cfg": "7", "Canvas.batch_size": 0.5, "seed": True})
    assert "did you mean 'width'" in errors["widht"][0]
    assert "'euler' or 'ddim'" in errors["sampler"][0]
    assert "valid number" in errors["cfg"][0]  # strict: nothing is guessed from strings
    assert "valid integer" in errors["Canvas.batch_size"][0]
    assert "valid integer" in errors["seed"][0]
    assert errors["prompt"][0].startswith("required")


def test_int_accepted_for_float_and_values_filled_in():
    prompt, used = prepare(build(), {"prompt": "cat", "cfg": 3, "Canvas.height": 32, "7.cfg": 2}, specs, SeedState())
    assert used["cfg"] == 3.0 and prompt["3"]["inputs"]["value"] == 3.0
    assert prompt["6"]["inputs"]["height"] == 32 and prompt["7"]["inputs"]["cfg"] == 2
    assert prompt["1"]["inputs"]["value"] == 64


def test_override_errors():
    errors = errors_of({"prompt": "x", "Twin.cfg": 1.0, "Canvs.width": 3, "Canvas.colour": 1, "Canvas.width": 1})
    assert "ambiguous" in errors["Twin.cfg"][0] and "7, 8" in errors["Twin.cfg"][0]
    assert "did you mean 'Canvas'" in errors["Canvs.width"][0]
    assert "no input 'colour'" in errors["Canvas.colour"][0]
    errors = errors_of({"prompt": "x", "Save.images": 1}, Template.build("s", {"1": {"class_type": "Save"}}, specs))
    assert "socket" in errors["Save.images"][0]


def test_seed_policies():
    template, seeds = build(), SeedState()
    used = [prepare(template, {"prompt": "x"}, specs, seeds)[1]["seed"] for _ in range(3)]
    assert used == [5, 6, 7]
    assert prepare(template, {"prompt": "x", "seed": 42}, specs, seeds)[1]["seed"] == 42
    preview = seeds.preview()  # a dry run: the same next seeds, none used up
    assert [prepare(template, {"prompt": "x"}, specs, preview)[1]["seed"] for _ in range(2)] == [8, 9]
    assert prepare(template, {"prompt": "x"}, specs, seeds)[1]["seed"] == 8
    wf = workflow()
    wf["4"]["inputs"]["policy"] = "random"
    template = Template.build("r", wf, specs)
    drawn = {prepare(template, {"prompt": "x"}, specs, seeds)[1]["seed"] for _ in range(5)}
    assert len(drawn) == 5


def test_broken_templates():
    wf = workflow()
    wf["9"] = {"class_type": "QG_ParamInt", "inputs": {"name": "width", "value": 1}}
    with pytest.raises(TemplateError, match="several nodes"):
        Template.build("d", wf, specs)
    with pytest.raises(TemplateError, match="missing node 42"):
        Template.build("b", {"1": {"class_type": "Save", "inputs": {"images": ["42", 0]}}}, specs)
    with pytest.raises(TemplateError, match="unknown node type"):
        Template.build("u", {"1": {"class_type": "Nope", "inputs": {}}}, specs)
    with pytest.raises(TemplateError, match="UI format"):
        Template.build("ui", {"nodes": [], "links": []}, specs)
    wf = workflow()
    wf["1"]["inputs"]["value"] = 0  # the EmptyImage it feeds needs >= 1
    with pytest.raises(TemplateError, match="the default is not valid: Input should be greater than or equal to 1"):
        Template.build("d", wf, specs)
    with pytest.raises(TemplateError, match="identifier"):
        Template.build("n", {"1": {"class_type": "QG_ParamInt", "inputs": {"name": "1 bad", "value": 1}}}, specs)


def test_sweeps():
    items = expand_sweep({"a": 1}, {"b": [1, 2], "seed": {"start": 10, "count": 3}}, "product")
    assert len(items) == 6 and items[0] == {"a": 1, "b": 1, "seed": 10} and items[-1]["seed"] == 12
    assert expand_sweep({}, {"b": [1, 2], "c": ["x", "y"]}, "zip") == [{"b": 1, "c": "x"}, {"b": 2, "c": "y"}]
    with pytest.raises(TemplateError, match="equal length"):
        expand_sweep({}, {"b": [1, 2], "c": [1]}, "zip")
    with pytest.raises(TemplateError, match=f"capped at {MAX_SWEEP}"):
        expand_sweep({}, {"b": list(range(40)), "c": list(range(30))}, "product")
    with pytest.raises(TemplateError, match="non-empty"):
        expand_sweep({}, {"b": []}, "product")


def test_store_names_and_atomic_writes(tmp_path):
    pack, user = tmp_path / "pack", tmp_path / "user"
    pack.mkdir()
    (pack / "ours.json").write_text(json.dumps(workflow()))
    (tmp_path / "secret.json").write_text("{}")
    store = TemplateStore(pack, user)
    for bad in ("../secret", "a/b", "", "x" * 65, "a.b", "..", "%2e%2e"):
        with pytest.raises(TemplateError, match="template names"):
            store.locate(bad)
    with pytest.raises(TemplateError) as info:
        store.save("ours", workflow())
    assert info.value.status == 409
    store.save("mine", workflow(), "Mine", "desc")
    assert store.names() == ["ours", "mine"] and [p.name for p in user.iterdir()] == ["mine.json"]
    assert store.load("mine", specs).title == "Mine"
    with pytest.raises(TemplateError) as info:
        store.locate("nothere")
    assert info.value.status == 404


def test_boolean_guard_reads_spelled_booleans_and_refuses_the_rest():
    prompt = {"1": {"class_type": "QG_Gate", "inputs": {"open": "False", "value": ["2", 0]}}, "2": {"class_type": "X"}}
    prompt["3"] = {"class_type": "QG_Gate", "inputs": {"open": "no"}}
    prompt["4"] = {"class_type": "QG_Gate", "inputs": {"open": {"__value__": "false"}}}
    guard_booleans(prompt, lambda c: {"open"} if c == "QG_Gate" else set())
    assert prompt["1"]["inputs"]["open"] is False and prompt["4"]["inputs"]["open"] is False
    with pytest.raises(QGError, match=r"QG_Gate #3: input 'open' is a BOOLEAN; the string 'no'"):
        bool(prompt["3"]["inputs"]["open"])
    assert json.dumps(prompt["3"]["inputs"]["open"]) == '"no"'


def test_outputs_by_title():
    prompt = {
        "1": {"class_type": "Save", "_meta": {"title": "a"}},
        "2": {"class_type": "Save", "_meta": {"title": "a"}},
    }
    prompt["3"] = {"class_type": "Save"}
    assert set(outputs_by_title(prompt, {"1": {}, "2": {}, "3": {}})) == {"a #1", "a #2", "Save"}


def test_param_nodes_validate_on_the_canvas():
    assert ParamInt.VALIDATE_INPUTS(name="w", value=5, min=6, max=9) == "value 5 is below min 6"
    assert "not one of the choices" in ParamChoice.VALIDATE_INPUTS(name="c", value="z", choices="a\nb")
    assert "identifier" in ParamInt.VALIDATE_INPUTS(name="bad name", value=1, min=0, max=9)
    # ComfyUI skips its own range check on inputs VALIDATE_INPUTS takes: the declared range is checked here
    assert ParamInt.VALIDATE_INPUTS(name="w", value=1, min=0, max=2**65).startswith("max 3689348814741910323")
    assert "below the smallest INT" in ParamInt.VALIDATE_INPUTS(name="w", value=-(2**65), min=None, max=None)
    assert ParamInt().execute(name="w", value=7, min=0, max=9) == (7,)
