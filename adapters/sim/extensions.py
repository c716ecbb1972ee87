"""Named extensions of a sandbox beyond its venue document (issue 20: document-literal mode).

Every assumption a sandbox makes beyond its document (a VENUES.md gap: PSX-n, OPT-n, ...) is one
bool field of a frozen dataclass deriving from :class:`Extensions`: on in the everyday sandbox
(``everyday()``, today's behaviour and the default), off in document-literal mode
(``document_literal()``), where the sandbox answers only the document's shapes. The field's
docstring names the gap and says what literal mode does instead.

The command line of every sandbox reads them the same way: ``--document-literal`` (all off), then
``--extension NAME`` / ``--no-extension NAME`` (repeatable) to turn single ones on or off.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Iterable
from typing import Any, Self, TypeVar

__all__ = ["Extensions", "add_extension_arguments", "extensions_from_args", "extensions_line"]

E = TypeVar("E", bound="Extensions")


@dataclasses.dataclass(frozen=True)
class Extensions:
    """Base of a sandbox's extension flags: subclasses add ``bool`` fields, all defaulting to True."""

    @classmethod
    def everyday(cls) -> Self:
        """Every extension on: the sandbox as the project's tests and demos have always used it."""
        return cls()

    @classmethod
    def document_literal(cls) -> Self:
        """Every extension off: only what the venue document shows."""
        return cls(**dict.fromkeys(cls.names(), False))

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    def changed(self, on: Iterable[str] = (), off: Iterable[str] = ()) -> Self:
        """A copy with the named extensions turned on / off; ValueError naming an unknown one."""
        on, off = list(on), list(off)
        known = set(self.names())
        unknown = sorted(set(on + off) - known)
        if unknown:
            raise ValueError(f"unknown extension {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        values = dict.fromkeys(on, True) | dict.fromkeys(off, False)
        return dataclasses.replace(self, **values)

    def off(self) -> tuple[str, ...]:
        """The extensions turned off (for a start-up banner or a status answer)."""
        return tuple(name for name in self.names() if not getattr(self, name))

    @property
    def literal(self) -> bool:
        """True when every extension is off."""
        return len(self.off()) == len(self.names())


def add_extension_arguments(parser: argparse.ArgumentParser, *classes: type[Extensions]) -> None:
    """``--document-literal``, ``--extension NAME`` and ``--no-extension NAME`` for these flag sets."""
    names = sorted({name for cls in classes for name in cls.names()})
    arguments: list[tuple[str, dict[str, Any]]] = [
        ("--document-literal", {"action": "store_true", "help": "answer only the venue document's shapes: every "
                                "extension off (README: the flags)"}),
        ("--extension", {"action": "append", "default": [], "metavar": "NAME", "choices": names,
                         "help": "turn one extension on (repeatable; after --document-literal)"}),
        ("--no-extension", {"action": "append", "default": [], "metavar": "NAME", "choices": names,
                            "help": f"turn one extension off (repeatable): {', '.join(names)}"}),
    ]
    for flag, spec in arguments:
        try:
            parser.add_argument(flag, **spec)
        except argparse.ArgumentError:
            pass  # the command line every sandbox shares has it already: one flag, read the same way


def extensions_from_args(cls: type[E], args: argparse.Namespace) -> E:
    """The flags ``args`` ask for, of the ones ``cls`` has (a combined sandbox passes each its own)."""
    base = cls.document_literal() if getattr(args, "document_literal", False) else cls.everyday()
    mine = set(cls.names())
    return base.changed(on=[n for n in getattr(args, "extension", []) if n in mine],
                        off=[n for n in getattr(args, "no_extension", []) if n in mine])


def extensions_line(ext: Extensions) -> str:
    """What a start-up banner says of a sandbox's extensions."""
    if ext.literal:
        return "document-literal: every extension off"
    off = ext.off()
    return f"extensions off: {', '.join(off)}" if off else "every extension on (--document-literal: none)"
