"""Finds and loads libfoolc.so, declares the C prototypes and turns status codes into
exceptions. Everything else in the package goes through `lib` and `check` from here."""
from __future__ import annotations

import ctypes as C
import ctypes.util
import os
from typing import Any, Iterator

from . import errors

#: The major version of the C library this package was written for.
EXPECTED_MAJOR = 0
#: The oldest library (major*10000 + minor*100 + patch) that has every function used here.
MINIMUM_VERSION = 100

_HERE = os.path.dirname(os.path.abspath(__file__))


def _candidates() -> Iterator[tuple[str, str]]:
    """Where the library may be, in order: FOOLC_LIBRARY, the build tree of the repository
    this package sits in (python/foolc -> ../../build), then the system."""
    env = os.environ.get("FOOLC_LIBRARY")
    if env:
        yield env, "FOOLC_LIBRARY"
        return
    for build in (os.path.join(_HERE, "..", "..", "build"), os.path.join(_HERE, "..", "build")):
        path = os.path.normpath(os.path.join(build, "libfoolc.so"))
        if os.path.exists(path):
            yield path, "the build tree"
    found = ctypes.util.find_library("foolc")
    if found:
        yield found, "the system library path"
    for prefix in ("/usr/local/lib", "/usr/lib", "/usr/lib/x86_64-linux-gnu"):
        path = os.path.join(prefix, "libfoolc.so")
        if os.path.exists(path):
            yield path, "an installed prefix"
    yield "libfoolc.so.0", "the dynamic loader (LD_LIBRARY_PATH)"


def _load() -> tuple[C.CDLL, str]:
    tried = []
    for path, where in _candidates():
        try:
            return C.CDLL(path), path
        except OSError as e:
            tried.append(f"  {path} ({where}): {e}")
    raise ImportError("foolc: cannot load libfoolc.so; tried:\n" + "\n".join(tried) +
                      "\nBuild it with 'make' in the repository, install it with "
                      "'make install', or set FOOLC_LIBRARY to its path.")


lib, path = _load()

lib.foolc_version_number.restype = C.c_int
lib.foolc_version_number.argtypes = []
lib.foolc_version_string.restype = C.c_char_p
lib.foolc_version_string.argtypes = []


def check_version(number: int, text: str, where: str) -> None:
    """Raises ImportError unless a library of version number (text) suits this package."""
    if number // 10000 != EXPECTED_MAJOR or number < MINIMUM_VERSION:
        raise ImportError(
            f"foolc: {where} is libfoolc {text} but this package needs major version "
            f"{EXPECTED_MAJOR} (at least {MINIMUM_VERSION // 10000}."
            f"{MINIMUM_VERSION // 100 % 100}.{MINIMUM_VERSION % 100}); point FOOLC_LIBRARY "
            "at a matching libfoolc.so")


#: The loaded library's foolc_version_number() and foolc_version_string() (the version of
#: include/foolc/version.h it was built from); foolc.__version__ is `version`.
version_number: int = lib.foolc_version_number()
version: str = lib.foolc_version_string().decode()
check_version(version_number, version, path)


# ---- types -------------------------------------------------------------------------------

class Shape(C.Structure):
    _fields_ = [("n", C.c_int32), ("c", C.c_int32), ("h", C.c_int32), ("w", C.c_int32)]


class Counts(C.Structure):
    _fields_ = [("forward", C.c_uint64), ("backward", C.c_uint64), ("decided", C.c_uint64)]


FP = C.POINTER(C.c_float)
IP = C.POINTER(C.c_int32)
SEED_FN = C.CFUNCTYPE(C.c_int, C.c_void_p, FP, C.c_int32, C.c_int32, FP)
SCORES_FN = C.CFUNCTYPE(C.c_int, C.c_void_p, FP, C.c_int32, FP)
VAG_FN = C.CFUNCTYPE(C.c_int, C.c_void_p, FP, C.c_int32, SEED_FN, C.c_void_p, FP, FP)
DECISION_FN = C.CFUNCTYPE(C.c_int, C.c_void_p, FP, C.c_int32, IP)
PROGRESS_FN = C.CFUNCTYPE(C.c_int, C.c_void_p, C.c_int64, C.c_int64)
CRITERION_FN = C.CFUNCTYPE(C.c_int, C.c_void_p, FP, C.c_int32, C.c_int32, C.c_int32,
                           C.POINTER(C.c_double), FP)
