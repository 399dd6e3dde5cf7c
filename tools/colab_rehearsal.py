"""A Colab rehearsal you can run here: lessons opened as a learner opens them, installed as Colab installs.

For each chosen lesson this script does what happens when a learner clicks the lesson's "Open in
Colab" badge, on a machine without a GPU and without the course's checkout:

1. a fresh virtual environment with what a Colab runtime already has (torch, ipykernel, numpy,
   matplotlib), and none of the course;
2. the lesson notebook (``lessons/dayNN_*.ipynb``, the one the badge opens, with its stubs) copied
   out of the repository into an empty folder, where nothing of the repository is on the path;
3. its set-up cell run as in Colab (``google.colab`` is made importable), installing the package
   with ``pip install git+<url>@v<version>`` exactly as written, the GitHub address replaced by a
   local clone of this repository (tagged ``v<version>`` there if the release is not cut yet);
4. the notebook executed top to bottom with no ``LLMCOURSE_DATA_DIR``: the data sets are
   downloaded, from a local HTTP server (with ``Range`` support) holding the offline copies under
   their registered names, into an empty cache. (tiktoken's own vocabulary files come from
   ``TIKTOKEN_CACHE_DIR`` when it is set, as the machine has no internet.)

Run::

    python -m tools.colab_rehearsal --sample       # one lesson a week (what CI runs)
    python -m tools.colab_rehearsal --all -j 2     # every lesson (before a release)
    python -m tools.colab_rehearsal day07 day27    # some lessons
    python -m tools.colab_rehearsal --sample --covers   # the notebooks it would run on this checkout's package

A lesson the rehearsal runs top to bottom needs no second run with the project's own venv, so
``tools/test_notebooks.sh`` leaves the ``--covers`` notebooks out of its stubs stage, unless the
rehearsal would install another commit's package than the one being tested.

It prints one line per lesson (passed or the first error, wall seconds) and exits with 1 if any
lesson failed. It commits nothing and touches nothing in the checkout.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import http.server
import importlib
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from tools.nb import release_tag

ROOT = Path(__file__).resolve().parents[1]
# One lesson a week, each among the week's quickest on a CPU: what CI rehearses.
SAMPLE = ["day01", "day08", "day15", "day21", "day27", "day33"]
COLAB_PREINSTALLED = ["ipykernel", "numpy", "matplotlib"]
FAKE_COLAB = ('import sys, types  # the rehearsal: this kernel plays Colab\n'
              'sys.modules.setdefault("google.colab", types.ModuleType("google.colab"))')


class RehearsalError(RuntimeError):
    """The rehearsal could not be set up (no offline data, pip failed, ...)."""


def _run(cmd: list[str], **kw) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if result.returncode != 0:
        raise RehearsalError(f"{' '.join(cmd[:4])} ... failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")


def clone_release(workdir: Path) -> Path:
    """A clone of this repository's committed HEAD, with the tag ``v<version>`` the notebooks install."""
    clone = workdir / "repository.git"
    _run(["git", "clone", "--quiet", "--no-local", str(ROOT), str(clone)])
    tag = release_tag(ROOT)  # the tag every set-up cell installs (tools/nb/ writes them)
    tags = subprocess.run(["git", "-C", str(clone), "tag", "--list", tag], capture_output=True,
                          text=True).stdout.split()
    if tag not in tags:  # not released yet: rehearse the release this commit would be
        _run(["git", "-C", str(clone), "-c", "user.name=rehearsal", "-c", "user.email=rehearsal@localhost",
              "tag", tag])
    return clone


def installs_this_checkout(root: Path = ROOT) -> bool:
    """Whether the rehearsal installs the package this checkout holds: the tag ``v<version>`` is
    not cut yet (the rehearsal tags HEAD) or is HEAD, and the package's files are as committed."""
    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)

    head = git("rev-parse", "HEAD")
    if head.returncode != 0:
        return False
    tag = git("rev-parse", "--verify", "--quiet", f"{release_tag(root)}^{{commit}}")
    if tag.returncode == 0 and tag.stdout.strip() != head.stdout.strip():
        return False
    changed = git("status", "--porcelain", "--", "llmcourse", "pyproject.toml")
    return changed.returncode == 0 and not changed.stdout.strip()


