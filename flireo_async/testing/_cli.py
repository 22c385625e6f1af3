"""The fake-server command: ``python -m flireo_async.testing`` and ``flireo mock`` alike.

Both spellings share :func:`add_arguments` and :func:`run` (and so the same flags, defaults
and messages); :func:`serve` is the same thing for Python code. Nothing here needs the
``testing`` extra until the server starts, so ``--help`` works on a base install and a missing
``jsonschema`` is one line naming the extra to install.
With ``--inbound-script FILE`` the process also rings scripted inbound calls (the file
format is in ``--help`` and in the README's FakeFlireo section).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from .._errors import RequestValidationError
from ._defaults import DEFAULT_API_KEY

__all__ = ["serve", "main", "build_parser", "add_arguments", "run"]


async def serve(
    port: int = 8080,
    rate_limit: int | None = 100,
    speed: float = 1.0,
    host: str = "127.0.0.1",
    *,
    api_key: str = DEFAULT_API_KEY,
    seed: int = 0,
    failure_share: float = 0.0,
    out: TextIO | None = None,
    stop: asyncio.Event | None = None,
    inbound_script: str | os.PathLike[str] | None = None,
    **options: Any,
) -> None:
    """Run a :class:`FakeFlireo` until cancelled (or until ``stop`` is set), after printing
    the base URL and key to use. Extra ``options`` go to the constructor.

    ``inbound_script`` is a JSON file of inbound calls to ring once their numbers are
    registered; it is read and checked before the server starts (a bad file raises
    :class:`~flireo_async.RequestValidationError` naming the item and field, or
    :class:`OSError`).
    """
    from ._script import load_inbound_script, run_inbound_script
    from ._server import FakeFlireo

    stream = out if out is not None else sys.stdout
    script = load_inbound_script(inbound_script) if inbound_script is not None else None
    async with FakeFlireo(
        api_key=api_key,
        host=host,
        port=port,
        speed=speed,
        rate_limit=rate_limit,
        seed=seed,
        failure_share=failure_share,
        **options,
    ) as fake:
        limit = "unlimited" if rate_limit is None else f"{rate_limit}/min"
        print(f"Fake Flireo API listening on {fake.url}  (speed {speed:g}x, rate limit {limit})", file=stream)
        print(f"  export FLIREO_BASE_URL={fake.url}", file=stream)
        print(f"  export FLIREO_API_KEY={fake.api_key}", file=stream)
        runner: asyncio.Task[None] | None = None
        if script is not None:
            print(f"Inbound script: {len(script)} call(s), each once its number is registered.", file=stream)
            runner = asyncio.create_task(run_inbound_script(fake, script, stream))
            runner.add_done_callback(_log_failure)
        print("Press Ctrl-C to stop.", file=stream, flush=True)
        try:
            await (stop.wait() if stop is not None else asyncio.Event().wait())
        finally:
            if runner is not None:
                runner.cancel()
                await asyncio.gather(runner, return_exceptions=True)


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logging.getLogger("flireo_async.testing").error("inbound script failed", exc_info=task.exception())


def _rate_limit(text: str) -> int | None:
    if text.lower() in ("none", "off", "0", "unlimited"):
        return None
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be a positive number, or 0/none for unlimited")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of the fake-server command."""
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=8080, help="port to listen on (default 8080; 0 = any free port)"
    )
    parser.add_argument(
        "--rate-limit",
        type=_rate_limit,
        default=100,
        metavar="N",
        help="requests per minute per key before 429 (default 100 like the API; 0 or 'none' = unlimited)",
    )
    parser.add_argument(
        "--speed", type=float, default=1.0, metavar="X", help="simulated time runs X times faster (default 1)"
    )
    parser.add_argument(
        "--api-key",
        default=DEFAULT_API_KEY,
        metavar="KEY",
        help=f"the key to accept (default {DEFAULT_API_KEY})",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed of the simulation (default 0)")
    parser.add_argument(
        "--failure-share",
        type=float,
        default=0.0,
        metavar="P",
        help="share of outbound calls that fail (0..1, default 0)",
    )
    parser.add_argument(
        "--inbound-script",
        metavar="FILE",
        help="JSON array of inbound calls to ring, each once its number is registered: "
        '[{"number": "+31850835037", "caller": "+31612345678", '
        '"tool_calls": [{"name": "lookup_customer", "arguments": {}}], "duration": 60, "delay": 0}]',
    )


async def run(args: argparse.Namespace, *, prog: str = "python -m flireo_async.testing") -> int:
    """Serve until cancelled with the parsed flags; problems are one line on stderr, exit 2."""
    try:
        await serve(
            args.port,
            args.rate_limit,
            args.speed,
            args.host,
            api_key=args.api_key,
            seed=args.seed,
            failure_share=args.failure_share,
            inbound_script=args.inbound_script,
        )
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] not in ("jsonschema", "referencing"):
            raise
        print(
            f"{prog}: error: the fake server needs {exc.name.split('.')[0]}: pip install 'flireo-async[cli]'",
            file=sys.stderr,
        )
        return 2
    except RequestValidationError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"{prog}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m flireo_async.testing``."""
    parser = argparse.ArgumentParser(
        prog="python -m flireo_async.testing",
        description="Run the fake Flireo API server (in-memory, simulated calls) until Ctrl-C.",
    )
    add_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments and serve until Ctrl-C; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return asyncio.run(run(args))
    except KeyboardInterrupt:
        return 0
