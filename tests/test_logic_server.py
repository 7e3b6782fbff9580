"""The logic nodes on the real ComfyUI executor, under all four cache modes.

Laziness is proven by counting executions (QGTest_Probe counts its own calls server-side), not by outputs.
"""

import json

import pytest
from harness import PromptRejected
from helpers import Graph, recorded, run_ok


def run_error(client, graph):
    result = client.run(graph.nodes)
    assert result.status == "error" and result.error is not None, result.history
    return result.error["exception_message"]


def rejected(client, graph) -> str:
    with pytest.raises(PromptRejected) as info:
        client.run(graph.nodes)
    return info.value.messages()


# --- Switch -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("condition", [True, False])
def test_switch_runs_only_the_chosen_branch(cclient, graph, condition):
    on_true = graph.probe("true", delay=0.0)
    on_false = graph.probe("false", delay=0.0)
    cond = graph.out(graph.add("QG_Compare", a=graph.json("1" if condition else "0"), comparison="==", b=1))
    switch = graph.add("QG_Switch", condition=cond, on_true=on_true, on_false=on_false)
    out = graph.record(graph.out(switch))
    result = run_ok(cclient, graph)
    chosen, other = ("true", "false") if condition else ("false", "true")
    assert recorded(result, out) == graph.label(chosen)
    counts = graph.counts(cclient)
    assert counts.get(chosen) == 1 and other not in counts, counts
    assert on_true[0] in result.executed if condition else on_false[0] in result.executed
    assert (on_false if condition else on_true)[0] not in result.executed


def test_switch_skips_a_slow_branch(cclient, graph):
    slow = graph.probe("slow", delay=5.0)
    switch = graph.add("QG_Switch", condition=True, on_true=graph.json('"fast"'), on_false=slow)
    out = graph.record(graph.out(switch))
    result = run_ok(cclient, graph)
    assert recorded(result, out) == "fast"
    assert result.seconds < 4.0 and "slow" not in graph.counts(cclient)


def test_switch_unconnected_choice_is_an_error_naming_it(cclient, graph):
    cond = graph.out(graph.add("QG_BoolOp", op="not", a=True))  # linked: decided only at run time
    switch = graph.add("QG_Switch", condition=cond, on_true=graph.probe("t"))
    graph.record(graph.out(switch))
    message = run_error(cclient, graph)
    assert f"Switch (QG) #{switch}" in message and "chooses on_false, but on_false is not connected" in message
    assert "t" not in graph.counts(cclient)


def test_switch_validation_rejects_a_constant_choice_of_nothing(cclient, graph):
    switch = graph.add("QG_Switch", condition=False, on_true=graph.probe("t"))
    graph.record(graph.out(switch))
    assert "chooses on_false, but on_false is not connected" in rejected(cclient, graph)
    graph2 = Graph()
    graph2.record(graph2.out(graph2.add("QG_Switch", condition=True)))
    assert "connect on_true or on_false" in rejected(cclient, graph2)


def test_any_output_links_into_typed_and_combo_inputs(cclient, graph):
    image = graph.out(graph.add("EmptyImage", width=8, height=8, batch_size=1, color=0))
    method = graph.out(graph.add("QG_Switch", condition=True, on_true=graph.json('"bilinear"')))
    picked = graph.out(graph.add("QG_Switch", condition=True, on_true=image))
    scaled = graph.add("ImageScale", image=picked, upscale_method=method, width=16, height=12, crop="disabled")
    out = graph.record(graph.out(scaled))
    result = run_ok(cclient, graph)
    assert recorded(result, out)["tensor"] == [1, 12, 16, 3]


# --- Select -------------------------------------------------------------------------------------------


