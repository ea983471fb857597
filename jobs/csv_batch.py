"""Validation of a batch CSV upload into a plan of jobs: a pure function, no I/O.

CSV format
----------
- UTF-8, with or without a byte-order mark; comma-separated; fields may be quoted with `"`
  (a quote inside a quoted field is doubled) and may then contain commas and line breaks.
  Lines may end in LF or CRLF.
- The first non-blank line is the header. Column names are lower case and case-sensitive;
  whitespace around a name is ignored. Each column may appear once; an unknown column is an
  error, not ignored.
- Each row is one independent job, unless it has a `script` id: the rows sharing a script id
  become one conversation job, its lines in row order (the rows need not be adjacent).
- Columns (only `text` is required; an empty cell means the default):

  ====================  =========================================================
  text                  the words to speak; at most MAX_TEXT_CHARS characters
  speaker               integer 0..1000; default 0, but required on script rows
  voice                 a voice of the caller's library, default none
  script                the script id, at most 100 characters; default none
  id or filename        the output file name (one of the two columns, not both):
                        letters, digits, `.`, `_`, `-`, at most 100 characters, not
                        starting with `.` nor containing `..`; it ends in the job
                        format's extension (`.wav`, `.mp3`...): an audio extension
                        given is replaced, none is appended; unique in the file,
                        ignoring case. Default: `row-NNNNN.wav` (`.mp3`...), NNNNN
                        being the line its (first) row starts on. A script's rows
                        leave it empty or give the same name.
  max_audio_length_ms   integer 80..90000; default grows with each line's text
  temperature           number above 0, at most 2; default 0.9
  topk                  integer 1..2051; default 50
  seed                  integer 0..2147483647; default random, fixed at submission
  format                wav, flac, mp3, opus or pcm; default wav
  pause_ms              script rows only: integer 0..10000, default 300, the silence
                        after this line (unused on a script's last line)
  ====================  =========================================================

  The last five are per job: in a script each row leaves them empty or gives the same value
  as the script's other rows (each line gets its own seed derived from the script's seed).
  Integers are decimal (`12`, `-3`), numbers decimal or exponent notation (`0.7`, `7e-1`);
  whitespace around them is ignored. Every field follows the rules of the JSON API, checked by
  the same models (`jobs.validation`): a row is checked as a text job, a script row as the
  line of a script job; no text or script id may hold a NUL character.
- Blank lines, and rows whose cells are all empty, are skipped (but count towards the row
  limit). A row may have fewer cells than the header (the missing ones are empty) but not more.

Limits
------
MAX_CSV_BYTES (10 MiB) per file, MAX_CSV_ROWS (10,000) rows after the header, however they look
(blank, or with too many cells), MAX_SCRIPT_LINES (200) rows per script; the text limit is the
service's MAX_TEXT_CHARS setting. Reading stops at the first row over the limit, so the work and
memory of a check are bounded by the limits, not by what the file repeats.

Errors
------
The whole file is checked and every problem is reported, each with the line its row starts on
(1 is the header; a quoted field spanning lines moves later rows down) and its column, up to
MAX_PROBLEMS problems (the first ones by line; only those are kept) and then one "and N more
problems". Problems with a whole row or the
file (too many cells, CSV syntax, size, encoding) have no column; the size and "and N more"
ones have no line either, and invalid UTF-8 is reported at the line where decoding fails.
"""
from __future__ import annotations

import csv
import heapq
import io
import itertools
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from jobs.fields import NUL_MESSAGE, Context, InvalidRequest, integer_text, validate
from jobs.formats import DEFAULT_FORMAT, EXTENSIONS, FORMATS
from jobs.validation import MAX_SCRIPT_LINES, JobRequest, ScriptJob, SyncTextJob, job_request

MAX_CSV_BYTES = 10 * 1024 * 1024
MAX_CSV_ROWS = 10_000
MAX_SCRIPT_ID_CHARS = 100
MAX_OUTPUT_NAME_CHARS = 100
MAX_PROBLEMS = 1_000

JOB_COLUMNS = ("max_audio_length_ms", "temperature", "topk", "seed", "format")  # one value per job
LINE_COLUMNS = ("text", "speaker", "voice", "pause_ms")
NAME_COLUMNS = ("id", "filename")
COLUMNS = frozenset(JOB_COLUMNS + LINE_COLUMNS + NAME_COLUMNS + ("script",))

_BOM = b"\xef\xbb\xbf"
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_SAFE_NAME = re.compile(r"[A-Za-z0-9._-]+")
_SCRIPT_LINE = "script[0]."  # the prefix of a one-line script's fields in a problem


