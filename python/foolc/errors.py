"""Exceptions: one FoolcError subclass per negative foolc_status. Each carries the status
code (.status), the library's message (.message, from foolc_errmsg) and, for errors
raised by an attack run, the results found and verified before the stop (.result).

ClosedError (an InvalidArgumentError, so also a ValueError) is raised by the package itself
when a closed Net, Model, Attack or Criterion is used."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._constants import Status
from ._constants import status as _status

if TYPE_CHECKING:
    from .attack import AttackResult


class FoolcError(Exception):
    """A libfoolc call failed. status: the foolc_status code; message: foolc_errmsg();
    result: for attack runs, the AttackResult with what was found before the stop
    (meaningful after BudgetError, CancelledError, OracleError, NonFiniteError)."""
    status: Status | int | None = None

    def __init__(self, message: str, status: int | None = None,
                 result: AttackResult | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = _status(status)
        self.result = result


class InvalidArgumentError(FoolcError, ValueError):
    """FOOLC_E_INVALID: bad shape, bounds, name, key or value (also a ValueError)."""
    status = Status.E_INVALID


class NoMemoryError(FoolcError, MemoryError):
    """FOOLC_E_NOMEM."""
    status = Status.E_NOMEM


class UnsupportedError(FoolcError):
    """FOOLC_E_UNSUPPORTED: a capability the model, the engine or this build lacks (an attack's
    needs, an ONNX op, a layer a method cannot bound)."""
    status = Status.E_UNSUPPORTED


class OracleError(FoolcError):
    """FOOLC_E_ORACLE: a model or criterion callback failed."""
    status = Status.E_ORACLE


class BackendError(FoolcError):
    """FOOLC_E_BACKEND: oneDNN or another back end failed."""
    status = Status.E_BACKEND


class VersionError(FoolcError):
    """FOOLC_E_VERSION."""
    status = Status.E_VERSION


class CancelledError(FoolcError):
    """FOOLC_E_CANCELLED: the progress callback asked to stop; .result holds what was found."""
    status = Status.E_CANCELLED


class BudgetError(FoolcError):
    """FOOLC_E_BUDGET: the model's query budget ran out; .result holds what was found."""
    status = Status.E_BUDGET


class NonFiniteError(FoolcError, FloatingPointError):
    """FOOLC_E_NONFINITE: the model returned NaN or Inf."""
    status = Status.E_NONFINITE


class FoolcIOError(FoolcError, OSError):
    """FOOLC_E_IO: a file could not be opened, read or written (also an OSError)."""
    status = Status.E_IO

    def __init__(self, message: str, status: int | None = None,
                 result: AttackResult | None = None) -> None:
        FoolcError.__init__(self, message, status, result)

    def __str__(self) -> str:
        return self.message


class FormatError(FoolcError, ValueError):
    """FOOLC_E_FORMAT: a file is malformed, truncated or of the wrong kind."""
    status = Status.E_FORMAT


class InternalError(FoolcError, RuntimeError):
    """FOOLC_E_INTERNAL: a check of the library on itself failed (a bug in libfoolc)."""
    status = Status.E_INTERNAL


class ClosedError(InvalidArgumentError):
    """A Net, Model, Attack or Criterion was used after close() (raised by the package, not
    by the library; its status is FOOLC_E_INVALID, as for a NULL handle in C)."""


_BY_STATUS: dict[Any, type[FoolcError]] = {cls.status: cls for cls in (
    InvalidArgumentError, NoMemoryError, UnsupportedError, OracleError, BackendError,
    VersionError, CancelledError, BudgetError, NonFiniteError, FoolcIOError, FormatError,
    InternalError)}


def from_status(status: int, message: str,
                result: AttackResult | None = None) -> FoolcError:
    """The exception for a negative status (FoolcError itself for an unknown code)."""
    cls = _BY_STATUS.get(status, FoolcError)
    return cls(message, status=status, result=result)