def test_select_index_runs_only_that_input(cclient, graph):
    slots = {f"input_{i}": graph.probe(f"in{i}") for i in (1, 2, 3, 7)}
    index = graph.json("3")
    select = graph.add("QG_Select", mode="index", index=index, **slots)
    out = graph.record(graph.out(select))
    picked = graph.record(graph.out(select, 1), name="index")
    result = run_ok(cclient, graph)
    assert recorded(result, out) == graph.label("in3") and recorded(result, picked) == 3
    counts = graph.counts(cclient)
    assert counts.get("in3") == 1 and not {"in1", "in2", "in7"} & set(counts), counts


def test_select_unconnected_or_out_of_range_slot_is_an_error(cclient, graph):
    select = graph.add(
        "QG_Select", mode="index", index=graph.json("5"), input_1=graph.probe("a"), input_2=graph.probe("b")
    )
    graph.record(graph.out(select))
    message = run_error(cclient, graph)
    assert f"Select (QG) #{select}" in message
    assert "index 5 chooses input_5, which is not connected (connected: input_1, input_2)" in message
    assert graph.counts(cclient) == {}

    graph2 = Graph()
    select = graph2.add("QG_Select", mode="index", index=graph2.json("17"), input_1=graph2.probe("a"))
    graph2.record(graph2.out(select))
    assert "index must be an INT from 1 to 16, got INT 17" in run_error(cclient, graph2)

    graph3 = Graph()
    graph3.record(graph3.out(graph3.add("QG_Select", mode="index", index=0, input_1=graph3.probe("a"))))
    assert "Value 0 smaller than min of 1" in rejected(cclient, graph3)


def test_select_first_non_empty_runs_inputs_in_order_until_one_is_non_empty(cclient, graph):
    slots = {
        "input_1": graph.probe("empty-string", value=graph.json('""')),
        "input_2": graph.probe("empty-list", value=graph.json("[]")),
        "input_4": graph.probe("cat", value=graph.json('"cat"')),
        "input_5": graph.probe("never"),
    }
    select = graph.add("QG_Select", mode="first_non_empty", index=1, **slots)
    out = graph.record(graph.out(select))
    picked = graph.record(graph.out(select, 1), name="index")
    result = run_ok(cclient, graph)
    assert recorded(result, out) == "cat" and recorded(result, picked) == 4
    counts = graph.counts(cclient)
    assert counts.get("empty-string") == counts.get("empty-list") == counts.get("cat") == 1
    assert "never" not in counts


def test_select_first_non_empty_goes_past_an_input_that_gives_none(cclient, graph):
    graph2 = graph
    slots = {
        "input_2": graph2.json("null"),  # runs and gives None, which ComfyUI also uses for "not run yet"
        "input_3": graph2.probe("empty", value=graph2.json("{}")),
        "input_6": graph2.probe("tensor", value=graph2.out(graph2.add("QGTest_Tensor", shape="1,2,2,3", fill=1.0))),
        "input_9": graph2.probe("never"),
    }
    select = graph2.add("QG_Select", mode="first_non_empty", index=1, **slots)
    out = graph2.record(graph2.out(select))
    picked = graph2.record(graph2.out(select, 1), name="index")
    result = run_ok(cclient, graph2)
    assert recorded(result, out) == {"tensor": [1, 2, 2, 3], "sum": 12.0} and recorded(result, picked) == 6
    counts = graph2.counts(cclient)
    assert counts.get("empty") == 1 and counts.get("tensor") == 1 and "never" not in counts, counts


def test_select_first_non_empty_with_every_input_empty_is_an_error(cclient, graph):
    select = graph.add(
        "QG_Select",
        mode="first_non_empty",
        index=1,
        input_1=graph.json('""'),
        input_3=graph.out(graph.add("QGTest_Tensor", shape="0,4", fill=0.0)),
    )
    graph.record(graph.out(select))
    message = run_error(cclient, graph)
    assert "first_non_empty found every connected input empty: input_1 (STRING ''), input_3 (TENSOR [0, 4])" in message