@dataclass(frozen=True)
class CsvProblem:
    line: int | None  # where the record starts, 1 = header; None for the file as a whole
    field: str | None  # the column, as named in the header; None for the row or file
    message: str


class CsvRejected(ValueError):
    def __init__(self, problems: list[CsvProblem]):
        super().__init__(f"{len(problems)} problem(s); first: {_describe(problems[0])}")
        self.problems = problems


@dataclass(frozen=True)
class PlannedJob:
    output_name: str
    script_id: str | None  # None for a job of one independent row
    row_lines: tuple[int, ...]  # the CSV line of each of request.lines
    request: JobRequest  # as jobs.validation.job_request builds it; metadata None


@dataclass(frozen=True)
class BatchPlan:
    jobs: tuple[PlannedJob, ...]  # in file order, by each job's first row
    rows: int  # data rows read


def parse_batch_csv(
    data: bytes,
    *,
    max_text_chars: int,
    voice_exists: Callable[[str], bool],
    max_bytes: int = MAX_CSV_BYTES,
    max_rows: int = MAX_CSV_ROWS,
    max_script_lines: int = MAX_SCRIPT_LINES,
    max_problems: int = MAX_PROBLEMS,
) -> BatchPlan:
    """Validates a whole batch CSV (format in the module docstring) and plans its jobs.

    Raises CsvRejected listing every problem found. `voice_exists` is called at most once per
    distinct voice name. Seeds left empty are drawn here, so the plan is final. The limits are
    parameters for tests; `max_script_lines` may not exceed validation.MAX_SCRIPT_LINES.
    """
    if len(data) > max_bytes:
        raise CsvRejected([CsvProblem(None, None, f"the file is larger than {max_bytes} bytes")])
    if data.startswith(_BOM):
        data = data[len(_BOM):]
    try:
        data.decode("utf-8")  # checked whole first, to name the line; read below in chunks
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise CsvRejected([CsvProblem(line, None, "is not valid UTF-8")]) from None

    problems = _Problems(max_problems)
    records = _records(data, problems, max_rows)
    header = next(records, None)
    if header is None:
        if not problems:
            problems.append(CsvProblem(None, None, "the file is empty"))
        raise CsvRejected(problems.listed())
    columns = _header(*header, problems)
    if columns is None:
        raise CsvRejected(problems.listed())

    check = _Checker(columns, max_text_chars, voice_exists)
    rows: list[_Row] = []
    for line, cells in records:
        if len(cells) > len(columns):
            problems.append(
                CsvProblem(line, None, f"has {len(cells)} cells but the header has {len(columns)}")
            )
            continue
        rows.append(check.row(line, cells, problems))
    if not rows and not problems:
        problems.append(CsvProblem(None, None, "the file has no data rows"))

    jobs = _plan(rows, check, max_script_lines, problems)
    if problems:
        raise CsvRejected(problems.listed())
    return BatchPlan(tuple(jobs), len(rows))


class _Problems:
    """Counts every problem but keeps only the `cap` first by line (ties in the order found),
    so a file that repeats one mistake a million times costs no more memory than the cap."""

    def __init__(self, cap: int):
        self.cap = cap
        self.count = 0
        self._order = itertools.count()
        self._kept: list[tuple[int, int, CsvProblem]] = []  # a max-heap by (line, order)

    def append(self, problem: CsvProblem) -> None:
        self.count += 1
        heapq.heappush(self._kept, (-(problem.line or 0), -next(self._order), problem))
        if len(self._kept) > self.cap:
            heapq.heappop(self._kept)  # the latest line found so far

    def __len__(self) -> int:
        return self.count

    def listed(self) -> list[CsvProblem]:
        """The kept problems by line, then one "and N more problems" if some were dropped."""
        kept = [problem for *_, problem in sorted(self._kept, reverse=True)]
        if self.count > len(kept):
            kept.append(CsvProblem(None, None, f"and {self.count - len(kept)} more problems"))
        return kept