#: The NULL progress callback.
NO_PROGRESS = PROGRESS_FN()  # type: ignore[call-overload]


class Oracle(C.Structure):
    _fields_ = [("version", C.c_uint32), ("input", Shape), ("n_classes", C.c_int32),
                ("lo", C.c_float), ("hi", C.c_float), ("user", C.c_void_p),
                ("scores", SCORES_FN), ("value_and_grad", VAG_FN), ("decision", DECISION_FN)]


class Result(C.Structure):
    _fields_ = [("x_adv", FP), ("distance", FP), ("success", C.POINTER(C.c_uint8)),
                ("queries", C.POINTER(Counts))]


class Data(C.Structure):
    _fields_ = [("shape", Shape), ("n_classes", C.c_int32), ("x", FP), ("y", IP)]


class TrainOpts(C.Structure):
    _fields_ = [("epochs", C.c_int32), ("batch", C.c_int32), ("lr", C.c_double),
                ("beta1", C.c_double), ("beta2", C.c_double), ("eps", C.c_double),
                ("weight_decay", C.c_double), ("seed", C.c_uint64),
                ("temperature", C.c_double), ("adv_eps", C.c_double),
                ("adv_steps", C.c_int32), ("adv_step", C.c_double)]


# ---- prototypes --------------------------------------------------------------------------