# --- BoolOp -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "op, a, b, expected, b_runs",
    [
        ("and", False, True, False, False),
        ("and", True, True, True, True),
        ("or", True, False, True, False),
        ("or", False, False, False, True),
        ("nand", False, False, True, False),
        ("nor", True, False, False, False),
        ("xor", True, True, False, True),
        ("not", True, True, False, False),
    ],
)
def test_boolop_short_circuits(cclient, graph, op, a, b, expected, b_runs):
    b_value = graph.probe("b", value=graph.out(graph.add("QG_BoolOp", op="not", a=not b)))
    node = graph.add("QG_BoolOp", op=op, a=graph.out(graph.add("QG_BoolOp", op="not", a=not a)), b=b_value)
    out = graph.record(graph.out(node))
    result = run_ok(cclient, graph)
    assert recorded(result, out) is expected
    assert ("b" in graph.counts(cclient)) is b_runs


def test_boolop_needs_b_for_binary_ops(cclient, graph):
    graph.record(graph.out(graph.add("QG_BoolOp", op="and", a=True)))
    assert "op 'and' needs input b" in rejected(cclient, graph)


# --- Gate ---------------------------------------------------------------------------------------------


def _gated_save(graph, open_, on_closed="block"):
    image = graph.probe("image", value=graph.out(graph.add("EmptyImage", width=8, height=8, batch_size=1, color=255)))
    gate = graph.add("QG_Gate", value=image, open=open_, on_closed=on_closed)
    save = graph.add("SaveImage", images=graph.out(gate), filename_prefix=f"gate-{graph.salt}")
    other = graph.record(graph.json('"still runs"'), name="other")
    return save, other


def _saved(server, graph):
    return sorted(p.name for p in server.output_dir.glob(f"gate-{graph.salt}*"))


def test_closed_gate_blocks_the_save_and_the_prompt_succeeds(cache_server, cclient, graph):
    save, other = _gated_save(graph, open_=graph.out(graph.add("QG_BoolOp", op="not", a=True)))
    result = run_ok(cclient, graph)
    assert save not in result.outputs and recorded(result, other) == "still runs"
    assert _saved(cache_server, graph) == []
    assert "image" not in graph.counts(cclient)  # the gated value never ran


def test_open_gate_passes_the_value(cache_server, cclient, graph):
    save, _ = _gated_save(graph, open_=True)
    result = run_ok(cclient, graph)
    assert len(result.outputs[save]["images"]) == 1 and len(_saved(cache_server, graph)) == 1
    assert graph.counts(cclient)["image"] == 1


def test_closed_gate_in_error_mode_fails_with_a_message(cache_server, cclient, graph):
    save, _ = _gated_save(graph, open_=False, on_closed="error")
    message = run_error(cclient, graph)
    gate = next(k for k, v in graph.nodes.items() if v["class_type"] == "QG_Gate")
    assert f"Gate (QG) #{gate}: the gate is closed" in message
    assert _saved(cache_server, graph) == []


# --- Compare ------------------------------------------------------------------------------------------

COMPARE_CASES = [
    ("7", ">=", "5", None, {}, True),
    ("7", "greater_equal", '"5"', None, {}, True),  # numeric string against a number
    ('"10"', "<", '"9"', None, {}, True),  # two strings compare as strings
    ("0.30000000000000004", "equal", "0.3", None, {}, False),
    ("0.30000000000000004", "equal", "0.3", None, {"tolerance": 1e-9}, True),
    ("NaN", "not_equal", "NaN", None, {}, True),
    ("NaN", "<=", "1", None, {}, False),
    ("NaN", "==", "NaN", None, {}, False),
    ("5", "between", "1", "5", {}, True),
    ("6", "between", "1", "5", {}, False),
    ('"Black Cat"', "contains", '"cat"', None, {"case_sensitive": False}, True),
    ('"Black Cat"', "contains", '"cat"', None, {"case_sensitive": True}, False),
    ('["a", "b"]', "contains", '"b"', None, {}, True),
    ('{"k": 1}', "not_contains", '"k"', None, {}, False),
    ('"portrait of"', "starts_with", '"portrait"', None, {}, True),
    ('"image.PNG"', "ends_with", '".png"', None, {"case_sensitive": False}, True),
    ('"sdxl_base.safetensors"', "matches_regex", '"^sdxl.*safetensors$"', None, {}, True),
    ('""', "is_empty", None, None, {}, True),
    ("[]", "is_empty", None, None, {}, True),
    ("0", "is_empty", None, None, {}, False),
    ("null", "is_empty", None, None, {}, True),
    ('" "', "is_not_empty", None, None, {}, True),
    ("true", "==", "1", None, {}, True),
]


