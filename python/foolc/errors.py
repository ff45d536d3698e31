"""Exceptions: one FoolcError subclass per negative foolc_status. Each carries the status
code (.status), the library's message (.message, from foolc_errmsg) and, for errors
raised by an attack run, the results found and verified before the stop (.result)."""


class FoolcError(Exception):
    """A libfoolc call failed. status: the foolc_status code; message: foolc_errmsg();
    result: for attack runs, the AttackResult with what was found before the stop
    (meaningful after BudgetError, CancelledError, OracleError, NonFiniteError)."""
    status = None

    def __init__(self, message, status=None, result=None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        self.result = result


class InvalidArgumentError(FoolcError, ValueError):
    """FOOLC_E_INVALID: bad shape, bounds, name, key or value (also a ValueError)."""
    status = -1


class NoMemoryError(FoolcError, MemoryError):
    """FOOLC_E_NOMEM."""
    status = -2


class UnsupportedError(FoolcError):
    """FOOLC_E_UNSUPPORTED: the model lacks what the attack or criterion needs."""
    status = -3


class OracleError(FoolcError):
    """FOOLC_E_ORACLE: a model or criterion callback failed."""
    status = -4


class BackendError(FoolcError):
    """FOOLC_E_BACKEND: oneDNN or another back end failed."""
    status = -5


class VersionError(FoolcError):
    """FOOLC_E_VERSION."""
    status = -6


class CancelledError(FoolcError):
    """FOOLC_E_CANCELLED: the progress callback asked to stop; .result holds what was found."""
    status = -7


class BudgetError(FoolcError):
    """FOOLC_E_BUDGET: the model's query budget ran out; .result holds what was found."""
    status = -8


class NonFiniteError(FoolcError, FloatingPointError):
    """FOOLC_E_NONFINITE: the model returned NaN or Inf."""
    status = -9


class FoolcIOError(FoolcError, OSError):
    """FOOLC_E_IO: a file could not be opened, read or written (also an OSError)."""
    status = -10

    def __init__(self, message, status=None, result=None):
        FoolcError.__init__(self, message, status, result)

    def __str__(self):
        return self.message


class FormatError(FoolcError, ValueError):
    """FOOLC_E_FORMAT: a file is malformed, truncated or of the wrong kind."""
    status = -11


class InternalError(FoolcError, RuntimeError):
    """FOOLC_E_INTERNAL: a check of the library on itself failed (a bug in libfoolc)."""
    status = -12


_BY_STATUS = {cls.status: cls for cls in (
    InvalidArgumentError, NoMemoryError, UnsupportedError, OracleError, BackendError,
    VersionError, CancelledError, BudgetError, NonFiniteError, FoolcIOError, FormatError,
    InternalError)}


def from_status(status, message, result=None):
    """The exception for a negative status (FoolcError itself for an unknown code)."""
    cls = _BY_STATUS.get(status, FoolcError)
    return cls(message, status=status, result=result)
