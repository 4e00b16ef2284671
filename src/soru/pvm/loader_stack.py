"""A stack kept in the loader's tree, read and written a page at a time: what carries the
state of a long function body's checking and lowering from one loader step to the next.

The elements live in pages of ``per_page`` under ``path`` (page ``k`` at
``radix_path(path, k)``, its elements encoded by a :class:`PageCodec`); the length is kept by
the owner (in its own record). A :class:`TreeStack` behaves as the list the checker and the
lowerer use — ``len``, indexing and slices, ``append``/``extend``/``pop``, ``del s[i:]`` —
but reads a page only when one of its elements is asked for, so a step that touches the
top of a deep stack (or a few labels far down) reads a few pages, not the stack. Elements
are objects that may be changed in place (a control frame becoming unreachable): when the
step ends, :meth:`TreeStack.flush` writes back every page whose encoding changed.

A step that reads more than :data:`MAX_PAGES` pages of one stack is beyond what the PVM
proves in one step: a :class:`~soru.pvm.loader_state.LoaderLimit`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from soru.pvm.loader_state import LoaderLimit, P, _fits, radix_path

MAX_PAGES = 96
"""Pages of one stack a loader step may read, at most (a PVM limit: only a body whose
instructions reach far down a deep stack again and again comes near it)."""


@dataclass(frozen=True, slots=True)
class PageCodec:
    """How a page of elements is kept: ``encode(elements) -> bytes``, ``decode(bytes) ->
    elements`` (a list)."""

    per_page: int
    encode: Callable[[list], bytes]
    decode: Callable[[bytes], list]


BYTES = PageCodec(64, bytes, list)
"""Pages of 64 small integers (value types, nesting markers), one byte each."""


class TreeStack:
    """A stack of ``length`` elements under ``path`` in ``store`` (see the module docstring)."""

    __slots__ = ("store", "path", "codec", "length", "pages", "original", "what")

    def __init__(self, store: Any, path: P, length: int, codec: PageCodec, what: str) -> None:
        self.store, self.path, self.codec, self.what = store, path, codec, what
        self.length = length
        self.pages: dict[int, list] = {}
        self.original: dict[int, bytes] = {}  # the pages read, as they were read

    def _page(self, k: int) -> list:
        page = self.pages.get(k)
        if page is None:
            stored = k * self.codec.per_page < self.length
            raw = self.store.get(radix_path(self.path, k)) if stored else None
            if raw is None:
                page = []
            else:
                if len(self.original) >= MAX_PAGES:
                    message = f"a function body reaching too far down its {self.what} in one step"
                    raise LoaderLimit(message, None, "code")
                self.original[k] = raw
                page = self.codec.decode(raw)
            self.pages[k] = page
        return page

    def _index(self, i: int) -> int:
        if i < 0:
            i += self.length
        if not 0 <= i < self.length:
            raise IndexError(i)
        return i

    def __len__(self) -> int:
        return self.length

    def __bool__(self) -> bool:
        return self.length > 0

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(self.length))]
        i = self._index(i)
        n = self.codec.per_page
        return self._page(i // n)[i % n]

    def __setitem__(self, i: int, value: Any) -> None:
        i = self._index(i)
        n = self.codec.per_page
        self._page(i // n)[i % n] = value

    def __delitem__(self, i: Any) -> None:
        if not isinstance(i, slice) or i.step is not None or i.stop is not None:
            raise TypeError("only the top of a stack can be deleted (del s[i:])")
        start = i.indices(self.length)[0]
        self.length = min(self.length, start)

    def append(self, value: Any) -> None:
        n = self.codec.per_page
        page, at = self._page(self.length // n), self.length % n
        if at < len(page):
            page[at] = value  # over an element left beyond the length
        else:
            page.append(value)
        self.length += 1

    def extend(self, values: Any) -> None:
        for value in values:
            self.append(value)

    def pop(self) -> Any:
        value = self[-1]
        self.length -= 1
        return value

    def flush(self) -> None:
        """Write back the pages that changed (only their elements below the length)."""
        n = self.codec.per_page
        for k in sorted(self.pages):
            live = self.pages[k][: max(0, self.length - k * n)]
            if not live:
                continue
            raw = _fits(self.codec.encode(live), f"a page of {self.what}", None, "code")
            if raw != self.original.get(k):
                self.store.set(radix_path(self.path, k), raw)
