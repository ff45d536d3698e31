"""The package as a package: one source for the version (include/foolc/version.h), the
wheel the in-tree backend builds (py.typed included, the header's version, also from an
unpacked sdist), complete and resolvable type hints, and the tests' own rule that every skip
goes through _setup.skip (a SKIP line, a failure under CI=true)."""
import ast
import importlib
import inspect
import os
import re
import sys
import tarfile
import tempfile
import typing
import unittest
import zipfile

from _setup import HERE, ROOT, foolc

PYTHON = os.path.join(ROOT, "python")
PACKAGE = os.path.join(PYTHON, "foolc")
VERSION_H = os.path.join(ROOT, "include", "foolc", "version.h")


def header_version():
    """'major.minor.patch' from version.h's numeric macros, parsed here independently of
    the backend's parser."""
    with open(VERSION_H, encoding="utf-8") as f:
        text = f.read()
    nums = {}
    for m in re.finditer(r"^#define\s+FOOLC_VERSION_(MAJOR|MINOR|PATCH)\s+(\d+)\s*$", text,
                         re.M):
        nums[m.group(1)] = int(m.group(2))
    assert len(nums) == 3, f"version.h: {nums}"
    return f"{nums['MAJOR']}.{nums['MINOR']}.{nums['PATCH']}", nums


def backend():
    sys.path.insert(0, os.path.join(PYTHON, "_build"))
    try:
        import backend as b
        return importlib.reload(b)
    finally:
        sys.path.pop(0)


def wheel_contents(path):
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
        return names, z.read(meta).decode()


class TestVersion(unittest.TestCase):
    def test_runtime_version_is_the_library_version(self):
        v, nums = header_version()
        self.assertEqual(foolc.__version__, foolc.library_version)
        self.assertEqual(foolc.__version__, v)
        self.assertEqual(foolc.library_version_number,
                         nums["MAJOR"] * 10000 + nums["MINOR"] * 100 + nums["PATCH"])

    def test_no_literal_versions_in_python(self):
        # pyproject.toml takes it dynamically; __init__.py from the library
        with open(os.path.join(PYTHON, "pyproject.toml"), encoding="utf-8") as f:
            toml = f.read()
        project = toml.split("[project]", 1)[1].split("\n[", 1)[0]
        self.assertRegex(project, r'(?m)^dynamic\s*=\s*\[[^\]]*"version"')
        self.assertNotRegex(project, r"(?m)^version\s*=")
        for fn in os.listdir(PACKAGE):
            if fn.endswith(".py"):
                with open(os.path.join(PACKAGE, fn), encoding="utf-8") as f:
                    self.assertNotRegex(f.read(), r"__version__[^=\n]*=\s*['\"]", fn)

    def test_backend_reads_the_header(self):
        b = backend()
        self.assertEqual(b.version_from_header(), header_version()[0])
        with tempfile.TemporaryDirectory() as d:
            fake = os.path.join(d, "version.h")
            with open(fake, "w") as f:
                f.write("#define FOOLC_VERSION_MAJOR 3\n# define FOOLC_VERSION_MINOR 14\n"
                        "#define FOOLC_VERSION_PATCH 15 /* x */\n")
            self.assertEqual(b.version_from_header(fake), "3.14.15")
            with open(fake, "w") as f:
                f.write("#define FOOLC_VERSION_MAJOR 3\n")
            with self.assertRaisesRegex(RuntimeError, "FOOLC_VERSION_MINOR"):
                b.version_from_header(fake)
            self.assertIsNone(b.version_from_header(os.path.join(d, "absent.h")))