def make_colab_venv(workdir: Path) -> tuple[Path, str]:
    """A fresh venv holding what Colab has before the set-up cell runs; returns (python, kernel name)."""
    venv = workdir / "colab-venv"
    _run([sys.executable, "-m", "venv", str(venv)])
    python = venv / "bin" / "python"
    torch_cmd = [str(python), "-m", "pip", "install", "-q", "torch==2.13.0"]
    if os.environ.get("LLMCOURSE_TORCH_INDEX"):
        torch_cmd += ["--index-url", os.environ["LLMCOURSE_TORCH_INDEX"]]
    _run(torch_cmd)
    _run([str(python), "-m", "pip", "install", "-q", *COLAB_PREINSTALLED])
    _run([str(python), "-m", "ipykernel", "install", "--prefix", str(venv), "--name", "colab-rehearsal"])
    return python, "colab-rehearsal"


class _RangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves the offline copies under their registered file names, honouring ``Range``."""

    files: dict[str, Path] = {}

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        path = self.files.get(self.path.lstrip("/"))
        if path is None:
            self.send_error(404, "not in the rehearsal's mirror")
            return
        body = path.read_bytes()
        start, end = 0, len(body) - 1
        rng = self.headers.get("Range")
        if rng:
            first, _, last = rng.split("=", 1)[1].partition("-")
            start, end = int(first), min(int(last) if last else len(body) - 1, len(body) - 1)
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(end - start + 1))
        self.end_headers()
        self.wfile.write(body[start:end + 1])


def start_mirror(offline: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    """A local HTTP server with every registered file's offline copy under its download name."""
    from llmcourse.data.registry import DATASETS

    files = {}
    for info in DATASETS.values():
        for spec in info.files.values():
            copy = offline / spec.offline_name
            if copy.is_file():
                files[spec.url.rstrip("/").rsplit("/", 1)[-1]] = copy
    if not files:
        raise RehearsalError(f"no offline copies in {offline}: set LLMCOURSE_DATA_DIR to the data folder")
    handler = type("Handler", (_RangeHandler,), {"files": files})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def prepared_notebook(lesson: Path, clone: Path, dest: Path) -> Path:
    """The lesson as Colab opens it: its set-up cell installs from the local clone, and Colab is faked."""
    import nbformat

    nb = nbformat.read(str(lesson), as_version=4)
    setup = nb.cells[1]
    pattern = re.compile(r'"git\+https://github\.com/[^@"]+@(?P<tag>[^"]+)"')
    if not pattern.search(setup.source):
        raise RehearsalError(f"{lesson.name}: its set-up cell installs no git+https://github.com/...@tag")
    setup.source = pattern.sub(lambda m: f'"git+file://{clone}@{m["tag"]}"', setup.source)
    nb.cells.insert(1, nbformat.v4.new_code_cell(FAKE_COLAB))
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / lesson.name
    nbformat.write(nb, str(path))
    return path


