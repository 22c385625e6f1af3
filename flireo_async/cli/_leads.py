"""Reading a leads CSV for ``flireo calls launch``: find the columns, check every row.

The file is read twice, both times streaming: :func:`check_leads` validates the whole file
before anything is dialed (every bad row is reported at once, and repeated leads are found),
and :func:`read_leads` then feeds the launcher. Comma-, semicolon- and tab-separated files are
read (spreadsheets in many locales export with ``;``).
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterator

import attrs

from ..bulk import E164, normalize_destination
from ._common import EXIT_USAGE, CLIError

__all__ = ["PHONE_COLUMNS", "KEY_COLUMN", "Lead", "LeadsCheck", "check_leads", "read_leads"]

PHONE_COLUMNS = ("phone", "phone_number", "destination")
"""Accepted names of the phone column, in order of preference (case, spaces and dashes ignored)."""
KEY_COLUMN = "key"
"""A column with this name, when present, identifies each lead (for example a CRM lead id)."""
_DELIMITERS = ",;\t"


@attrs.frozen
class Lead:
    """One row of the leads file: its line number (1-based, header = line 1), its phone number
    (normalised: spaces and separators removed) and its key (``None`` without a key column)."""

    line: int
    phone: str
    key: str | None = None


@attrs.frozen
class LeadsCheck:
    """What :func:`check_leads` found: the number of leads, the groups of repeated leads (each
    a list of line numbers, the first of which is dialed), and whether a key column names them."""

    count: int
    repeats: list[list[int]]
    keyed: bool = False


def _normalise(header: str) -> str:
    return re.sub(r"[\s\-]+", "_", header.strip().lower())


def _delimiter(first_line: str) -> str:
    # The header decides: the separator that splits it into the most cells.
    counts = {d: first_line.count(d) for d in _DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _rows(path: str, key_column: str | None) -> Iterator[tuple[int, str, str | None, str | None]]:
    """``(line, phone as written, key, problem)`` for every non-blank row."""
    name = os.path.basename(path)
    try:
        stream = open(path, encoding="utf-8-sig", newline="")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise CLIError(f"cannot read {path}: {exc.strerror or exc}", EXIT_USAGE) from None
    with stream:
        try:
            first = stream.readline()
            if not first.strip():
                raise CLIError(f"{name}: the file is empty", EXIT_USAGE)
            stream.seek(0)
            reader = csv.reader(stream, delimiter=_delimiter(first))
            header = next(reader)
            names = [_normalise(h) for h in header]
            column = next((names.index(c) for c in PHONE_COLUMNS if c in names), None)
            if column is None:
                found = ", ".join(h.strip() for h in header if h.strip()) or "nothing"
                raise CLIError(
                    f"{name}: no phone column; the header must name one of {', '.join(PHONE_COLUMNS)} "
                    f"(found: {found})",
                    EXIT_USAGE,
                )
            wanted_key = _normalise(key_column) if key_column is not None else KEY_COLUMN
            key_index = names.index(wanted_key) if wanted_key in names else None
            if key_column is not None and key_index is None:
                raise CLIError(f"{name}: no column named {key_column!r} for --key-column", EXIT_USAGE)
            start = reader.line_num
            for row in reader:
                line = start + 1  # where the row begins (a quoted cell may span lines)
                start = reader.line_num
                if not any(cell.strip() for cell in row):
                    continue  # blank line
                phone = row[column].strip() if column < len(row) else ""
                key = row[key_index].strip() if key_index is not None and key_index < len(row) else None
                problem = None
                if not phone:
                    problem = "the phone number is missing"
                elif not E164.match(normalize_destination(phone)):
                    problem = (
                        f"{phone!r} is not an E.164 phone number "
                        "(expected + then country code and number, e.g. +31612345678)"
                    )
                elif key_index is not None and not key:
                    problem = f"the {header[key_index].strip()!r} cell is empty"
                yield line, phone, key, problem
        except UnicodeDecodeError:
            raise CLIError(f"{name}: not UTF-8 text; save the file as UTF-8 CSV", EXIT_USAGE) from None
        except csv.Error as exc:
            raise CLIError(f"{name}:{reader.line_num}: malformed CSV: {exc}", EXIT_USAGE) from None


def check_leads(path: str, *, key_column: str | None = None) -> LeadsCheck:
    """Validate the whole file: raises :class:`CLIError` (exit 2) listing every bad row, or
    when the file has no leads; otherwise returns the count and the repeated leads."""
    name = os.path.basename(path)
    problems: list[str] = []
    first_line: dict[str, int] = {}
    repeats: dict[str, list[int]] = {}
    count = 0
    keyed = False
    for line, phone, key, problem in _rows(path, key_column):
        keyed = keyed or key is not None
        if problem is not None:
            problems.append(f"{name}:{line}: {problem}")
            continue
        count += 1
        identity = key if key is not None else normalize_destination(phone)
        first = first_line.setdefault(identity, line)
        if first != line:
            repeats.setdefault(identity, [first]).append(line)
    if len(problems) == 1:
        raise CLIError(problems[0], EXIT_USAGE)
    if problems:
        summary = f"{name}: {len(problems)} bad rows; nothing was dialed:"
        raise CLIError("\n".join([summary, *problems]), EXIT_USAGE)
    if count == 0:
        raise CLIError(f"{name}: no leads (only a header)", EXIT_USAGE)
    return LeadsCheck(count, list(repeats.values()), keyed)


def read_leads(path: str, *, key_column: str | None = None) -> Iterator[Lead]:
    """The leads of a file already checked with :func:`check_leads`, streamed."""
    for line, phone, key, problem in _rows(path, key_column):
        if problem is None:
            yield Lead(line, normalize_destination(phone), key)