class TestWheel(unittest.TestCase):
    def test_wheel_has_py_typed_and_the_version(self):
        b = backend()
        v = header_version()[0]
        with tempfile.TemporaryDirectory() as d:
            name = b.build_wheel(d)
            self.assertEqual(name, f"foolc-{v}-py3-none-any.whl")
            names, meta = wheel_contents(os.path.join(d, name))
        self.assertIn("foolc/py.typed", names)
        self.assertRegex(meta, rf"(?m)^Version: {re.escape(v)}$")
        modules = sorted(f"foolc/{fn}" for fn in os.listdir(PACKAGE) if fn.endswith(".py"))
        self.assertEqual(sorted(n for n in names if n.endswith(".py")), modules)

    def test_sdist_builds_the_same_wheel_without_the_header(self):
        b = backend()
        v = header_version()[0]
        with tempfile.TemporaryDirectory() as d:
            sdist = b.build_sdist(d)
            with tarfile.open(os.path.join(d, sdist)) as t:
                if hasattr(tarfile, "data_filter"):
                    t.extractall(os.path.join(d, "x"), filter="data")
                else:
                    t.extractall(os.path.join(d, "x"))
            root = os.path.join(d, "x", f"foolc-{v}")
            self.assertFalse(os.path.exists(os.path.join(root, "..", "include")))
            self.assertTrue(os.path.exists(os.path.join(root, "foolc", "py.typed")))
            sys.path.insert(0, os.path.join(root, "_build"))
            sys.modules.pop("backend", None)
            try:
                import backend as unpacked
                self.assertEqual(os.path.dirname(unpacked.__file__),
                                 os.path.join(root, "_build"))
                out = os.path.join(d, "wheel")
                os.mkdir(out)
                name = unpacked.build_wheel(out)
            finally:
                sys.path.pop(0)
                sys.modules.pop("backend", None)
            names, meta = wheel_contents(os.path.join(out, name))
        self.assertIn("foolc/py.typed", names)
        self.assertRegex(meta, rf"(?m)^Version: {re.escape(v)}$")


def _defs(tree):
    """Every function definition of a module, with its qualified name."""
    out = []

    def walk(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                out.append((prefix + child.name, child))
                walk(child, prefix + child.name + ".")
            elif isinstance(child, ast.ClassDef):
                walk(child, prefix + child.name + ".")
    walk(tree, "")
    return out


class TestTyping(unittest.TestCase):
    def test_every_function_is_annotated(self):
        """Each def of the package (torch.py included, read as source) annotates every
        parameter but self/cls and its return."""
        missing = []
        for fn in sorted(os.listdir(PACKAGE)):
            if not fn.endswith(".py"):
                continue
            with open(os.path.join(PACKAGE, fn), encoding="utf-8") as f:
                tree = ast.parse(f.read())
            for qual, node in _defs(tree):
                a = node.args
                params = a.posonlyargs + a.args + a.kwonlyargs
                if params and params[0].arg in ("self", "cls"):
                    params = params[1:]
                params += [p for p in (a.vararg, a.kwarg) if p is not None]
                for p in params:
                    if p.annotation is None:
                        missing.append(f"{fn}: {qual}({p.arg})")
                if node.returns is None:
                    missing.append(f"{fn}: {qual} -> ?")
        self.assertEqual(missing, [])

    def test_hints_resolve(self):
        """typing.get_type_hints evaluates every public annotation on this Python (names
        exist, PEP 604 unions and builtin generics are valid here)."""
        ns = dict(vars(foolc))
        checked = 0
        for name in foolc.__all__:
            obj = getattr(foolc, name)
            targets = []
            if inspect.isclass(obj) and obj.__module__.startswith("foolc"):
                targets += [m for k, m in vars(obj).items()
                            if (not k.startswith("_") or k in ("__init__", "__call__",
                                                               "__enter__", "__exit__"))
                            and (inspect.isfunction(m) or isinstance(m, (classmethod,
                                                                        property)))]
            elif inspect.isfunction(obj):
                targets.append(obj)
            for t in targets:
                if isinstance(t, classmethod):
                    t = t.__func__
                if isinstance(t, property):
                    t = t.fget
                with self.subTest(target=getattr(t, "__qualname__", t)):
                    glob = dict(sys.modules[t.__module__].__dict__, **ns)
                    hints = typing.get_type_hints(t, glob)
                    self.assertIn("return", hints)
                    checked += 1
        self.assertGreater(checked, 50)

    def test_py_typed_marker(self):
        self.assertTrue(os.path.isfile(os.path.join(PACKAGE, "py.typed")))


class TestSkipDiscipline(unittest.TestCase):
    def test_skips_go_through_setup(self):
        """A test that skips must print why and fail under CI=true: _setup.skip does both,
        so no test module calls unittest's skips directly."""
        pattern = re.compile(r"\bskipTest\(|\bunittest\.skip|@skip|\bSkipTest\b")
        offenders = []
        for fn in sorted(os.listdir(HERE)):
            if fn.endswith(".py") and fn != "_setup.py" and fn != os.path.basename(__file__):
                with open(os.path.join(HERE, fn), encoding="utf-8") as f:
                    for i, line in enumerate(f, 1):
                        if pattern.search(line):
                            offenders.append(f"{fn}:{i}: {line.strip()}")
        self.assertEqual(offenders, [])


if __name__ == "__main__":
    unittest.main()