def test_compare_semantics_on_the_server(cclient, graph):
    expected = {}
    for a, comparison, b, c, extra, want in COMPARE_CASES:
        inputs = {"a": graph.json(a), "comparison": comparison, **extra}
        if b is not None:
            inputs["b"] = graph.json(b)
        if c is not None:
            inputs["c"] = graph.json(c)
        node = graph.add("QG_Compare", **inputs)
        expected[graph.record(graph.out(node), name=f"r{node}")] = (want, (a, comparison, b, c, extra))
        graph.record(graph.out(node, 1), name=f"e{node}")
    tensor = graph.out(graph.add("QGTest_Tensor", shape="1", fill=2.5))
    empty = graph.out(graph.add("QGTest_Tensor", shape="0,8,8,3", fill=0.0))
    for a, comparison, b, want in [
        (tensor, ">", 2, True),
        (tensor, "==", "2.5", True),
        (empty, "is_empty", None, True),
    ]:
        node = graph.add("QG_Compare", a=a, comparison=comparison, **({} if b is None else {"b": b}))
        expected[graph.record(graph.out(node), name=f"r{node}")] = (want, (comparison,))
    result = run_ok(cclient, graph)
    for out, (want, case) in expected.items():
        assert recorded(result, out) is want, case


def test_compare_explanation_on_the_server(cclient, graph):
    node = graph.add("QG_Compare", a=graph.json("7"), comparison=">=", b=5)
    out = graph.record(graph.out(node, 1))
    assert recorded(run_ok(cclient, graph), out) == "INT 7 >= INT 5: true"


@pytest.mark.parametrize(
    "a, comparison, b, c, message",
    [
        ('"abc"', "greater_than", "3", None, "greater_than cannot compare a (STRING 'abc') with b (INT 3)"),
        ("[1, 2]", "<", "3", None, "less_than cannot compare a (LIST (2 items)) with b (INT 3)"),
        ("5", "between", "9", "1", "between needs b <= c"),
        ('"x"', "matches_regex", '"(["', None, "is not a valid regular expression"),
        ("5", "contains", "5", None, "contains needs a to be a STRING, LIST, TUPLE or DICT"),
        ('"x"', "==", "[1]", None, "equal cannot compare a (STRING 'x') with b (LIST (1 items))"),
    ],
)
def test_compare_errors_name_node_comparison_and_types(cclient, graph, a, comparison, b, c, message):
    inputs = {"a": graph.json(a), "comparison": comparison, "b": graph.json(b)}
    if c is not None:
        inputs["c"] = graph.json(c)
    node = graph.add("QG_Compare", **inputs)
    graph.record(graph.out(node))
    error = run_error(cclient, graph)
    assert error.startswith(f"Compare (QG) #{node}: ") and message in error, error


@pytest.mark.parametrize(
    "inputs, message",
    [
        ({"comparison": ">="}, "comparison 'greater_equal' needs input b"),
        ({"comparison": "between", "b": 1}, "comparison 'between' needs input c"),
        ({"comparison": "matches_regex", "b": "(["}, "is not a valid regular expression"),
        ({"comparison": "=>", "b": 1}, "comparison '=>' is not known"),
    ],
)
def test_compare_validation_errors(cclient, graph, inputs, message):
    graph.record(graph.out(graph.add("QG_Compare", a=graph.json("1"), **inputs)))
    assert message in rejected(cclient, graph)


