"""The base of every section of a sweep configuration: unknown keys are errors and types are
strict."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """Unknown keys are errors, and types are strict: ``true`` is not a number, ``3.0`` not a
    count and ``"3"`` neither (an integer is still a valid float)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
