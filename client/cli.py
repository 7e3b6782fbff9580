"""The command line: ``python -m client`` (or ``python client/quality_gate_client.py``); see ``client/__init__.py``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .api import Client
from .runs import format_timings
from .transport import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_REFUSED, ClientError, Refused


def parse_value(text: str):
    """JSON when it parses (numbers, true/false, quoted strings, lists), else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_pairs(pairs: list) -> dict:
    result = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise argparse.ArgumentTypeError(f"expected name=value, got {pair!r}")
        result[key] = value if value.startswith("@") else parse_value(value)
    return result


def parse_sweep(pairs: list) -> dict:
    """``name=[json list]``, ``name=a,b,c`` or a seed range ``name=START:+COUNT``."""
    sweep = {}
    for key, value in parse_pairs(pairs).items():
        if isinstance(value, str) and ":+" in value:
            start, count = value.split(":+", 1)
            value = {"start": int(start), "count": int(count)}
        elif isinstance(value, str):
            value = [parse_value(v) for v in value.split(",")]
        elif not isinstance(value, list):
            value = [value]
        sweep[key] = value
    return sweep


def _report(runs: list, show_timings: bool) -> int:
    for run in runs:
        files = ", ".join(str(f) for f in run.files) or ", ".join(run.outputs) or "-"
        line = f"{run.status:8} {run.prompt_id}  {json.dumps(run.params)[:120]}  -> {files}"
        if run.error:
            line += f"\n         {run.error.get('node_type')} #{run.error.get('node')}: {run.error.get('message')}"
        print(line)
        if show_timings and run.timings:
            print(format_timings(run.timings))
    return EXIT_OK if all(r.status == "success" for r in runs) else EXIT_FAILED


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Run Quality Gate templates on ComfyUI by parameter name.")
    parser.add_argument("--server", action="append", help="ComfyUI URL (repeat to spread sweeps)")
    parser.add_argument("--timeout", type=float, default=None, help="seconds to wait for the runs (default: no limit)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--engine",
        choices=("auto", "dask", "server"),
        default="auto",
        help="sweeps as Dask tasks (dask), queued by the one server (server), or dask with several servers (auto)",
    )
    parser.add_argument(
        "--scheduler",
        help="a Dask scheduler (tcp://host:8786; default DASK_SCHEDULER_ADDRESS or an "
        "in-process cluster over the --server URLs)",
    )
    parser.add_argument("--per-server", type=int, default=2, help="our prompts each server holds at once (Dask)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="list templates")
    commands.add_parser("schema", help="show a template's JSON Schema").add_argument("name")
    for command in ("run", "sweep", "workflow"):
        sub = commands.add_parser(command, help=f"{command} (and wait)")
        sub.add_argument("name", help="template name" if command != "workflow" else "API workflow JSON file")
        sub.add_argument("--param", action="append", default=[], help="name=value or name=@image.png")
        sub.add_argument("--out", type=Path, help="download output images into this folder")
        sub.add_argument("--timings", action="store_true", help="print a per-node timing table")
        if command == "sweep":
            sub.add_argument("--sweep", action="append", default=[], help="name=a,b,c or [json] or START:+COUNT")
            sub.add_argument("--mode", choices=("product", "zip"), default="product")
    args = parser.parse_args(argv)
    client = Client(
        args.server or ["http://127.0.0.1:8188"],
        progress=not args.no_progress,
        engine=args.engine,
        scheduler=args.scheduler,
        per_server=args.per_server,
    )
    try:
        if args.command == "list":
            for t in client.templates():
                print(
                    f"{t['name']:<32} {t.get('source', ''):<5} {t.get('params', '?'):>3} params  {t.get('title', '')}"
                )
            return EXIT_OK
        if args.command == "schema":
            print(json.dumps(client.schema(args.name), indent=2))
            return EXIT_OK
        params = parse_pairs(args.param)
        if args.command == "run":
            runs = [client.run(args.name, params, out_dir=args.out, timeout=args.timeout)]
        elif args.command == "workflow":
            runs = [client.run_workflow(args.name, params, out_dir=args.out, timeout=args.timeout)]
        else:
            runs = client.sweep(args.name, parse_sweep(args.sweep), params, args.mode, args.out, args.timeout)
            if client.summary:
                print(
                    "summary: "
                    + ", ".join(
                        f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}" for k, v in client.summary.items()
                    ),
                    file=sys.stderr,
                )
        return _report(runs, args.timings)
    except KeyboardInterrupt:
        print("interrupted: our prompts were interrupted and removed from the queue", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Refused as e:
        print(e.describe(), file=sys.stderr)
        return EXIT_REFUSED
    except ClientError as e:
        print(str(e), file=sys.stderr)
        return e.exit_code
    finally:
        client.close()
