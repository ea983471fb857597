"""The field types of the request models (pydantic v2) and their errors as a list of problems.

Rules every model built on `Input` follows:
- unknown fields are refused; a field given as null is the same as a field left out;
- JSON values are taken as they are typed: "1" is not an integer, nor are 1.5 and true;
  numbers are finite;
- no string holds a NUL character (PostgreSQL cannot store one).

Each type checks one kind of value and says what is wrong in words a person can act on ("must be
between 0 and 2"); pydantic's own messages are replaced in `problems_of`. Checks that need the
service (the text limit, the caller's voices, the webhook URL guard) read a `Context` passed to
`validate`; without one the text limit and the voice lookup are skipped and webhook URLs are
refused.
"""
from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any, Callable, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError, ValidationInfo, model_validator
from pydantic_core import PydanticCustomError
from pydantic_core.core_schema import ErrorType


class FieldError(StrEnum):
    """The error code of a bad field (a Problem's `code`); the API answers each with 422
    (api.errors.ErrorCode)."""

    INVALID = "invalid_field"  # unless the check names one of the others
    # OpenAI's fields that CSM cannot honour (jobs.inputs.SpeechBody).
    UNSUPPORTED_FORMAT = "unsupported_format"
    UNSUPPORTED_SPEED = "unsupported_speed"
    UNSUPPORTED_STREAM_FORMAT = "unsupported_stream_format"


# The error types pydantic raises itself; any other type is a code our checks chose.
_PYDANTIC_ERRORS = frozenset(get_args(ErrorType))
_INTEGER = re.compile(r"[+-]?[0-9]+")  # ASCII digits only: str.isdigit() also takes "²"
MAX_INTEGER_DIGITS = 20  # longer is out of every range; int() of a huge string is slow


@dataclass(frozen=True)
class Problem:
    field: str  # a path such as `script[2].text`; "body" for the request as a whole
    message: str
    code: FieldError = FieldError.INVALID


class InvalidRequest(ValueError):
    """Every problem found in a request, in the order of its fields."""

    def __init__(self, problems: list[Problem]):
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))
        self.problems = problems


class Refused(ValueError):
    """Raised by a Context check: the value is not accepted; the message says why."""


@dataclass(frozen=True)
class Context:
    max_text_chars: int | None = None
    voice_exists: Callable[[str], bool] | None = None
    # Raises Refused for a URL the service will not call; None: no webhook URL is accepted.
    check_webhook_url: Callable[[str], None] | None = None
    openai_voices: dict[str, int] = field(default_factory=dict)  # OpenAI voice name -> speaker


def _null_allowed(schema: dict[str, Any]) -> None:
    """The JSON schema admits what `_null_is_absent` does: null for each field that may be left out."""
    required = set(schema.get("required", ()))
    for name, field in schema.get("properties", {}).items():
        if name not in required and {"type": "null"} not in field.get("anyOf", ()):
            schema["properties"][name] = {"anyOf": [field, {"type": "null"}]}


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra=_null_allowed)

    @model_validator(mode="before")
    @classmethod
    def _null_is_absent(cls, data: Any) -> Any:
        return without_nulls(data) if isinstance(data, dict) else data


def without_nulls(data: dict) -> dict:
    """Null means absent, in every request body."""
    return {name: value for name, value in data.items() if value is not None}


def validate(model: Any, data: Any, context: Context | None = None) -> Any:
    """`data` as `model` (a model class or any type pydantic validates); raises InvalidRequest."""
    try:
        return _adapter(model).validate_python(data, context=context)
    except ValidationError as exc:
        raise InvalidRequest(problems_of(exc)) from None


@functools.cache
def _adapter(model: Any) -> TypeAdapter:
    return TypeAdapter(model)


def problems_of(exc: ValidationError) -> list[Problem]:
    problems = []
    for error in exc.errors(include_url=False):
        kind, ctx = error["type"], error.get("ctx", {})
        where = path(error["loc"] + tuple(ctx.get("at", ())))
        if kind in _PYDANTIC_ERRORS:
            problems.append(Problem(where, _MESSAGES.get(kind, error["msg"]).format(**ctx)))
        else:
            problems.append(Problem(where, error["msg"], FieldError(kind)))
    return problems


