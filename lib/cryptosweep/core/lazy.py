"""Lazy package entry points: a package names what it offers (name -> defining module) and
imports a module only when one of its names is first used, so importing a package stays cheap
(every dask worker imports ``cryptosweep``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """The module-level ``__getattr__`` of ``package`` for ``exports`` (name -> module)."""

    def __getattr__(name: str) -> Any:  # noqa: N807 - the module protocol's name
        if name in exports:
            return getattr(import_module(exports[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
