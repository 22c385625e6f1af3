"""``python -m codegen [--check]``: regenerate ``flireo_async/_generated`` from the spec."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .generate import ROOT, check, generate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m codegen", description=__doc__)
    parser.add_argument(
        "--check",
        action="store_true",
        help="regenerate into a temporary folder and fail on any difference",
    )
    parser.add_argument("--spec", type=Path, default=ROOT / "openapi" / "flireo.yaml")
    args = parser.parse_args(argv)
    if args.check:
        differences = check(args.spec)
        for line in differences:
            print(line, file=sys.stderr)
        if differences:
            print("generated code is stale: run `make codegen`", file=sys.stderr)
            return 1
        print("generated code matches the spec")
        return 0
    for path in generate(args.spec, ROOT / "flireo_async" / "_generated"):
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