def _records(data: bytes, problems: _Problems, max_rows: int):
    """Yields (line the record starts on, cells) for each non-blank record; stops with a problem
    at the record after the header and `max_rows` more, blank or not."""
    # Decoded as read: a StringIO of the whole text would hold four bytes per character.
    reader = csv.reader(io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", newline=""), strict=True)
    for read in itertools.count():  # the header is normally record 0
        line = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            problems.append(CsvProblem(line, None, f"is not valid CSV: {exc}"))
            return
        if read > max_rows:
            problems.append(CsvProblem(line, None, f"the file has more than {max_rows} rows"))
            return
        if any(cell.strip() for cell in cells):
            yield line, cells


def _header(line: int, names: list[str], problems: _Problems) -> list[str] | None:
    columns = [name.strip() for name in names]
    start = len(problems)
    seen = set()
    for number, column in enumerate(columns, 1):
        if not column:
            problems.append(CsvProblem(line, None, f"column {number} has no name"))
        elif column in seen:
            problems.append(CsvProblem(line, column, "duplicated column"))
        elif column not in COLUMNS:
            hint = f"; did you mean {column.lower()!r}?" if column.lower() in COLUMNS else ""
            problems.append(CsvProblem(line, column, "unknown column" + hint))
        seen.add(column)
    if "text" not in seen:
        problems.append(CsvProblem(line, "text", "required column is missing"))
    if all(name in seen for name in NAME_COLUMNS):
        problems.append(CsvProblem(line, "filename", "use either the id or the filename column"))
    return None if len(problems) > start else columns


@dataclass
class _Row:
    line: int
    script: str | None
    job_values: dict[str, Any]  # the valid, non-empty JOB_COLUMNS cells, as JSON values
    line_fields: dict[str, Any]  # the LINE_COLUMNS cells as a JSON line of a script
    request: JobRequest | None  # for an independent row without problems
    name: str | None  # the output name as given, when given and valid


@dataclass
class _Checker:
    columns: list[str]
    max_text_chars: int
    voice_exists: Callable[[str], bool]
    voices: dict[str, bool] = field(default_factory=dict)  # voice_exists' answers
    name_column: str | None = field(init=False)  # id, filename or neither
    order: dict[str, int] = field(init=False)  # column -> position in the header
    context: Context = field(init=False)  # of the models' checks

    def __post_init__(self):
        self.name_column = next((c for c in NAME_COLUMNS if c in self.columns), None)
        self.order = {column: index for index, column in enumerate(self.columns)}
        self.context = Context(max_text_chars=self.max_text_chars, voice_exists=self._voice_exists)

    def row(self, line: int, cells: list[str], problems: _Problems) -> _Row:
        row = dict(zip(self.columns, cells))
        errors: dict[str, str] = {}
        script = row.get("script", "").strip() or None
        if script is not None and len(script) > MAX_SCRIPT_ID_CHARS:
            errors["script"] = f"must be at most {MAX_SCRIPT_ID_CHARS} characters"
        elif script is not None and "\x00" in script:
            errors["script"] = NUL_MESSAGE

        job_values = {c: _json_value(c, row[c]) for c in JOB_COLUMNS if row.get(c, "").strip()}
        line_fields = {"text": row.get("text", "")}  # an empty text is an error, not a default
        for column in LINE_COLUMNS[1:]:
            if row.get(column, "").strip():
                line_fields[column] = _json_value(column, row[column])
        if script is None and "pause_ms" in line_fields:
            errors["pause_ms"] = "applies only to rows with a script"
            del line_fields["pause_ms"]
        # A script row is checked as the only line of a script job; another row as a text job.
        if script is None:
            job = self._check(SyncTextJob, {**job_values, **line_fields}, errors)
        else:
            job = self._check(ScriptJob, {**job_values, "script": [line_fields]}, errors)

        name_cell = row.get(self.name_column, "").strip() if self.name_column else ""
        name = None
        if name_cell:
            message = _name_problem(name_cell)
            if message:
                errors[self.name_column] = message
            else:
                name = name_cell

        for column in sorted(errors, key=lambda c: self.order.get(c, len(self.order))):
            problems.append(CsvProblem(line, column, errors[column]))
        job_values = {c: v for c, v in job_values.items() if c not in errors}
        request = job_request(job) if script is None and not errors else None
        return _Row(line, script, job_values, line_fields, request, name)

    def _check(self, model: type, body: dict, errors: dict[str, str]) -> Any:
        """The row as `model` (a job model of the JSON API); None, and every bad column in
        `errors`, if it has problems."""
        try:
            return validate(model, body, self.context)
        except InvalidRequest as exc:
            for problem in exc.problems:
                errors.setdefault(problem.field.removeprefix(_SCRIPT_LINE), problem.message)
            return None

    def _voice_exists(self, name: str) -> bool:
        if name not in self.voices:
            self.voices[name] = bool(self.voice_exists(name))
        return self.voices[name]

    def script_request(self, group: list[_Row]) -> JobRequest:
        """The script job of rows whose every field passed; their job values agree."""
        job_values = {}
        for row in group:
            job_values.update(row.job_values)
        body = {**job_values, "script": [row.line_fields for row in group]}
        return job_request(validate(ScriptJob, body, self.context))


def _json_value(column: str, cell: str) -> Any:
    """A cell as the JSON API would receive it; an unparsable one stays a string to be
    rejected by the API's rules with the API's message."""
    value = cell.strip()
    if column == "temperature":
        return float(value) if _NUMBER.fullmatch(value) else value
    return value if column in ("voice", "format") else integer_text(value)


def _name_problem(name: str) -> str | None:
    if len(name) > MAX_OUTPUT_NAME_CHARS:
        return f"must be at most {MAX_OUTPUT_NAME_CHARS} characters"
    if not _SAFE_NAME.fullmatch(name):
        return "may contain only letters, digits, '.', '_' and '-'"
    if name.startswith(".") or ".." in name:
        return "must not start with '.' or contain '..'"
    return None


def _plan(
    rows: list[_Row], check: _Checker, max_script_lines: int, problems: _Problems
) -> list[PlannedJob]:
    """Groups the rows into jobs and names them; adds the problems between rows."""
    name_column = check.name_column
    groups: dict[str, list[_Row]] = {}
    # Per script, per job column (and the name column): the first row giving a value.
    givers: dict[str, dict[str, _Row]] = {}
    firsts: list[_Row] = []  # the first row of each job, in file order
    for row in rows:
        if row.script is None:
            firsts.append(row)
            continue
        group = groups.setdefault(row.script, [])
        if not group:
            firsts.append(row)
        elif len(group) == max_script_lines:
            problems.append(
                CsvProblem(row.line, "script", f"a script may have at most {max_script_lines} rows")
            )
        group.append(row)
        given = givers.setdefault(row.script, {})
        values = dict(row.job_values)
        if row.name is not None:
            values[name_column] = _stem(row.name).lower()
        for column, value in values.items():
            other = given.setdefault(column, row)
            other_value = _stem(other.name).lower() if column == name_column else other.job_values[column]
            if other_value != value:
                problems.append(CsvProblem(
                    row.line, column,
                    f"differs from line {other.line}: a script has one value (or leave it empty)",
                ))

    def namer(first: _Row) -> _Row | None:
        """The row that names the job starting at `first`, if any."""
        if first.script is None:
            return first if first.name is not None else None
        return givers[first.script].get(name_column)

    def suffix(first: _Row) -> str:
        """The extension of the format of the job starting at `first`."""
        giver = first if first.script is None else givers[first.script].get("format")
        name = giver.job_values.get("format", DEFAULT_FORMAT) if giver else DEFAULT_FORMAT
        return f".{FORMATS[name].extension}"

    def output_name(first: _Row, row: _Row) -> str:
        ending = suffix(first)
        return row.name if row.name.lower().endswith(ending) else _stem(row.name) + ending

    claimed: dict[str, int] = {}  # output name, lower case -> line of the row that named it
    for first in firsts:
        row = namer(first)
        if row is None:
            continue
        key = output_name(first, row).lower()
        if key in claimed:
            message = f"duplicates the output name on line {claimed[key]}"
            problems.append(CsvProblem(row.line, name_column, message))
        else:
            claimed[key] = row.line
    names = {}
    for first in firsts:
        row = namer(first)
        if row is not None:
            names[first.line] = output_name(first, row)
            continue
        names[first.line] = f"row-{first.line:05d}{suffix(first)}"
        if names[first.line] in claimed:  # defaults are lower case
            problems.append(CsvProblem(
                claimed[names[first.line]], name_column,
                f"is the default output name of line {first.line}",
            ))

    if problems:
        return []
    jobs = []
    for first in firsts:
        if first.script is None:
            jobs.append(PlannedJob(names[first.line], None, (first.line,), first.request))
        else:
            group = groups[first.script]
            jobs.append(PlannedJob(
                names[first.line], first.script, tuple(r.line for r in group),
                check.script_request(group),
            ))
    return jobs


def _stem(name: str) -> str:
    """An output name without an audio extension (the job's format gives the extension)."""
    stem, dot, extension = name.rpartition(".")
    return stem if dot and extension.lower() in EXTENSIONS else name


def _describe(problem: CsvProblem) -> str:
    where = f"line {problem.line}" if problem.line is not None else "file"
    column = f" {problem.field}" if problem.field is not None else ""
    return f"{where}{column}: {problem.message}"
