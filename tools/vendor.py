"""Fetch the book's JavaScript (MathJax, the widget manager) from the npm registry, offline-safe.

The book must not load anything from a CDN: a reader offline, or the browser test, would see
broken math and widgets. This script asks npm (``npm pack``) for pinned package versions,
checks each tarball against its pinned SHA-512 integrity, and unpacks the files the pages
need into ``_vendor/static/vendor/`` (git-ignored), which ``_config.yml`` adds to
``html_static_path``:

- ``vendor/mathjax/`` - MathJax 3's ``es5`` build (``tex-chtml.js`` and the fonts it loads);
- ``vendor/requirejs/require.js`` and ``vendor/html-manager/`` - the ipywidgets HTML manager
  (``embed-amd.js`` and its chunks) that renders saved widget state.

Usage::

    python -m tools.vendor            # fetch what is missing (does nothing when up to date)
    python -m tools.vendor --force    # fetch again
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENDOR = ROOT / "_vendor"
STATIC = VENDOR / "static" / "vendor"

# name, version, npm "dist.integrity", folder inside the package, destination under STATIC
PACKAGES = [
    (
        "mathjax",
        "3.2.2",
        "sha512-Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/O9NliPc+x77k1/FEsPsjKPZGJvtRZM1vO+geW0OhGw==",
        "es5",
        "mathjax",
    ),
    (
        "@jupyter-widgets/html-manager",
        "1.0.6",
        "sha512-+Mn+Ra8wyIHrYaUpfmf9A3dsLkt/NuwzPQN8sthdxBD35VV5cOJbpmgMhNR27n/rmP3mKyEe0PWCJrtZrXTXDQ==",
        "dist",
        "html-manager",
    ),
    (
        "requirejs",
        "2.3.7",
        "sha512-DouTG8T1WanGok6Qjg2SXuCMzszOo0eHeH9hDZ5Y4x8Je+9JB38HdTLT4/VA8OaUhBa0JPVHJ0pyBkM1z+pDsw==",
        "require.js",
        "requirejs/require.js",
    ),
]
STAMP = STATIC / "versions.json"


def _integrity(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode("ascii")


def fetch(name: str, version: str, integrity: str, workdir: Path) -> bytes:
    """``npm pack name@version`` into ``workdir``; return the tarball after checking it."""
    if shutil.which("npm") is None:
        raise SystemExit("npm is not installed; install Node.js 20 (it ships npm) and run again")
    result = subprocess.run(
        ["npm", "pack", f"{name}@{version}", "--json", "--pack-destination", str(workdir)],
        capture_output=True, text=True, cwd=workdir,
    )
    if result.returncode != 0:
        raise SystemExit(f"npm pack {name}@{version} failed (is the npm registry reachable?):\n{result.stderr}")
    filename = json.loads(result.stdout)[0]["filename"]
    data = (workdir / filename).read_bytes()
    if _integrity(data) != integrity:
        raise SystemExit(
            f"{name}@{version}: the tarball's SHA-512 ({_integrity(data)}) is not the pinned one "
            f"({integrity}); refusing to use it"
        )
    return data


def unpack(data: bytes, inner: str, dest: Path) -> int:
    """Extract ``package/<inner>`` (a folder or a file) of an npm tarball to ``dest``."""
    count = 0
    prefix = f"package/{inner}"
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for member in tar.getmembers():
            if not member.isfile() or not (member.name == prefix or member.name.startswith(prefix + "/")):
                continue
            if member.name.endswith(".map"):  # source maps: large and never loaded by readers
                continue
            relative = member.name[len(prefix):].lstrip("/")
            target = dest / relative if relative else dest
            if ".." in Path(relative).parts:
                raise SystemExit(f"refusing to unpack {member.name}: it leaves the destination")
            target.parent.mkdir(parents=True, exist_ok=True)
            with tar.extractfile(member) as src:  # type: ignore[union-attr]
                target.write_bytes(src.read())
            count += 1
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.vendor", description=__doc__.split("\n\n")[0])
    parser.add_argument("--force", action="store_true", help="fetch again even if up to date")
    args = parser.parse_args(argv)
    wanted = {name: version for name, version, *_ in PACKAGES}
    if not args.force and STAMP.exists() and json.loads(STAMP.read_text()) == wanted:
        print(f"vendor: up to date in {STATIC.relative_to(ROOT)}")
        return 0
    if STATIC.exists():
        shutil.rmtree(STATIC)
    STATIC.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name, version, integrity, inner, dest in PACKAGES:
            data = fetch(name, version, integrity, Path(tmp))
            count = unpack(data, inner, STATIC / dest)
            if count == 0:
                raise SystemExit(f"{name}@{version} has no {inner!r}; the pinned layout changed")
            print(f"vendor: {name}@{version}: {count} file(s) -> {(STATIC / dest).relative_to(ROOT)}")
    STAMP.write_text(json.dumps(wanted, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
