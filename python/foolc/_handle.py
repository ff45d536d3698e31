"""Ownership of the library's objects. Net, Model, Attack and Criterion each own one C
handle through this base class, which frees it exactly once: on close(), at the end of a
`with` block, when the Python object is collected, or at interpreter exit, whichever comes
first. The freeing is a weakref.finalize, not a __del__: it holds the handle and the
objects the C side borrows (ctypes callbacks, arrays, the Net behind a Model), never the
Python object itself, so those stay alive exactly as long as the C object may use them and
no reference cycle is needed to keep them.

While a library call that may run Python callbacks uses an object (an attack run, a
Model's logits, a criterion's eval, Net.value_and_grad), close() on it -- from one of those
callbacks -- raises instead of freeing memory the call is using."""
from __future__ import annotations

import contextlib
import ctypes as C
import weakref
from types import TracebackType
from typing import Any, Callable, Iterator, TypeVar

from . import errors

_T = TypeVar("_T", bound="Owner")


def _free(free: Callable[[C.c_void_p], None], handle: C.c_void_p, keep: tuple[Any, ...]) -> None:
    # keep is only held, so that what the C object borrows outlives it; it dies after this.
    free(handle)


class Owner:
    """A Python object that owns one library object (see the module's docstring)."""

    _h: C.c_void_p | None = None
    _finalizer: weakref.finalize | None = None
    _busy: int = 0

    def _own(self, handle: C.c_void_p, free: Callable[[C.c_void_p], None],
             keep: tuple[Any, ...] = ()) -> None:
        """Takes ownership of handle, to be released with free(handle); keep: objects the
        C object borrows (never self or anything that refers to self)."""
        self._h = handle
        self._finalizer = weakref.finalize(self, _free, free, handle, tuple(keep))

    def _label(self) -> str:
        return type(self).__name__

    def _handle(self) -> C.c_void_p:
        """The live handle; ClosedError after close()."""
        h = self._h
        if h is None:
            raise errors.ClosedError(f"{self._label()}: used after close()")
        return h

    @contextlib.contextmanager
    def _in_use(self) -> Iterator[C.c_void_p]:
        """The live handle, marked busy for the duration of a library call that may run
        Python callbacks (which could otherwise close this object under the call)."""
        h = self._handle()
        self._busy += 1
        try:
            yield h
        finally:
            self._busy -= 1

    def _check_closable(self) -> None:
        if self._busy:
            raise errors.InvalidArgumentError(
                f"{self._label()}: close() while a library call is using it (from a "
                "callback of that call?); close it after the call returns")

    @property
    def closed(self) -> bool:
        """True after close() (or when construction failed)."""
        return self._h is None

    def close(self) -> None:
        """Frees the library object now. Calling it again does nothing; any other use of
        this object afterwards raises foolc.ClosedError. From a callback of a call that uses
        this object it raises InvalidArgumentError and closes nothing."""
        self._check_closable()
        self._h = None
        f = self._finalizer
        if f is not None:
            f()

    def __enter__(self: _T) -> _T:
        self._handle()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