def path(loc: tuple) -> str:
    """("script", 2, "text") -> "script[2].text"; () -> "body"."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text or "body"


# Pydantic's own errors that our types leave to it (each type checks its value itself).
_MESSAGES = {
    "missing": "is required",
    "extra_forbidden": "unknown field",
    "model_type": "must be a JSON object",  # a body, or a script's line
}


def invalid(message: str, code: FieldError = FieldError.INVALID, at: str | None = None, **values: Any) -> PydanticCustomError:
    """The error a check raises; `message` may hold `{name}` fields filled from `values`. `at`
    names a field under the one checked (for a check of a whole model)."""
    return PydanticCustomError(code, message, values | ({"at": (at,)} if at else {}) or None)


def context_of(info: ValidationInfo) -> Context:
    return info.context if isinstance(info.context, Context) else Context()


# --- numbers ---------------------------------------------------------------------------------

def integer(low: int, high: int):
    """An integer from `low` to `high`."""

    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise invalid("must be an integer")
        if not low <= value <= high:
            raise invalid("must be between {low} and {high}", low=low, high=high)
        return value

    return Annotated[int, Field(ge=low, le=high), BeforeValidator(check)]


def number(low: float, high: float, *, above_low: str | None = None):
    """A finite number from `low` to `high`; `above_low`: the message when it equals `low`,
    which is then refused."""

    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise invalid("must be a number")
        if isinstance(value, float) and not math.isfinite(value):
            raise invalid("must be a finite number")
        if not low <= value <= high:  # compared before float(): an int may be too large for one
            raise invalid("must be between {low} and {high}", low=low, high=high)
        if above_low is not None and value == low:
            raise invalid(above_low)
        return float(value)

    bounds = Field(gt=low, le=high) if above_low is not None else Field(ge=low, le=high)
    return Annotated[float, bounds, BeforeValidator(check)]


def integer_text(value: Any) -> Any:
    """Decimal text (`12`, ` -3 `, `+0042`) as an int; anything else unchanged, to be refused by
    the field's own check. For the query string and CSV cells, where every value is text."""
    if isinstance(value, str) and _INTEGER.fullmatch(text := value.strip()):
        if len(text.lstrip("+-")) > MAX_INTEGER_DIGITS:
            return -(10**MAX_INTEGER_DIGITS) if text.startswith("-") else 10**MAX_INTEGER_DIGITS
        return int(text)
    return value


def integer_from_text(low: int, high: int):
    """integer(low, high), given as decimal text."""
    return Annotated[integer(low, high), BeforeValidator(integer_text)]


# --- strings ---------------------------------------------------------------------------------

NUL_MESSAGE = "must not contain a NUL character"


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise invalid("must be a string")
    if "\x00" in value:
        raise invalid(NUL_MESSAGE)
    return value


def _text(value: Any, info: ValidationInfo) -> str:
    value = _string(value).strip()
    if not value:
        raise invalid("must not be empty")
    limit = context_of(info).max_text_chars
    if limit is not None and len(value) > limit:
        raise invalid("must be at most {limit} characters", limit=limit)
    return value


String = Annotated[str, BeforeValidator(_string)]
# Words to speak: stripped, not empty, at most MAX_TEXT_CHARS (the service's setting).
Text = Annotated[str, Field(min_length=1), BeforeValidator(_text)]


def pattern(regex: re.Pattern, message: str):
    """A string that `regex` matches whole."""

    def check(value: Any) -> str:
        if not isinstance(value, str) or not regex.fullmatch(value):
            raise invalid(message)
        return value

    return Annotated[str, Field(pattern=f"^{regex.pattern}$"), BeforeValidator(check)]


def one_of(*choices: str):
    """One of `choices` (a string)."""
    listed = ", ".join(choices)

    def check(value: Any) -> str:
        if not isinstance(value, str) or value not in choices:
            raise invalid("must be one of {choices}", choices=listed)
        return value

    return Annotated[str, Field(json_schema_extra={"enum": list(choices)}), BeforeValidator(check)]


def _flag(value: Any) -> bool:
    """A true/false query parameter: 1, true, yes or 0, false, no (any case)."""
    if isinstance(value, str) and value.lower() in ("1", "true", "yes", "0", "false", "no"):
        return value.lower() in ("1", "true", "yes")
    raise invalid("must be true or false")


Flag = Annotated[bool, BeforeValidator(_flag)]


# --- JSON values -----------------------------------------------------------------------------

def finite_json(value: Any) -> bool:
    """True when no number in `value` (nested lists and objects) is NaN or infinite."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return False
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return True
