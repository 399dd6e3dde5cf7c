"""The course's one version, and the release tag every notebook's set-up cell installs.

``__version__`` in ``llmcourse/__init__.py`` is the only place the version is written:
``pyproject.toml`` reads it from there (``dynamic = ["version"]``), the set-up cells install the
git tag ``v<version>`` and the book's footer shows it.

Example::

    >>> release_tag() == "v" + package_version()
    True
"""

from __future__ import annotations

import re
from pathlib import Path

from tools.nb.layout import ROOT, PipelineError

_VERSION_RE = re.compile(r'^__version__ = "(?P<version>[^"]+)"$', re.M)


def package_version(root: Path = ROOT) -> str:
    """The course's one version: ``__version__`` in ``llmcourse/__init__.py``."""
    text = (root / "llmcourse" / "__init__.py").read_text(encoding="utf-8")
    match = _VERSION_RE.search(text)
    if not match:
        raise PipelineError("llmcourse/__init__.py has no `__version__ = \"X.Y.Z\"` line")
    return match.group("version")


def release_tag(root: Path = ROOT) -> str:
    """The git tag of the version the notebooks install, ``v<version>``."""
    return f"v{package_version(root)}"
