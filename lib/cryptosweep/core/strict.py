"""The base of every section of a sweep configuration: unknown keys are errors and types are
strict; and whole numbers read strictly from text (flags, environment variables)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from cryptosweep.core.errors import ConfigError


class Strict(BaseModel):
    """Unknown keys are errors, and types are strict: ``true`` is not a number, ``3.0`` not a
    count and ``"3"`` neither (an integer is still a valid float)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def whole_number(text: str) -> int:
    """The integer ``text`` writes in ASCII digits 0-9 (an optional leading ``-``, surrounding
    spaces): ``int()`` alone also takes ``'７'`` (a full-width 7), ``'1_2'`` (12) and, through
    ``str.isdigit``, would let ``'²'`` through to a traceback; no one means those as a seed or a
    count. A ``ValueError`` saying what is wrong otherwise."""
    digits = text.strip()
    body = digits[1:] if digits.startswith("-") else digits
    if not (body.isascii() and body.isdigit()):
        raise ValueError(f"expected a whole number in digits 0-9, got {text!r}")
    try:
        return int(digits)
    except ValueError:  # more digits than Python converts
        raise ValueError(f"expected a whole number, got {text!r}") from None


def flag(value: object, what: str) -> bool:
    """``value`` when it is ``True`` or ``False``; anything else is a ``ConfigError`` naming
    ``what``. A notebook's switch given as ``papermill -p show_progress false`` arrives as the
    text ``"false"`` (papermill reads only ``True`` and ``False`` as such), which Python takes
    for true: the switch did the opposite of what was asked, without a word."""
    if isinstance(value, bool):
        return value
    raise ConfigError(f"{what}: expected True or False, got {value!r} (papermill -p reads only "
                      f"True and False as such: -p {what} False)")