def run_lesson(args: tuple) -> tuple[str, bool, str, float]:
    """Execute one prepared lesson in the Colab venv's kernel; (name, ok, first error, seconds)."""
    path, kernel, env, timeout = args
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(str(path), as_version=4)
    start = time.time()
    try:
        NotebookClient(nb, timeout=timeout, kernel_name=kernel, allow_errors=False,
                       resources={"metadata": {"path": str(path.parent)}}).execute(env=env)
    except CellExecutionError as exc:
        lines = [line for line in str(exc).splitlines() if line.strip()]
        return path.stem, False, lines[-1][:300] if lines else "a cell failed", time.time() - start
    except Exception as exc:  # noqa: BLE001 - a timeout, a dead kernel: reported, not raised
        return path.stem, False, f"{type(exc).__name__}: {exc}"[:300], time.time() - start
    return path.stem, True, "", time.time() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("days", nargs="*", help="dayNN names of the lessons to rehearse")
    parser.add_argument("--sample", action="store_true", help=f"one lesson a week: {' '.join(SAMPLE)}")
    parser.add_argument("--all", action="store_true", help="every lesson")
    parser.add_argument("-j", "--jobs", type=int, default=1, help="lessons run at once (default 1)")
    parser.add_argument("--timeout", type=int, default=900, help="seconds allowed per cell")
    parser.add_argument("--covers", action="store_true",
                        help="print the chosen lessons' notebooks, one a line, and exit; nothing when the "
                             "rehearsal would install another package than this checkout's (a release "
                             "tag on another commit, or uncommitted changes to the package)")
    args = parser.parse_args(argv)
    lessons = sorted((ROOT / "lessons").glob("day*.ipynb"))
    if args.all:
        chosen = lessons
    else:
        days = list(args.days) + (SAMPLE if args.sample else [])
        if not days:
            parser.error("name lessons (day07 ...), or pass --sample or --all")
        chosen = [p for p in lessons if p.name[:5] in days]
        missing = sorted(set(days) - {p.name[:5] for p in chosen})
        if missing:
            parser.error(f"no lesson notebook for {', '.join(missing)}")
    if args.covers:  # tools/test_notebooks.sh leaves these to the rehearsal
        if installs_this_checkout():
            print("\n".join(str(p.relative_to(ROOT)) for p in chosen))
        return 0
    offline = os.environ.get("LLMCOURSE_DATA_DIR")
    if not offline:
        parser.error("set LLMCOURSE_DATA_DIR to the offline copies the local server should serve")
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="llmcourse-colab-") as tmp:
        work = Path(tmp)
        try:
            clone = clone_release(work)
            python, kernel = make_colab_venv(work)
            server, mirror = start_mirror(Path(offline))
        except RehearsalError as exc:
            print(f"colab rehearsal: {exc}", file=sys.stderr)
            return 2
        print(f"set-up: clone, Colab-like venv and data mirror in {time.time() - started:.0f}s", flush=True)
        env = {k: v for k, v in os.environ.items()
               if k not in ("LLMCOURSE_DATA_DIR", "VIRTUAL_ENV", "PYTHONPATH")}
        env.update(LLMCOURSE_DATA_MIRROR=mirror, LLMCOURSE_CACHE_DIR=str(work / "cache"),
                   CUDA_VISIBLE_DEVICES="", JUPYTER_PATH=str(python.parent.parent / "share" / "jupyter"),
                   PATH=f"{python.parent}{os.pathsep}{env.get('PATH', '')}", MPLBACKEND="module://matplotlib_inline.backend_inline")
        os.environ["JUPYTER_PATH"] = env["JUPYTER_PATH"]  # where nbclient finds the kernel
        jobs = [(prepared_notebook(p, clone, work / "colab" / p.stem), kernel, env, args.timeout)
                for p in chosen]
        # The first lesson installs the package; later ones find it installed, as in one Colab session.
        # Each lesson runs in a process of its own (its kernel client with its own event loop and
        # ZeroMQ context): clients sharing one process were seen to stall for 15 minutes.
        # Fresh ("spawn") processes: a forked one would inherit the parent's ZeroMQ state.
        spawn = multiprocessing.get_context("spawn")
        worker = importlib.import_module("tools.colab_rehearsal").run_lesson  # picklable by name
        with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
            results = [pool.submit(worker, jobs[0]).result()]
        if len(jobs) > 1:
            with concurrent.futures.ProcessPoolExecutor(max_workers=max(1, args.jobs),
                                                        mp_context=spawn) as pool:
                results += list(pool.map(worker, jobs[1:]))
        server.shutdown()
    failed = 0
    for name, ok, error, seconds in results:
        failed += not ok
        print(f"{name:45s} {'passed' if ok else 'FAILED'} {seconds:6.0f}s {error}".rstrip())
    print(f"colab rehearsal: {len(results) - failed} of {len(results)} lessons ran top to bottom, "
          f"{time.time() - started:.0f}s in all")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
