"""Module paths and the ModuleVersion value (after golang.org/x/mod/module)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, order=True)
class ModuleVersion:
    """A module path and a version, both unescaped. ``str()`` is ``path@version``."""

    path: str
    version: str

    def __str__(self) -> str:
        return f"{self.path}@{self.version}"