st = C.c_int
vp = C.c_void_p
cs = C.c_char_p
_PROTOS: dict[str, tuple[Any, list[Any]]] = {
    "foolc_status_str": (cs, [st]),
    "foolc_errmsg": (cs, []),
    "foolc_free": (None, [vp]),
    # registry and attacks
    "foolc_attack_count": (C.c_int32, []),
    "foolc_attack_name": (cs, [C.c_int32]),
    "foolc_attack_describe": (st, [cs, C.POINTER(C.c_int), C.POINTER(C.c_uint),
                                   C.POINTER(C.c_int32), C.POINTER(cs)]),
    "foolc_attack_param": (st, [cs, C.c_int32, C.POINTER(cs), C.POINTER(C.c_double),
                                C.POINTER(C.c_double), C.POINTER(C.c_double), C.POINTER(cs)]),
    "foolc_attack_new": (st, [cs, C.POINTER(vp)]),
    "foolc_attack_free": (None, [vp]),
    "foolc_attack_get_name": (cs, [vp]),
    "foolc_attack_set": (st, [vp, cs, C.c_double]),
    "foolc_attack_set_text": (st, [vp, cs, cs]),
    "foolc_attack_get": (st, [vp, cs, C.POINTER(C.c_double)]),
    "foolc_attack_set_criterion": (st, [vp, vp]),
    "foolc_attack_set_progress": (None, [vp, PROGRESS_FN, vp]),
    "foolc_attack_run": (st, [vp, vp, Shape, FP, IP, IP, C.c_uint64, C.POINTER(Result)]),
    # criteria
    "foolc_criterion_new": (st, [cs, C.POINTER(vp)]),
    "foolc_criterion_custom": (st, [CRITERION_FN, vp, C.POINTER(vp)]),
    "foolc_criterion_free": (None, [vp]),
    "foolc_criterion_set": (st, [vp, cs, C.c_double]),
    "foolc_criterion_name": (cs, [vp]),
    "foolc_criterion_needs_targets": (C.c_int, [vp]),
    "foolc_criterion_label_only": (C.c_int, [vp]),
    "foolc_criterion_eval": (st, [vp, FP, C.c_int32, C.c_int32, IP, IP,
                                  C.POINTER(C.c_uint8), C.POINTER(C.c_double), FP]),
    # distances
    "foolc_norm_name": (cs, [C.c_int]),
    "foolc_norm_parse": (st, [cs, C.POINTER(C.c_int)]),
    "foolc_distance": (C.c_double, [C.c_int, FP, FP, C.c_size_t]),
    "foolc_project": (st, [C.c_int, FP, FP, C.c_size_t, C.c_double, C.c_float, C.c_float,
                           FP]),
    # models
    "foolc_model_new": (st, [C.POINTER(Oracle), C.POINTER(vp)]),
    "foolc_model_free": (None, [vp]),
    "foolc_model_caps": (C.c_uint, [vp]),
    "foolc_model_set_budget": (st, [vp, C.c_uint64]),
    "foolc_model_budget": (C.c_uint64, [vp]),
    "foolc_model_counts": (Counts, [vp]),
    "foolc_model_reset_counts": (None, [vp]),
    "foolc_model_scores": (st, [vp, FP, C.c_int32, FP]),
    "foolc_model_decision": (st, [vp, FP, C.c_int32, IP]),
    # data
    "foolc_data_load": (st, [cs, cs, C.POINTER(Data)]),
    "foolc_data_free": (None, [C.POINTER(Data)]),
    # the built-in engine
    "foolc_net_new": (st, [cs, C.c_uint64, C.POINTER(vp)]),
    "foolc_net_preset": (cs, [cs]),
    "foolc_net_load": (st, [cs, C.POINTER(vp)]),
    "foolc_net_save": (st, [vp, cs]),
    "foolc_net_free": (None, [vp]),
    "foolc_net_arch": (cs, [vp]),
    "foolc_net_input": (Shape, [vp]),
    "foolc_net_classes": (C.c_int32, [vp]),
    "foolc_net_bounds": (None, [vp, FP, FP]),
    "foolc_net_set_bounds": (st, [vp, C.c_float, C.c_float]),
    "foolc_net_flops": (C.c_double, [vp]),
    "foolc_net_param_count": (C.c_int64, [vp]),
    "foolc_net_get_params": (st, [vp, FP]),
    "foolc_net_set_params": (st, [vp, FP]),
    "foolc_net_set_backend": (st, [vp, C.c_int]),
    "foolc_net_forward": (st, [vp, FP, C.c_int32, FP]),
    "foolc_net_grad": (st, [vp, FP, C.c_int32, SEED_FN, vp, FP, FP, FP]),
    "foolc_net_oracle": (st, [vp, C.c_int32, C.POINTER(Oracle)]),
    "foolc_train_defaults": (None, [C.POINTER(TrainOpts)]),
    "foolc_net_train": (st, [vp, C.POINTER(Data), C.POINTER(TrainOpts), PROGRESS_FN, vp,
                             C.POINTER(C.c_double)]),
    "foolc_net_accuracy": (st, [vp, FP, IP, C.c_int32, C.POINTER(C.c_double)]),
}
# Newer functions: declared when the library has them (callers check hasattr(lib, name)).
_OPTIONAL: dict[str, tuple[Any, list[Any]]] = {
    "foolc_attack_set_init": (st, [vp, cs]),
    "foolc_attack_set_first_id": (None, [vp, C.c_uint64]),
    "foolc_attack_set_starts": (st, [vp, FP, IP, C.c_int32]),
    "foolc_attack_set_sample_starts": (st, [vp, FP, C.c_int32]),
}
for _name, (_res, _args) in _OPTIONAL.items():
    if hasattr(lib, _name):
        getattr(lib, _name).restype = _res
        getattr(lib, _name).argtypes = _args

missing = []
for _name, (_res, _args) in _PROTOS.items():
    try:
        _f = getattr(lib, _name)
    except AttributeError:
        missing.append(_name)
        continue
    _f.restype = _res
    _f.argtypes = _args
if missing:
    raise ImportError(f"foolc: {path} (libfoolc {version}) lacks {', '.join(missing)}; "
                      "rebuild it or point FOOLC_LIBRARY at a newer libfoolc.so")


def errmsg() -> str:
    return str(lib.foolc_errmsg().decode(errors="replace"))


def status_str(code: int) -> str:
    return str(lib.foolc_status_str(code).decode())


def check(code: int, what: str | None = None) -> int:
    """Returns code when it is not an error (0 or positive); raises the FoolcError subclass
    of a negative code, carrying foolc_errmsg()."""
    if code >= 0:
        return code
    msg = errmsg() or status_str(code)
    if what:
        msg = f"{what}: {msg}"
    raise errors.from_status(code, msg)


def enc(s: str | bytes) -> bytes:
    return s.encode() if isinstance(s, str) else s
