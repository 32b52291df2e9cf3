"""Registries: names that carry meaning (agent kinds, verifier checks), each registered once, where the thing it
names is defined, and looked up by that name. A registry may be told which names it expects (a catalogue
declared elsewhere, e.g. drp/agent_kinds.py): registering another name is then a mistake caught at import."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class RegistryError(LookupError):
    """A name a registry does not hold (or may not hold): the message lists the ones it does."""


class Registry(Generic[T]):
    """Named entries of one kind (`what`) with optional metadata each, in registration order.

    `owner`: the module whose definitions fill the registry (imported on demand by `implemented()`);
    `expected`: the names it may hold (None: any)."""

    def __init__(self, what: str, owner: str | None = None, expected: Iterable[str] | None = None):
        self.what = what
        self.owner = owner
        self.expected = None if expected is None else tuple(expected)
        self._entries: dict[str, T] = {}
        self._meta: dict[str, dict[str, Any]] = {}

    def register(self, name: str, **meta: Any) -> Callable[[T], T]:
        """Decorator: register the decorated object as `name`, with `meta` (read back with `meta(name)`)."""

        def add(entry: T) -> T:
            if self.expected is not None and name not in self.expected:
                raise RegistryError(f"{self.what} {name!r} is not declared; the declared ones are {self._list()}")
            if name in self._entries:
                raise RegistryError(f"{self.what} {name!r} is registered twice")
            self._entries[name] = entry
            self._meta[name] = meta
            return entry

        return add

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            raise RegistryError(f"unknown {self.what} {name!r}; known: {self._list()}") from None

    def meta(self, name: str) -> dict[str, Any]:
        self.get(name)
        return self._meta[name]

    def names(self) -> list[str]:
        return list(self._entries)

    def items(self) -> list[tuple[str, T]]:
        return list(self._entries.items())

    def implemented(self) -> list[str]:
        """The names registered once the owner module has run (it registers them where they are defined)."""
        if self.owner is not None:
            importlib.import_module(self.owner)
        return self.names()

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def _list(self) -> str:
        return ", ".join(self.expected if self.expected is not None else self._entries) or "none"
