"""Reading a leads CSV for ``flireo calls launch``: find the phone column, check every number.

The file is read twice, both times streaming: :func:`check_leads` validates the whole file
before anything is dialed (so a typo on line 90,000 does not stop a launch half-way), and
:func:`read_leads` then feeds the launcher.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterator

import attrs

from ._cli_common import EXIT_USAGE, CLIError

__all__ = ["PHONE_COLUMNS", "E164", "Lead", "check_leads", "read_leads"]

PHONE_COLUMNS = ("phone", "phone_number", "destination")
"""Accepted names of the phone column, in order of preference (case, spaces and dashes ignored)."""

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
"""An E.164 number: ``+``, a country code that does not start with 0, 7 to 15 digits in all."""


@attrs.frozen
class Lead:
    """One row of the leads file: its line number (1-based, header = line 1) and phone number."""

    line: int
    phone: str


def _normalise(header: str) -> str:
    return re.sub(r"[\s\-]+", "_", header.strip().lower())


def _rows(path: str) -> Iterator[Lead]:
    name = os.path.basename(path)
    try:
        stream = open(path, encoding="utf-8-sig", newline="")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise CLIError(f"cannot read {path}: {exc.strerror or exc}", EXIT_USAGE) from None
    with stream:
        reader = csv.reader(stream)
        try:
            header = next(reader, None)
            if header is None:
                raise CLIError(f"{name}: the file is empty", EXIT_USAGE)
            names = [_normalise(h) for h in header]
            column = next((names.index(c) for c in PHONE_COLUMNS if c in names), None)
            if column is None:
                found = ", ".join(h.strip() for h in header if h.strip()) or "nothing"
                raise CLIError(
                    f"{name}: no phone column; the header must name one of {', '.join(PHONE_COLUMNS)} "
                    f"(found: {found})",
                    EXIT_USAGE,
                )
            start = reader.line_num
            for row in reader:
                line = start + 1  # where the row begins (a quoted cell may span lines)
                start = reader.line_num
                if not any(cell.strip() for cell in row):
                    continue  # blank line
                phone = row[column].strip() if column < len(row) else ""
                if not phone:
                    raise CLIError(f"{name}:{line}: the phone number is missing", EXIT_USAGE)
                if not E164.match(phone):
                    raise CLIError(
                        f"{name}:{line}: {phone!r} is not an E.164 phone number "
                        "(expected + then country code and number, digits only, e.g. +31612345678)",
                        EXIT_USAGE,
                    )
                yield Lead(line, phone)
        except UnicodeDecodeError:
            raise CLIError(f"{name}: not UTF-8 text; save the file as UTF-8 CSV", EXIT_USAGE) from None
        except csv.Error as exc:
            raise CLIError(f"{name}:{reader.line_num}: malformed CSV: {exc}", EXIT_USAGE) from None


def check_leads(path: str) -> int:
    """Validate the whole file; return the number of leads. Raises :class:`CLIError` (exit 2)
    naming the line of the first problem, or when the file has no leads."""
    count = sum(1 for _ in _rows(path))
    if count == 0:
        raise CLIError(f"{os.path.basename(path)}: no leads (only a header)", EXIT_USAGE)
    return count


def read_leads(path: str) -> Iterator[Lead]:
    """The leads of a file already checked with :func:`check_leads`, streamed."""
    return _rows(path)