def test_requeue_unchanged(cache_server, cclient, graph):
    """An unchanged re-queue runs nothing again (except with --cache-none), and never the unchosen branch."""
    switch = graph.add("QG_Switch", condition=True, on_true=graph.probe("t"), on_false=graph.probe("f"))
    out = graph.record(graph.out(switch))
    first = run_ok(cclient, graph)
    second = run_ok(cclient, graph)
    assert recorded(second, out) == recorded(first, out) == graph.label("t")
    counts = graph.counts(cclient)
    assert "f" not in counts
    if cache_server.name == "none":
        assert counts["t"] == 2
    else:
        assert counts["t"] == 1 and switch not in second.executed, json.dumps(second.executing)


def test_select_first_non_empty_at_its_largest(cclient, graph):
    """All 16 slots connected and 15 of them give None: the Select re-expands at most 15 times and the
    server stays healthy (the largest input the node accepts)."""
    slots = {f"input_{i}": graph.json("null") for i in range(1, 16)}
    select = graph.add("QG_Select", mode="first_non_empty", index=1, input_16=graph.json('"last"'), **slots)
    out = graph.record(graph.out(select))
    picked = graph.record(graph.out(select, 1), name="index")
    result = run_ok(cclient, graph)
    assert recorded(result, out) == "last" and recorded(result, picked) == 16

    graph2 = Graph()
    slots = {f"input_{i}": graph2.json("null") for i in range(1, 17)}
    graph2.record(graph2.out(graph2.add("QG_Select", mode="first_non_empty", index=1, **slots)))
    assert "first_non_empty found every connected input empty: input_16 (NONE)" in run_error(cclient, graph2)


def test_ids_are_opaque_strings(cclient):
    """Nodes inside a frontend subgraph reach the backend with ids like "12:5"."""
    graph = Graph(id_prefix="12:")
    switch = graph.add("QG_Switch", condition=False, on_true=graph.probe("t"), on_false=graph.json("null"))
    select = graph.add(
        "QG_Select", mode="first_non_empty", index=1, input_1=graph.out(switch), input_2=graph.json('"after none"')
    )
    out = graph.record(graph.out(select))
    result = run_ok(cclient, graph)
    assert recorded(result, out) == "after none" and "t" not in graph.counts(cclient)

    graph2 = Graph(id_prefix="54:62:")
    gate = graph2.add("QG_Gate", value=graph2.json("1"), open=False, on_closed="error")
    graph2.record(graph2.out(gate))
    assert f"Gate (QG) #{gate}: the gate is closed" in run_error(cclient, graph2) and gate == "54:62:2"


@pytest.mark.parametrize(
    "node, inputs, message",
    [
        (
            "QG_Switch",
            {"condition": '"false"'},
            "condition must be a BOOLEAN (or an INT, 0 = false), got STRING 'false'",
        ),
        ("QG_Gate", {"open": "1.0"}, "open must be a BOOLEAN (or an INT, 0 = false), got FLOAT 1.0"),
        ("QG_BoolOp", {"a": "null"}, "a must be a BOOLEAN (or an INT, 0 = false), got NONE"),
    ],
)
def test_conditions_from_any_typed_links_must_be_booleans(cclient, graph, node, inputs, message):
    """An ANY output (here a JSON literal) linked into a BOOLEAN input is checked, not taken by truthiness."""
    extra = {
        "QG_Switch": {"on_true": graph.probe("t"), "on_false": graph.probe("f")},
        "QG_Gate": {"value": graph.probe("t")},
        "QG_BoolOp": {"op": "and", "b": graph.probe("t", value=True)},
    }[node]
    tested = graph.add(node, **{k: graph.json(v) for k, v in inputs.items()}, **extra)
    graph.record(graph.out(tested))
    error = run_error(cclient, graph)
    assert f"(QG) #{tested}: {message}" in error
    assert graph.counts(cclient) == {}
