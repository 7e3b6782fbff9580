"""The adapter to ComfyUI's internals (``nodes/host.py``) on a ComfyUI that lacks pieces of them.

Each case runs in a fresh Python process with the real ComfyUI 0.3.75 on ``sys.path`` and removes one piece the
way a newer (or stubbed) ComfyUI would lack it: the pack must still import, log one line that names the missing
piece, and degrade only that feature.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from harness import ROOT, comfy_dir
from quality_gate.nodes.registry import NODES

PRELUDE = f"""
import asyncio, importlib.util, json, logging, sys, types
sys.path.insert(0, {str(comfy_dir())!r})
logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stdout)

def load_pack():
    spec = importlib.util.spec_from_file_location(
        "quality_gate", {str(ROOT / "__init__.py")!r}, submodule_search_locations=[{str(ROOT)!r}]
    )
    pack = importlib.util.module_from_spec(spec)
    sys.modules["quality_gate"] = pack
    spec.loader.exec_module(pack)
    return pack
"""


def run(body: str) -> tuple[dict, str]:
    """Run ``body`` after the prelude; it prints one JSON line starting with ``RESULT``."""
    script = PRELUDE + textwrap.dedent(body)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    result = next(line for line in lines if line.startswith("RESULT "))
    return json.loads(result[len("RESULT ") :]), "\n".join(line for line in lines if not line.startswith("RESULT "))


@pytest.mark.parametrize("failure", ["RuntimeError", "AttributeError"])
def test_the_pack_loads_where_a_tool_stubs_comfy_model_management(failure):
    """Linters and registry scanners replace ``comfy.model_management`` with stubs that raise on use; importing
    ComfyUI's server then fails with whatever the stub raised. The pack still registers every node."""
    result, log = run(
        f"""
        import comfy
        stub = types.ModuleType("comfy.model_management")
        def refuse(name):
            if name.startswith("__"):  # what Python itself asks of any module
                raise AttributeError(name)
            raise {failure}("stubbed: " + name)
        stub.__getattr__ = refuse
        sys.modules["comfy.model_management"] = stub
        comfy.model_management = stub
        pack = load_pack()
        from quality_gate.nodes import host
        print("RESULT " + json.dumps({{"nodes": len(pack.NODE_CLASS_MAPPINGS), "routes": host.server() is not None}}))
        """
    )
    assert result == {"nodes": len(NODES), "routes": False}
    assert "Quality Gate: this ComfyUI has no server;" in log
    assert f"{failure}: stubbed" in log


def test_missing_execution_internals_degrade_one_feature_each():
    result, log = run(
        """
        import comfy.utils, comfy_execution.graph_utils, comfy_execution.progress, comfy_execution.utils
        del comfy_execution.progress.get_progress_state
        del comfy_execution.utils.get_executing_context
        del comfy.utils.ProgressBar
        del comfy_execution.graph_utils.GraphBuilder
        load_pack()
        from quality_gate.nodes import host
        from quality_gate.nodes.core.errors import QGError
        host.forget_finished("5.")
        host.forget_finished("6.")
        host.progress("5", 1, 4)
        status, reply = asyncio.run(host.queue_prompt(None, {"prompt": {}}))
        try:
            host.graph_builder()
            builder = "built"
        except QGError as e:
            builder = str(e)
        print("RESULT " + json.dumps({
            "prompt_id": host.executing_prompt_id(),
            "queue": [status, reply["error"]],
            "builder": builder,
            "blocker": type(host.blocker()).__name__,
        }))
        """
    )
    assert result["prompt_id"] is None
    assert result["queue"][0] == 503 and "runs by name are off" in result["queue"][1]
    assert result["builder"] == "this ComfyUI has no comfy_execution.graph_utils.GraphBuilder (node expansion)"
    assert result["blocker"] == "ExecutionBlocker"  # the rest of graph_utils still works
    for piece in (
        "comfy_execution.progress.get_progress_state; long loops are slower",
        "comfy_execution.utils.get_executing_context; qg.loop events take the server's last prompt id",
        "comfy.utils.ProgressBar; no progress is shown for loops",
        "comfy_execution.graph_utils.GraphBuilder;",
    ):
        assert log.count(f"this ComfyUI has no {piece}") == 1, log  # one line, however often it is asked


def test_saving_reads_the_metadata_flag_and_the_output_folder_or_says_what_is_missing():
    result, log = run(
        """
        import comfy.cli_args, folder_paths, shutil, tempfile
        load_pack()
        from quality_gate.nodes import host
        from quality_gate.nodes.core.errors import QGError
        comfy.cli_args.args.disable_metadata = True
        found = [host.metadata_disabled()]
        del comfy.cli_args.args.disable_metadata
        found += [host.metadata_disabled(), host.metadata_disabled()]
        output = tempfile.mkdtemp(prefix="qg-host-")
        folder_paths.set_output_directory(output)
        path = host.save_image_path("sub/qg_x", 8, 8)
        shutil.rmtree(output)
        del folder_paths.get_save_image_path
        try:
            host.save_image_path("qg_x", 8, 8)
            missing_path = "saved"
        except QGError as e:
            missing_path = str(e)
        print("RESULT " + json.dumps({"disabled": found, "path": list(path[1:4]), "missing": missing_path}))
        """
    )
    assert result["disabled"] == [True, False, False]  # without the flag: metadata is written, as before it existed
    assert result["path"] == ["qg_x", 1, "sub"]
    assert result["missing"].startswith("this ComfyUI has no folder_paths.get_output_directory/get_save_image_path")
    assert log.count("this ComfyUI has no comfy.cli_args.args.disable_metadata; saved PNGs always carry") == 1, log
