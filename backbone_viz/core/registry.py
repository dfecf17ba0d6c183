"""The one registry behind every kind of thing with several members (backbones, CAM methods, block kinds).

Members are kept in the order they were added, which is the order learners see them in; a duplicate name
is refused, and an unknown name is answered with the list of the known ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Named members of one kind.

    Args:
        what: the kind's name in messages (``"CAM method"``, ``"backbone"``).
    """

    def __init__(self, what: str) -> None:
        self._what = what
        self._members: dict[str, T] = {}

    def add(self, name: str, member: T) -> T:
        """Adds ``member`` under ``name``; returns it.

        Raises:
            ValueError: a member of that name is registered already.
        """
        if name in self._members:
            raise ValueError(f"A {self._what} called {name!r} is registered already")
        self._members[name] = member
        return member

    def get(self, name: str) -> T:
        """The member called ``name``.

        Raises:
            ValueError: an unknown name; the message lists the known ones.
        """
        try:
            return self._members[name]
        except KeyError:
            raise ValueError(f"Unknown {self._what} {name!r}; choose one of: {', '.join(self._members)}") from None

    def remove(self, name: str) -> None:
        """Takes a member out (a test's own member, once the test is done)."""
        del self._members[name]

    def __contains__(self, name: object) -> bool:
        return name in self._members

    def __iter__(self) -> Iterator[T]:
        return iter(tuple(self._members.values()))

    def __len__(self) -> int:
        return len(self._members)
