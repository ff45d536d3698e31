"""Ctrl-C during a run. Python runs signal handlers at the first bytecode of whatever
Python code runs next, which during a run is the entry of a ctypes callback: a
KeyboardInterrupt raised there, before any try block of the callback, would die inside C
(ctypes only prints it). So while a run is under way on the main thread, SIGINT's default
handler is swapped for one that only records the signal; callbacks see interrupted() and
stop the run, and the run raises KeyboardInterrupt afterwards, with the partial result."""
from __future__ import annotations

import signal
import threading
from typing import Any

_state: dict[str, Any] = {"depth": 0, "hit": False, "old": None}


def _record(signum: int, frame: Any) -> None:
    _state["hit"] = True


def interrupted() -> bool:
    return bool(_state["hit"])


class guard:
    """Context manager around a library call that may run Python callbacks."""

    installed: bool

    def __enter__(self) -> guard:
        self.installed = False
        if _state["depth"] == 0 and threading.current_thread() is threading.main_thread():
            try:
                if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
                    _state["old"] = signal.signal(signal.SIGINT, _record)
                    self.installed = True
            except (ValueError, OSError):
                pass
        if self.installed:
            _state["hit"] = False
        _state["depth"] += 1
        return self

    def __exit__(self, *exc: object) -> None:
        _state["depth"] -= 1
        if self.installed:
            signal.signal(signal.SIGINT, _state["old"])

    def pending(self) -> bool:
        """True (once) when a Ctrl-C arrived during the guarded call."""
        if self.installed and _state["hit"]:
            _state["hit"] = False
            return True
        return False
