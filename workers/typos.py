"""Naming a misspelt field: `unknown field 'origin' (did you mean 'origins'?)`.

A key with `origin:` instead of `origins:` would otherwise load with no origin check;
a typo must stop the load, and the line must say what was probably meant."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(name: str, known: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The known name `name` is most likely a typo of, or None."""
    found = difflib.get_close_matches(name, sorted(known), n=1, cutoff=cutoff)
    return found[0] if found else None


def unknown_field(names: Iterable[object], known: frozenset[str]) -> str | None:
    """`unknown field 'x' (did you mean 'y'?)` for the first name not in `known`, else None."""
    for name in names:
        if name not in known:
            near = closest(str(name), known)
            hint = f" (did you mean {near!r}?)" if near else f"; known: {', '.join(sorted(known))}"
            return f"unknown field {str(name)!r}{hint}"
    return None
