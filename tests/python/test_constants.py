"""foolc._constants against the C headers: every enumerator of the enums of status.h,
oracle.h, distance.h and net.h (and FOOLC_ORACLE_VERSION) is parsed from the header text and
must exist in Python under its C name with the same value, and every FOOLC_* constant of the
module must come from a header; the error classes use the same numbers."""
import os
import re
import unittest

from _setup import ROOT, foolc
from foolc import _constants, errors

INCLUDE = os.path.join(ROOT, "include", "foolc")
# The headers whose enums the bindings mirror.
HEADERS = ("status.h", "oracle.h", "distance.h", "net.h")


def _strip_comments(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def _int(expr, known):
    """The value of an enumerator's initialiser: an integer literal (with an optional sign
    and u/U/l/L suffixes) or an earlier enumerator, as these headers write them."""
    e = expr.strip()
    m = re.fullmatch(r"([+-]?)\s*(0[xX][0-9a-fA-F]+|\d+)[uUlL]*", e)
    if m:
        v = int(m.group(2), 0)
        return -v if m.group(1) == "-" else v
    if e in known:
        return known[e]
    raise ValueError(f"cannot evaluate enumerator value {expr!r}")


def parse_enums(text):
    """{name: value} for every enumerator of every enum in a C header: explicit values,
    and implicit ones (previous + 1, the first 0) as C assigns them."""
    out = {}
    for body in re.findall(r"\benum\b[^{;]*\{([^}]*)\}", _strip_comments(text)):
        nxt = 0
        for item in body.split(","):
            item = item.strip()
            if not item:
                continue
            name, eq, expr = item.partition("=")
            name = name.strip()
            if not re.fullmatch(r"[A-Za-z_]\w*", name):
                raise ValueError(f"unexpected enumerator {item!r}")
            value = _int(expr, out) if eq else nxt
            out[name] = value
            nxt = value + 1
    return out


def parse_defines(text):
    """{name: value} for '#define FOOLC_NAME <integer>' lines."""
    return {m.group(1): _int(m.group(2), {})
            for m in re.finditer(r"^\s*#\s*define\s+(FOOLC_\w+)\s+([+-]?\d+[uUlL]*)\s*$",
                                 _strip_comments(text), re.M)}


def header_constants():
    values = {}
    for h in HEADERS:
        with open(os.path.join(INCLUDE, h), encoding="utf-8") as f:
            text = f.read()
        values.update(parse_enums(text))
        if h == "oracle.h":
            values.update({k: v for k, v in parse_defines(text).items()
                           if k == "FOOLC_ORACLE_VERSION"})
    return values


class TestParser(unittest.TestCase):
    """The parser itself, on made-up text: comments, implicit values, suffixes."""

    def test_parse_enums(self):
        text = """
            /* enum { NOT_ME = 9 }; */
            typedef enum x { A = -2, /* comment, with a comma */ B, C = 7u, D } x;
            enum { E = 0x10, F = E, // trailing
                   G };
        """
        self.assertEqual(parse_enums(text), {"A": -2, "B": -1, "C": 7, "D": 8, "E": 16,
                                             "F": 16, "G": 17})
        with self.assertRaises(ValueError):
            parse_enums("enum { A = 1 << 2 };")

    def test_parse_defines(self):
        self.assertEqual(parse_defines("#define FOOLC_X 1u\n#  define FOOLC_Y -3\n"
                                       "#define FOOLC_Z \"s\"\n"), {"FOOLC_X": 1, "FOOLC_Y": -3})


class TestHeaders(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = header_constants()
        cls.py = {k: v for k, v in vars(_constants).items() if k.startswith("FOOLC_")}

    def test_headers_parsed(self):
        # The parse found what the headers are known to hold (guards against a parser that
        # silently finds nothing).
        for name in ("FOOLC_OK", "FOOLC_NOT_FOUND", "FOOLC_E_INVALID", "FOOLC_NEEDS_GRAD",
                     "FOOLC_LINF", "FOOLC_BACKEND_REFERENCE", "FOOLC_ORACLE_VERSION"):
            self.assertIn(name, self.c)
        self.assertGreaterEqual(len([k for k in self.c if k.startswith("FOOLC_E_")]), 12)

    def test_every_c_value_in_python(self):
        for name, value in sorted(self.c.items()):
            with self.subTest(name=name):
                self.assertIn(name, self.py, f"{name} = {value} is missing from "
                                             "foolc._constants")
                self.assertEqual(int(self.py[name]), value)

    def test_every_python_value_from_c(self):
        for name, value in sorted(self.py.items()):
            with self.subTest(name=name):
                self.assertIn(name, self.c, f"foolc._constants.{name} is in no header")
                self.assertEqual(self.c[name], int(value))

    def test_enum_members_match_c_names(self):
        # Status.E_BUDGET is FOOLC_E_BUDGET, Needs.GRAD is FOOLC_NEEDS_GRAD, ...
        for enum, prefix in ((_constants.Status, "FOOLC_"), (_constants.Needs, "FOOLC_NEEDS_"),
                             (_constants.Norm, "FOOLC_"), (_constants.Backend, "FOOLC_BACKEND_")):
            for member in enum:
                name = prefix + member.name
                if enum is _constants.Norm and member.name == "COUNT":
                    name = "FOOLC_NORM_COUNT"
                with self.subTest(name=name):
                    self.assertEqual(self.c.get(name), int(member))
            # and no enumerator of that family is left out
            family = [k for k in self.c if k.startswith(prefix)]
            if enum is _constants.Status:
                family = [k for k in self.c if re.match(r"FOOLC_(OK|NOT_FOUND|E_\w+)$", k)]
            if enum is _constants.Norm:
                family = [k for k in self.c if re.match(r"FOOLC_(L\w+|MSE|NORM_COUNT)$", k)]
            self.assertEqual(len(family), len(enum), family)

    def test_error_classes_use_the_codes(self):
        for name, value in self.c.items():
            if name.startswith("FOOLC_E_"):
                with self.subTest(name=name):
                    cls = type(errors.from_status(value, "x"))
                    self.assertIsNot(cls, foolc.FoolcError)
                    self.assertEqual(cls.status, value)
        self.assertEqual(foolc.ClosedError.status, self.c["FOOLC_E_INVALID"])

    def test_library_agrees(self):
        # The loaded library's own texts and norm names for the same numbers.
        from foolc import _lib
        for name, value in self.c.items():
            if re.match(r"FOOLC_(OK|NOT_FOUND|E_\w+)$", name):
                self.assertNotEqual(_lib.status_str(value), "unknown status", name)
        for norm in _constants.Norm:
            if norm is not _constants.Norm.COUNT:
                self.assertEqual(foolc.parse_norm(norm.name.lower()), norm)
        lin = foolc.Model.from_callables(lambda x: x[:, :2], input_shape=(2,), n_classes=2)
        caps = _lib.lib.foolc_model_caps(lin._handle())
        self.assertEqual(caps, _constants.Needs.SCORES | _constants.Needs.DECISION)
        lin.close()


if __name__ == "__main__":
    unittest.main()
