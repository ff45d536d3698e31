"""The numbers of the C API in one place: status codes (include/foolc/status.h), capability
bits and the oracle struct's version (include/foolc/oracle.h), norms
(include/foolc/distance.h) and network back ends (include/foolc/net.h).

Each value exists twice: as an enum member (Status.E_BUDGET, Needs.GRAD, ...) and under its
C name (FOOLC_E_BUDGET, FOOLC_NEEDS_GRAD, ...). tests/python/test_constants.py parses the
headers and checks every enumerator against these, both ways."""
from __future__ import annotations

import enum


class Status(enum.IntEnum):
    """foolc_status: 0 is success, positive codes are notable outcomes, negative ones
    errors (each raises its own foolc.FoolcError subclass)."""
    OK = 0
    NOT_FOUND = 1
    E_INVALID = -1
    E_NOMEM = -2
    E_UNSUPPORTED = -3
    E_ORACLE = -4
    E_BACKEND = -5
    E_VERSION = -6
    E_CANCELLED = -7
    E_BUDGET = -8
    E_NONFINITE = -9
    E_IO = -10
    E_FORMAT = -11
    E_INTERNAL = -12


class Needs(enum.IntFlag):
    """FOOLC_NEEDS_* bits: what a model offers (foolc_model_caps) or an attack needs."""
    DECISION = 1
    SCORES = 2
    GRAD = 4


class Norm(enum.IntEnum):
    """foolc_norm."""
    L0 = 0
    L1 = 1
    L2 = 2
    LINF = 3
    MSE = 4
    COUNT = 5


class Backend(enum.IntEnum):
    """foolc_backend of the built-in engine."""
    FAST = 0
    REFERENCE = 1
    COUNT = 2


#: FOOLC_ORACLE_VERSION: the foolc_oracle struct this package fills.
ORACLE_VERSION = 1

# The C names, for code that mirrors a C program.
FOOLC_OK = Status.OK
FOOLC_NOT_FOUND = Status.NOT_FOUND
FOOLC_E_INVALID = Status.E_INVALID
FOOLC_E_NOMEM = Status.E_NOMEM
FOOLC_E_UNSUPPORTED = Status.E_UNSUPPORTED
FOOLC_E_ORACLE = Status.E_ORACLE
FOOLC_E_BACKEND = Status.E_BACKEND
FOOLC_E_VERSION = Status.E_VERSION
FOOLC_E_CANCELLED = Status.E_CANCELLED
FOOLC_E_BUDGET = Status.E_BUDGET
FOOLC_E_NONFINITE = Status.E_NONFINITE
FOOLC_E_IO = Status.E_IO
FOOLC_E_FORMAT = Status.E_FORMAT
FOOLC_E_INTERNAL = Status.E_INTERNAL
FOOLC_NEEDS_DECISION = Needs.DECISION
FOOLC_NEEDS_SCORES = Needs.SCORES
FOOLC_NEEDS_GRAD = Needs.GRAD
FOOLC_L0 = Norm.L0
FOOLC_L1 = Norm.L1
FOOLC_L2 = Norm.L2
FOOLC_LINF = Norm.LINF
FOOLC_MSE = Norm.MSE
FOOLC_NORM_COUNT = Norm.COUNT
FOOLC_BACKEND_FAST = Backend.FAST
FOOLC_BACKEND_REFERENCE = Backend.REFERENCE
FOOLC_BACKEND_COUNT = Backend.COUNT
FOOLC_ORACLE_VERSION = ORACLE_VERSION

#: The Python names of the capability bits, as AttackInfo.needs and Model.needs give them.
NEEDS_NAMES = ((Needs.DECISION, "decision"), (Needs.SCORES, "scores"), (Needs.GRAD, "grad"))

#: Backend names accepted by Net.set_backend.
BACKEND_NAMES = {"fast": Backend.FAST, "reference": Backend.REFERENCE}


def needs_names(bits: int) -> frozenset[str]:
    """The names ("decision", "scores", "grad") of the FOOLC_NEEDS_* bits set in bits."""
    return frozenset(name for bit, name in NEEDS_NAMES if bits & bit)


def status(code: int) -> Status | int:
    """code as a Status member, or the plain int for a code this package does not know (a
    newer library may add codes; they only grow)."""
    try:
        return Status(code)
    except ValueError:
        return int(code)
