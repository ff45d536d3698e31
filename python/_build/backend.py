"""A PEP 517 build backend in the source tree, on the standard library alone, so that
`pip install ./python` works offline: pip's isolated build environment has nothing to
download (build-system.requires is empty). The package is pure Python, so a wheel is a zip
of foolc/*.py and foolc/py.typed plus its metadata. Also: sdists and PEP 660 editable
installs (a .pth).

The version is dynamic (pyproject.toml: dynamic = ["version"]): one source,
include/foolc/version.h, read as text (FOOLC_VERSION_MAJOR/MINOR/PATCH) from the repository
this python/ directory sits in; in an unpacked sdist (which has no header) from the sdist's
PKG-INFO, which build_sdist wrote from the header. Nothing is imported or loaded
(libfoolc.so need not exist to build)."""
import base64
import hashlib
import io
import os
import re
import tarfile
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "foolc"
VERSION_H = os.path.join(ROOT, "..", "include", "foolc", "version.h")
#: Files of the package besides its modules (PEP 561's marker of a typed package).
PACKAGE_DATA = ("py.typed",)


def version_from_header(path=VERSION_H):
    """'major.minor.patch' from the FOOLC_VERSION_MAJOR/MINOR/PATCH macros of version.h;
    None when the file is absent."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        return None
    parts = []
    for key in ("MAJOR", "MINOR", "PATCH"):
        m = re.search(rf"^\s*#\s*define\s+FOOLC_VERSION_{key}\s+(\d+)\b", text, re.M)
        if not m:
            raise RuntimeError(f"foolc build: no FOOLC_VERSION_{key} number in {path}")
        parts.append(str(int(m.group(1))))
    return ".".join(parts)


def _version():
    pkg_info = os.path.join(ROOT, "PKG-INFO")      # an unpacked sdist describes itself
    if os.path.exists(pkg_info):
        with open(pkg_info, encoding="utf-8") as f:
            m = re.search(r"^Version:\s*(\S+)", f.read(), re.M)
        if m:
            return m.group(1)
    v = version_from_header()
    if v is not None:
        return v
    raise RuntimeError(f"foolc build: the version comes from {os.path.normpath(VERSION_H)} "
                       "(or an sdist's PKG-INFO); build from the libfoolc repository")


def _project():
    """name, version, summary, requires-python, dependencies, optional dependencies."""
    path = os.path.join(ROOT, "pyproject.toml")
    try:
        import tomllib
    except ImportError:
        try:
            import tomli as tomllib
        except ImportError:
            tomllib = None
    if tomllib is not None:
        with open(path, "rb") as f:
            project = tomllib.load(f)["project"]
    else:
        with open(path, encoding="utf-8") as f:
            text = f.read()

        def field(key, default=""):
            m = re.search(rf'^{key}\s*=\s*"([^"]*)"', text, re.M)
            return m.group(1) if m else default
        project = {"name": field("name", PACKAGE), "description": field("description"),
                   "requires-python": field("requires-python"), "dynamic": ["version"],
                   "dependencies": ["numpy"], "optional-dependencies": {"torch": ["torch"]}}
    if "version" in project.get("dynamic", []):
        project["version"] = _version()
    return project


def _metadata():
    p = _project()
    lines = ["Metadata-Version: 2.1", f"Name: {p['name']}", f"Version: {p['version']}"]
    if p.get("description"):
        lines.append(f"Summary: {p['description']}")
    if p.get("requires-python"):
        lines.append(f"Requires-Python: {p['requires-python']}")
    for d in p.get("dependencies", []):
        lines.append(f"Requires-Dist: {d}")
    for extra, deps in p.get("optional-dependencies", {}).items():
        lines.append(f"Provides-Extra: {extra}")
        for d in deps:
            lines.append(f'Requires-Dist: {d}; extra == "{extra}"')
    readme = os.path.join(ROOT, "README.md")
    body = ""
    if os.path.exists(readme):
        lines.append("Description-Content-Type: text/markdown")
        with open(readme, encoding="utf-8") as f:
            body = "\n" + f.read()
    return p, "\n".join(lines) + "\n" + body


def _dist_info(p):
    return f"{p['name'].replace('-', '_')}-{p['version']}.dist-info"


WHEEL = ("Wheel-Version: 1.0\nGenerator: foolc in-tree backend\nRoot-Is-Purelib: true\n"
         "Tag: py3-none-any\n")


def _write_wheel(directory, files):
    """files: [(archive name, bytes)]; adds the dist-info and RECORD."""
    p, meta = _metadata()
    di = _dist_info(p)
    files = list(files) + [(f"{di}/METADATA", meta.encode()), (f"{di}/WHEEL", WHEEL.encode())]
    name = f"{p['name'].replace('-', '_')}-{p['version']}-py3-none-any.whl"
    record = []
    with zipfile.ZipFile(os.path.join(directory, name), "w", zipfile.ZIP_DEFLATED) as z:
        for arc, data in files:
            z.writestr(arc, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            record.append(f"{arc},sha256={digest.decode()},{len(data)}")
        record.append(f"{di}/RECORD,,")
        z.writestr(f"{di}/RECORD", "\n".join(record) + "\n")
    return name


def _package_files():
    out = []
    pkg = os.path.join(ROOT, PACKAGE)
    for dirpath, dirnames, filenames in os.walk(pkg):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for fn in sorted(filenames):
            if fn.endswith(".py") or fn in PACKAGE_DATA:
                full = os.path.join(dirpath, fn)
                with open(full, "rb") as f:
                    out.append((os.path.relpath(full, ROOT).replace(os.sep, "/"), f.read()))
    return out


# ---- PEP 517 / 660 hooks -------------------------------------------------------------------

def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def get_requires_for_build_editable(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    return _write_wheel(wheel_directory, _package_files())


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    pth = (ROOT + "\n").encode()
    return _write_wheel(wheel_directory, [(f"__editable__.{PACKAGE}.pth", pth)])


def build_sdist(sdist_directory, config_settings=None):
    p = _project()
    base = f"{p['name']}-{p['version']}"
    name = f"{base}.tar.gz"
    _, meta = _metadata()
    with tarfile.open(os.path.join(sdist_directory, name), "w:gz") as t:
        for rel in ["pyproject.toml", "README.md", "_build/backend.py"] + \
                   [arc for arc, _ in _package_files()]:
            full = os.path.join(ROOT, rel)
            if os.path.exists(full):
                t.add(full, arcname=f"{base}/{rel}")
        info = tarfile.TarInfo(f"{base}/PKG-INFO")
        data = meta.encode()
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    return name
