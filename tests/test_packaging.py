"""The built wheel and sdist: they carry notifications/ whole and nothing else of the repository.

CI builds them once (``python -m build --outdir dist``) and points ``NOTIFICATIONS_DIST`` at the
folder, so these checks read the very files it built; without it they build into a temporary
folder first. Both are slow-ish, so they are marked ``install`` and left out of ``make test``:
``make install-test`` (or ``pytest -m install``) runs them with the install test.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

import notifications

pytestmark = pytest.mark.install

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "notifications"
NAME = "django_live_notifications"

# Never in a distribution: the demo, the tests, the benchmarks, the docs, the demo's templates.
FORBIDDEN_TOP = {"project", "tests", "bench", "docs", "templates", ".ci", "manage.py", "Makefile"}
# What the sdist may hold beside the package: what pip needs to build the wheel from it.
SDIST_EXTRAS = {
    "PKG-INFO",
    "pyproject.toml",
    "setup.cfg",
    "README.md",
    "CHANGELOG.md",
    "LICENSE",
    "MANIFEST.in",
    f"{NAME}.egg-info",
}
# Some of what must be there, by kind (the full comparison below catches the rest).
REQUIRED = [
    "notifications/py.typed",
    "notifications/migrations/0001_initial.py",
    "notifications/templates/notifications/widget.html",
    "notifications/static/notifications/widget.js",
    "notifications/static/notifications/widget.css",
    "notifications/locale/de/LC_MESSAGES/django.po",
    "notifications/locale/de/LC_MESSAGES/django.mo",
    "notifications/locale/fr/LC_MESSAGES/django.po",
    "notifications/locale/fr/LC_MESSAGES/django.mo",
    "notifications/templatetags/notifications.py",
]


def package_files() -> set[str]:
    """The files of notifications/ in the source tree, as paths inside a distribution."""
    return {
        path.relative_to(ROOT).as_posix()
        for path in PACKAGE.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }


@functools.cache
def distributions() -> tuple[Path, Path]:
    """(wheel, sdist): from ``NOTIFICATIONS_DIST`` if set, else freshly built."""
    folder = os.environ.get("NOTIFICATIONS_DIST")
    if folder:
        out = Path(folder).resolve()
    else:
        out = Path(tempfile.mkdtemp(prefix="notifications-dist-"))
        atexit.register(shutil.rmtree, out, True)
        result = subprocess.run(
            [sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, f"python -m build failed:\n{result.stdout}\n{result.stderr}"
    version = notifications.__version__
    wheels = sorted(out.glob(f"{NAME}-{version}-py3-none-any.whl"))
    sdists = sorted(out.glob(f"{NAME}-{version}.tar.gz"))
    assert len(wheels) == 1, f"expected one wheel of {version} in {out}: {wheels}"
    assert len(sdists) == 1, f"expected one sdist of {version} in {out}: {sdists}"
    return wheels[0], sdists[0]


def wheel_names() -> list[str]:
    with zipfile.ZipFile(distributions()[0]) as wheel:
        return [name for name in wheel.namelist() if not name.endswith("/")]


def sdist_names() -> list[str]:
    """The sdist's files, without its top folder (``django_live_notifications-0.1.0/``)."""
    with tarfile.open(distributions()[1]) as sdist:
        names = [member.name for member in sdist.getmembers() if member.isfile()]
    prefix = f"{NAME}-{notifications.__version__}/"
    assert all(name.startswith(prefix) for name in names), names
    return [name.removeprefix(prefix) for name in names]


def test_the_wheel_holds_the_package_and_its_metadata_only():
    names = wheel_names()
    dist_info = f"{NAME}-{notifications.__version__}.dist-info/"
    strays = [n for n in names if not n.startswith(("notifications/", dist_info))]
    assert not strays, f"the wheel holds files outside notifications/: {strays}"
    assert not {n.split("/")[0] for n in names} & FORBIDDEN_TOP


def test_the_wheel_holds_every_file_of_the_package():
    names = {n for n in wheel_names() if n.startswith("notifications/")}
    assert set(REQUIRED) <= names
    missing = sorted(package_files() - names)
    extra = sorted(names - package_files())
    assert not missing, f"in notifications/ but not in the wheel: {missing}"
    assert not extra, f"in the wheel but not in notifications/: {extra}"


def test_the_wheel_metadata():
    with zipfile.ZipFile(distributions()[0]) as wheel:
        text = wheel.read(f"{NAME}-{notifications.__version__}.dist-info/METADATA").decode()
    metadata = Parser().parsestr(text)
    assert metadata["Name"] == "django-live-notifications"
    assert metadata["Version"] == notifications.__version__
    assert metadata["Requires-Python"] == ">=3.11"
    assert metadata["License-Expression"] == "BSD-3-Clause"
    assert metadata["License-File"] == "LICENSE"
    classifiers = metadata.get_all("Classifier")
    assert "Framework :: Django :: 5.2" in classifiers
    assert "Typing :: Typed" in classifiers
    requires = metadata.get_all("Requires-Dist")
    for dependency in ("django", "channels", "daphne", "djangorestframework"):
        assert any(r.split("<")[0].split(">")[0] == dependency for r in requires), dependency
    assert metadata.get_payload().startswith("# django-live-notifications")  # the README


def test_the_sdist_holds_the_package_and_build_files_only():
    names = sdist_names()
    tops = {name.split("/")[0] for name in names}
    assert not tops & FORBIDDEN_TOP, f"the sdist leaks {sorted(tops & FORBIDDEN_TOP)}"
    assert tops <= {"notifications"} | SDIST_EXTRAS, f"unexpected: {tops - SDIST_EXTRAS}"
    package = {n for n in names if n.startswith("notifications/")}
    assert set(REQUIRED) <= package
    assert package == package_files(), (
        f"missing: {sorted(package_files() - package)}, extra: {sorted(package - package_files())}"
    )
    assert {"pyproject.toml", "PKG-INFO", "README.md", "LICENSE"} <= set(names)
