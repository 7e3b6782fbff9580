"""The harness fails loudly: a pack that fails to import, or a server that does not start, stops the run."""

from pathlib import Path

import pytest
from harness import ComfyServer, ServerError, failed_imports

BROKEN = Path(__file__).resolve().parent / "comfy_nodes_broken"


def test_failed_import_lines_are_found_and_comfyui_extras_are_not():
    log = (
        "IMPORT FAILED: nodes_audio.py\n"
        "   0.0 seconds: /x/custom_nodes/quality_gate\n"
        "   0.0 seconds (IMPORT FAILED): /x/custom_nodes/qg_broken_pack\n"
    )
    assert failed_imports(log) == ["0.0 seconds (IMPORT FAILED): /x/custom_nodes/qg_broken_pack"]


def test_a_pack_that_fails_to_import_fails_the_server_start(tmp_path):
    server = ComfyServer(workdir=tmp_path, node_roots=[BROKEN], name="broken")
    with pytest.raises(ServerError, match=r"(?s)failed to import.*qg_broken_pack"):
        server.start()
    assert server.process is None


def test_a_server_that_does_not_start_is_an_error(tmp_path):
    server = ComfyServer(workdir=tmp_path, extra_args=["--no-such-flag"], name="bad-args")
    with pytest.raises(ServerError, match="exited with code"):
        server.start()
    assert server.process is None


def test_a_dead_prompt_worker_ends_the_wait_with_its_traceback(tmp_path):
    """A prompt worker that died (as a /free race once made it) fails the waiting test in seconds with the
    traceback, instead of each test waiting out its timeout."""
    server = ComfyServer(workdir=tmp_path, name="dead-worker")
    server.check_worker()  # no log yet: nothing to say
    server.log_path.write_text(
        "got prompt\nException in thread Thread-1 (prompt_worker):\nTraceback (most recent call last):\n"
        "IndexError: list index out of range\n"
    )
    with pytest.raises(ServerError, match=r"(?s)prompt worker thread died.*IndexError"):
        server.check_worker()
