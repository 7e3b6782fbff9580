"""Quality Gate client: run ComfyUI templates by parameter name, sweep them, over one or several servers.

Standard library plus ``websocket-client`` (and ``tqdm`` for progress bars, optional):
``pip install "quality-gate[client]"`` or ``pip install websocket-client tqdm``. It does not need ComfyUI, torch
or the pack's nodes: copy this ``client/`` folder anywhere on the Python path.

Library::

    from client import Client, format_timings
    qg = Client("http://127.0.0.1:8188")
    run = qg.run("template_solid_image", {"width": 256, "prefix": "demo"}, out_dir="out")
    runs = qg.sweep("my_template", sweep={"prompt": ["a cat", "a dog"]})           # batch_generate
    runs = qg.sweep("my_template", sweep={"seed": {"start": 42, "count": 10}})     # generate_variations
    print(format_timings(qg.run("my_template", {}).timings))                        # profile_workflow
    Client(["http://a:8188", "http://b:8188"]).sweep(...)   # Dask tasks, one worker per server (dask_engine)

Command (``python -m client --help`` from the folder above ``client/``, or ``python client/quality_gate_client.py``
from anywhere)::

    python -m client list
    python -m client schema NAME
    python -m client run NAME --param width=512 --param "Load Image.image=@photo.png" --out DIR --timings
    python -m client sweep NAME --sweep seed=42:+8 --sweep prompt='["a cat","a dog"]' --mode product
    python -m client workflow FILE.json --param seed=3
    (--server URL, repeatable: a sweep runs on Dask over every server; --engine dask, --scheduler tcp://...)

``--param name=value``: the value is read as JSON when it parses (``512``, ``true``, ``"1984"``), else as text;
``@path`` uploads a local image once per content hash and passes its ComfyUI file name.

Exit codes: 0 every run succeeded; 1 a run failed in ComfyUI; 2 the server refused the request (bad parameters,
unknown template: the errors are printed); 3 no server reachable; 130 interrupted with Ctrl-C (our own prompts are
interrupted and removed from the queue first).

Modules, one job each: ``transport`` (HTTP to one server, uploads and downloads, the errors), ``events`` (the
websocket thread), ``runs`` (``Run``, the timing table, item prompt ids), ``sweeps`` (expanding and queueing
sweeps), ``dask_engine`` (sweeps and batches as Dask tasks; the only module importing ``distributed``, the
``dask`` extra), ``api`` (``Client``), ``cli`` (the command line).
"""

from .api import Client
from .cli import main
from .events import Events
from .runs import Run, format_timings
from .transport import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_UNREACHABLE,
    ClientError,
    Refused,
    Server,
    ServerFailed,
    StatusError,
    TimedOut,
    Unreachable,
)

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_REFUSED",
    "EXIT_UNREACHABLE",
    "Client",
    "ClientError",
    "Events",
    "Refused",
    "Run",
    "Server",
    "ServerFailed",
    "StatusError",
    "TimedOut",
    "Unreachable",
    "format_timings",
    "main",
]
