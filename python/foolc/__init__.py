"""libfoolc from Python: minimal adversarial perturbations for any model.

    import foolc
    net = foolc.Net.load("cnn.npz")
    x, y = foolc.load_data("fashion-mnist", "test")
    res = foolc.Attack("fgsm")(net, x[:100], y[:100], seed=0)
    print(res.success.mean(), res.distance[res.success])

foolc.attacks() lists the registry; foolc.Model.from_callables wraps Python functions as a
model; foolc.torch.from_module wraps a PyTorch nn.Module (imported on first use).
Net, Model, Attack and Criterion have close() and are context managers
(`with foolc.Net.load(path) as net:`). foolc.Status, foolc.Needs and foolc.constants hold
the C API's numbers. The C library is found through FOOLC_LIBRARY, the repository's build/
directory, or the system (see docs/python.md); foolc.__version__ is its version."""
from __future__ import annotations

from typing import Any

from . import _constants as constants
from . import errors
from ._constants import Backend, Needs, Norm, Status
from ._lib import path as library_path
from ._lib import version as library_version
from ._lib import version_number as library_version_number
from .attack import (QUERIES_DTYPE, Attack, AttackInfo, AttackResult, Criterion, Param,
                     attack_names, attacks, describe)
from .certify import certify
from .data import load_data
from .distance import NORMS, distance, parse_norm, project
from .eval import Evaluation, attack_set, evaluate
from .errors import (BackendError, BudgetError, CancelledError, ClosedError, FoolcError,
                     FoolcIOError, FormatError, InternalError, InvalidArgumentError,
                     NoMemoryError, NonFiniteError, OracleError, UnsupportedError, VersionError)
from .model import Counts, Model, Net

# One source: include/foolc/version.h, as the loaded library reports it (the package and
# the library are released together; python/_build/backend.py reads the same header for the
# distribution's metadata).
__version__: str = library_version

__all__ = [
    "Attack", "AttackInfo", "AttackResult", "Criterion", "Param", "Counts", "Model", "Net",
    "attacks", "attack_names", "describe", "load_data", "distance", "project", "parse_norm",
    "NORMS", "QUERIES_DTYPE", "errors", "FoolcError", "InvalidArgumentError",
    "NoMemoryError", "UnsupportedError", "OracleError", "BackendError", "VersionError",
    "CancelledError", "BudgetError", "NonFiniteError", "FoolcIOError", "FormatError",
    "InternalError", "ClosedError", "library_path", "library_version",
    "library_version_number", "constants", "Status", "Needs", "Norm", "Backend",
    "attack_set", "certify", "evaluate", "Evaluation",
]


def __getattr__(name: str) -> Any:
    # foolc.torch is imported on first use, so that importing foolc never imports torch.
    if name == "torch":
        import importlib
        return importlib.import_module(".torch", __name__)
    raise AttributeError(f"module 'foolc' has no attribute {name!r}")
