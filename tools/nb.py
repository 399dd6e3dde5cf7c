"""Generate the course's notebooks from one source per lesson, and check they are current.

Every lesson has one source, ``solutions/dayNN_slug.md`` (a MyST Markdown notebook, jupytext
``md:myst``). From it ``build`` generates, deterministically:

- ``lessons/dayNN_slug.md``: the source with every ``# BEGIN SOLUTION`` ... ``# END SOLUTION``
  block replaced by its stub and every cell tagged ``solution`` removed, so that
  ``diff lessons/dayNN_slug.md solutions/dayNN_slug.md`` shows exactly the exercises;
- ``lessons/dayNN_slug.ipynb``: that lesson as a notebook without outputs;
- ``solutions/dayNN_slug.ipynb``: the solved notebook with the marks removed, executed on the
  CPU, outputs stored; cells that held a solution are tagged ``hide-input`` (the book folds
  their code behind a toggle).

Both notebooks start with a Colab badge and a setup cell that installs the package when the
notebook runs in Colab; the repository URL comes from ``_config.yml`` (``repository.url``).
``build`` also writes ``_toc.yml`` (the lessons by week) and the API reference pages
``book/api/*.md`` (one per public module of ``llmcourse``).

Usage::

    python -m tools.nb build               # regenerate lessons, toc, API pages; reuse outputs
    python -m tools.nb build --execute     # ... and execute solution notebooks whose source changed
    python -m tools.nb build --execute --force day03   # re-execute day 03 even if unchanged
    python -m tools.nb check               # exit 1 naming every stale generated file
    python -m tools.nb times               # CPU and wall time of each notebook's last execution

A solution notebook records the SHA-256 of its source (``metadata.llmcourse.source_sha256``);
``build --execute`` re-executes only those whose source (or generated code) changed, and records
how long each took (``metadata.llmcourse.build_time``, see ``tools/lesson_times.py``).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import copy
import dataclasses
import hashlib
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Iterable, Optional, Sequence

from llmcourse.learner import myst

ROOT = Path(__file__).resolve().parents[1]
LESSON_RE = re.compile(r"^day(?P<day>\d{2})_(?P<slug>[a-z0-9][a-z0-9_]*)$")

DEFAULT_STUB = 'raise NotImplementedError("exercise: write this part")'
BEGIN_RE = re.compile(r"^(?P<indent>[ \t]*)#\s*BEGIN SOLUTION\s*$")
END_RE = re.compile(r"^[ \t]*#\s*END SOLUTION\s*$")
STUB_RE = re.compile(r"^[ \t]*#\s*STUB:(?: (?P<text>.*)|(?P<empty>\s*))$")
# Anything that looks like a mark but is not exactly one (typos must not pass silently).
LOOKALIKE_RE = re.compile(r"^[ \t]*#\s*(BEGIN|END)[ _-]*SOL\w*\s*$|^[ \t]*#\s*STUB\b", re.IGNORECASE)

KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}
LANGUAGE_INFO = {
    "codemirror_mode": {"name": "ipython", "version": 3},
    "file_extension": ".py",
    "mimetype": "text/x-python",
    "name": "python",
    "nbconvert_exporter": "python",
    "pygments_lexer": "ipython3",
}
# Kernel-side environment for executing solutions; tools/test_notebooks.sh uses the same.
KERNEL_ENV = {"MPLBACKEND": "module://matplotlib_inline.backend_inline", "PYTHONHASHSEED": "0"}

WEEKS = {
    1: "Week 1: From text to batches",
    2: "Week 2: Attention and the GPT architecture",
    3: "Week 3: Training for real",
    4: "Week 4: Making the model write",
    5: "Week 5: Train, generate, experiment",
    6: "Week 6: Going further",
}
TOOL_VERSION = 1  # bump when the generated form changes, so that outputs are regenerated


class PipelineError(Exception):
    """A lesson source cannot be turned into notebooks; the message names file and line."""


# ---- configuration ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Layout:
    """Where sources and generated files live, and the repository they are published from."""

    root: Path
    solutions: Path
    lessons: Path
    repo_url: str
    branch: str = "main"

    @classmethod
    def from_root(cls, root: Path = ROOT) -> "Layout":
        url, branch = read_repository(root / "_config.yml")
        return cls(root=root, solutions=root / "solutions", lessons=root / "lessons", repo_url=url, branch=branch)

    def github_path(self) -> str:
        """``owner/name`` of the GitHub repository, e.g. ``llmcourse/llmcourse``."""
        return self.repo_url.split("github.com/", 1)[1]

    def colab_url(self, kind: str, name: str) -> str:
        return f"https://colab.research.google.com/github/{self.github_path()}/blob/{self.branch}/{kind}/{name}.ipynb"


def read_repository(config_path: Path) -> tuple[str, str]:
    """Read ``repository.url`` and ``repository.branch`` from the book's ``_config.yml``."""
    import yaml

    try:
        config = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise PipelineError(f"{config_path} is missing; it must set repository.url") from None
    repo = config.get("repository") or {}
    url = str(repo.get("url", "")).rstrip("/")
    if not re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url):
        raise PipelineError(
            f"{config_path}: repository.url must be a GitHub URL like "
            f"https://github.com/OWNER/REPO (it builds the Colab links), got {url!r}"
        )
    return url, str(repo.get("branch", "main"))


# ---- the stub transformation -----------------------------------------------------------------


@dataclasses.dataclass
class CodeCell:
    """One ``{code-cell}`` block of a MyST notebook, by line numbers (0-based, inclusive)."""

    start: int  # the opening fence
    end: int  # the closing fence
    body_start: int  # first line of code (after the options)
    tags: list[str]


def find_code_cells(lines: list[str], path: str) -> list[CodeCell]:
    """Locate the ``{code-cell}`` blocks of a MyST notebook (``llmcourse/learner/myst.py`` reads the file)."""
    try:
        blocks = myst.read_blocks(lines, path)
    except myst.MystError as exc:
        raise PipelineError(str(exc)) from None
    cells: list[CodeCell] = []
    for block in (b for b in blocks if b.kind == "code"):
        tags = block.options.get("tags") or []
        if isinstance(tags, str):
            tags = [tags]
        cells.append(CodeCell(start=block.start, end=block.end, body_start=block.body_start,
                              tags=[str(t) for t in tags]))
    return cells


def transform_code(lines: list[str], mode: str, path: str, first_line: int, tags: Sequence[str] = ()) -> tuple[list[str], bool]:
    """Apply the marking scheme to a code cell's lines.

    Args:
        lines: the cell's code lines (no newline characters).
        mode: ``"lesson"`` replaces each solution block by its stub; ``"solution"`` keeps the
            solution and removes the marks and ``STUB`` lines.
        path: the source file, for error messages.
        first_line: the 1-based line number of ``lines[0]`` in the source file.
        tags: the cell's tags (a ``raises-exception`` cell may have a raising module-level stub).

    Returns:
        The new lines and whether the cell held a solution block.

    Example::

        >>> code = ["def f(x):", "    # BEGIN SOLUTION", "    # STUB: return None  # TODO",
        ...         "    return 2 * x", "    # END SOLUTION"]
        >>> transform_code(code, "lesson", "demo.md", 1)[0]
        ['def f(x):', '    return None  # TODO']
        >>> transform_code(code, "solution", "demo.md", 1)[0]
        ['def f(x):', '    return 2 * x']
    """
    if mode not in ("lesson", "solution"):
        raise ValueError(f"mode must be 'lesson' or 'solution', got {mode!r}")
    out: list[str] = []
    begin_line: Optional[int] = None
    indent = ""
    stubs: list[str] = []
    found = False
    for offset, line in enumerate(lines):
        lineno = first_line + offset
        begin, end, stub = BEGIN_RE.match(line), END_RE.match(line), STUB_RE.match(line)
        if begin:
            if begin_line is not None:
                raise PipelineError(
                    f"{path}:{lineno}: '# BEGIN SOLUTION' inside the solution block opened at line "
                    f"{begin_line}; close that one with '# END SOLUTION' first (blocks cannot nest)"
                )
            begin_line, indent, stubs, found = lineno, begin.group("indent"), [], True
        elif end:
            if begin_line is None:
                raise PipelineError(
                    f"{path}:{lineno}: '# END SOLUTION' without a '# BEGIN SOLUTION' before it in this cell"
                )
            if mode == "lesson":
                if not stubs and indent == "" and "raises-exception" not in tags:
                    raise PipelineError(
                        f"{path}:{begin_line}: this solution block is at module level and has no "
                        "'# STUB: ' lines, so the default stub (raise NotImplementedError) would stop "
                        "the lesson notebook; add a harmless stub such as '# STUB: x = None  # TODO ...'"
                    )
                out.extend((indent + s) if s.strip() else "" for s in (stubs or [DEFAULT_STUB]))
            begin_line = None
        elif stub:
            if begin_line is None:
                raise PipelineError(
                    f"{path}:{lineno}: a '# STUB:' line outside a solution block; move it between "
                    "'# BEGIN SOLUTION' and '# END SOLUTION'"
                )
            stubs.append(stub.group("text") or "")
        elif LOOKALIKE_RE.match(line):
            raise PipelineError(
                f"{path}:{lineno}: {line.strip()!r} looks like a mark but is not one; the marks are "
                "exactly '# BEGIN SOLUTION', '# END SOLUTION' and '# STUB: <code>'"
            )
        elif begin_line is None or mode == "solution":
            out.append(line)
    if begin_line is not None:
        raise PipelineError(
            f"{path}:{begin_line}: '# BEGIN SOLUTION' has no matching '# END SOLUTION' before the "
            f"end of its cell (line {first_line + len(lines)})"
        )
    return out, found


@dataclasses.dataclass
class Transformed:
    text: str  # the transformed MyST text
    hidden: list[bool]  # per remaining code cell: did it hold a solution (block or tagged cell)?


def transform_source(text: str, mode: str, path: str = "<source>") -> Transformed:
    """Apply the marking scheme to a whole MyST notebook text.

    In ``"lesson"`` mode the cells tagged ``solution`` are removed (with one blank line after
    them) and solution blocks become stubs; in ``"solution"`` mode all cells stay and the marks
    go. Markdown is never changed.
    """
    lines = text.split("\n")
    cells = find_code_cells(lines, path)
    out: list[str] = []
    hidden: list[bool] = []
    pos = 0
    for cell in cells:
        out.extend(lines[pos : cell.body_start])
        body = lines[cell.body_start : cell.end]
        new_body, had_block = transform_code(body, mode, path, cell.body_start + 1, cell.tags)
        if mode == "lesson" and "solution" in cell.tags:
            del out[len(out) - (cell.body_start - cell.start) :]  # drop the fence and options too
            pos = cell.end + 1
            if pos < len(lines) and lines[pos].strip() == "":
                pos += 1
            continue
        out.extend(new_body)
        out.append(lines[cell.end])
        hidden.append(had_block or "solution" in cell.tags)
        pos = cell.end + 1
    out.extend(lines[pos:])
    return Transformed("\n".join(out), hidden)


# ---- notebooks -------------------------------------------------------------------------------


def source_sha256(text: str) -> str:
    return hashlib.sha256(f"llmcourse-nb-v{TOOL_VERSION}\n{text}".encode("utf-8")).hexdigest()


def _cell_id(name: str, index: int) -> str:
    return f"{hashlib.sha1(name.encode()).hexdigest()[:8]}-{index:03d}"


def _badge_data_uri(root: Path) -> str:
    """The "Open in Colab" badge (``book/_static/open-in-colab.png``) as a data URI.

    Inlined so that the notebook shows it anywhere (Colab, Jupyter, GitHub, the book) without
    fetching a remote image; PNG because Markdown renderers refuse SVG data URIs.
    """
    import base64

    path = root / "book" / "_static" / "open-in-colab.png"
    if not path.exists():
        raise PipelineError(f"{path} is missing; it is the Colab badge every notebook starts with")
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


SETUP_HEADER = "# Setup: in Google Colab this installs the course package; elsewhere it does nothing."
_VERSION_RE = re.compile(r'^__version__ = "(?P<version>[^"]+)"$', re.M)
_FOOTER_RE = re.compile(r'^  extra_footer: .*$', re.M)


def package_version(root: Path = ROOT) -> str:
    """The course's one version: ``__version__`` in ``llmcourse/__init__.py``.

    ``pyproject.toml`` reads it from there (``dynamic = ["version"]``), every notebook's set-up
    cell installs the release tagged ``v<version>``, and the book's footer shows it.
    """
    text = (root / "llmcourse" / "__init__.py").read_text(encoding="utf-8")
    match = _VERSION_RE.search(text)
    if not match:
        raise PipelineError("llmcourse/__init__.py has no `__version__ = \"X.Y.Z\"` line")
    return match.group("version")


def release_tag(root: Path = ROOT) -> str:
    """The git tag of the version the notebooks install, ``v<version>``."""
    return f"v{package_version(root)}"


def config_text(root: Path = ROOT) -> str:
    """``_config.yml`` with its footer line naming the current version (the book's version)."""
    text = (root / "_config.yml").read_text(encoding="utf-8")
    footer = (f'  extra_footer: "llmcourse {package_version(root)}: the notebooks install the release '
              f'{release_tag(root)} of the package"')
    if not _FOOTER_RE.search(text):
        raise PipelineError("_config.yml has no `  extra_footer:` line under html: (the book's version)")
    return _FOOTER_RE.sub(lambda _: footer, text, count=1)


def preamble_cells(layout: Layout, name: str, kind: str) -> list[tuple[str, str, list[str]]]:
    """The cells every generated notebook starts with: the Colab badge and the setup cell."""
    badge = f"[![Open in Colab]({_badge_data_uri(layout.root)})]({layout.colab_url('lessons', name)})"
    if kind == "lesson":
        markdown = f"{badge} Run this lesson in Google Colab (choose a T4 GPU runtime for the real-size runs)."
    else:
        markdown = (
            f"{badge} Try the exercises yourself in Google Colab, or open "
            f"[this solved notebook]({layout.colab_url('solutions', name)}) there."
        )
    setup = (
        f"{SETUP_HEADER}\n"
        f"# It installs the release this notebook was written for ({release_tag(layout.root)}), not\n"
        "# whatever the repository holds today.\n"
        "import subprocess\n"
        "import sys\n"
        "\n"
        'if "google.colab" in sys.modules:\n'
        "    subprocess.run([sys.executable, \"-m\", \"pip\", \"install\", \"-q\",\n"
        f'                    "git+{layout.repo_url}@{release_tag(layout.root)}"], check=True)'
    )
    setup_tags = ["remove-cell"] if kind == "solution" else []
    return [("markdown", markdown, []), ("code", setup, setup_tags)]


def make_notebook(layout: Layout, name: str, kind: str, text: str, hidden: Sequence[bool], sha: str, path: str):
    """Build the (unexecuted) notebook of ``kind`` ``"lesson"`` or ``"solution"`` from MyST text."""
    import jupytext
    import nbformat

    parsed = jupytext.reads(text, fmt="md:myst")
    nb = nbformat.v4.new_notebook()
    nb.nbformat, nb.nbformat_minor = 4, 5
    cells = []
    for cell_type, source, tags in preamble_cells(layout, name, kind):
        cell = nbformat.v4.new_markdown_cell(source) if cell_type == "markdown" else nbformat.v4.new_code_cell(source)
        if tags:
            cell.metadata["tags"] = list(tags)
        cells.append(cell)
    code_index = 0
    for cell in parsed.cells:
        metadata = {k: v for k, v in dict(cell.metadata).items() if k not in ("execution", "jupyter", "trusted")}
        if cell.cell_type == "code":
            if code_index >= len(hidden):
                raise PipelineError(f"{path}: jupytext found more code cells than the {{code-cell}} fences")
            tags = list(metadata.get("tags", []))
            if kind == "solution" and hidden[code_index] and "hide-input" not in tags:
                tags.append("hide-input")
            if tags:
                metadata["tags"] = tags
            code_index += 1
            new = nbformat.v4.new_code_cell(cell.source, metadata=metadata)
        elif cell.cell_type == "markdown":
            new = nbformat.v4.new_markdown_cell(cell.source, metadata=metadata)
        else:
            new = nbformat.v4.new_raw_cell(cell.source, metadata=metadata)
        cells.append(new)
    if code_index != len(hidden):
        raise PipelineError(
            f"{path}: jupytext read {code_index} code cells but the file has {len(hidden)} "
            "{code-cell} blocks; check the fences"
        )
    for index, cell in enumerate(cells):
        cell["id"] = _cell_id(name, index)
    nb.cells = cells
    nb.metadata = {
        "kernelspec": dict(KERNELSPEC),
        "language_info": copy.deepcopy(LANGUAGE_INFO),
        "llmcourse": {"kind": kind, "lesson": name, "source_sha256": sha},
    }
    return nb


def dumps(nb) -> str:
    """Serialise a notebook deterministically (sorted keys, one-space indent, final newline)."""
    import nbformat

    nbformat.validate(nb)
    return nbformat.writes(nb, version=4).rstrip("\n") + "\n"


@dataclasses.dataclass
class Generated:
    name: str
    source_path: Path
    sha: str
    lesson_md: str
    lesson_nb: object
    solution_nb: object  # unexecuted


def generate(layout: Layout, source_path: Path) -> Generated:
    """Everything that derives from one lesson source, except the execution of the solution."""
    name = source_path.stem
    if not LESSON_RE.match(name):
        raise PipelineError(f"{source_path}: lesson files are named dayNN_slug.md (lower case, digits, _)")
    text = source_path.read_text(encoding="utf-8")
    rel = _rel(source_path, layout.root)
    lesson = transform_source(text, "lesson", rel)
    solution = transform_source(text, "solution", rel)
    sha = source_sha256(text)
    lesson_nb = make_notebook(layout, name, "lesson", lesson.text, lesson.hidden, sha, rel)
    solution_nb = make_notebook(layout, name, "solution", solution.text, solution.hidden, sha, rel)
    return Generated(name, source_path, sha, lesson.text, lesson_nb, solution_nb)


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def _cells_signature(nb) -> list[tuple]:
    """What must be unchanged for stored outputs to be reused: every cell but the set-up cell's
    text (it does nothing outside Colab, so a new release tag in it changes no output)."""
    return [
        (c["cell_type"], SETUP_HEADER if str(c["source"]).startswith(SETUP_HEADER) else c["source"],
         tuple(c.get("metadata", {}).get("tags", [])), c.get("id"))
        for c in nb["cells"]
    ]


def _normalise_widget_ids(nb, name: str) -> None:
    """Replace the random widget model ids by ids derived from the lesson name and order.

    Models are numbered in the order they are reached: the widgets displayed in the outputs
    (cell order), then the models their state refers to (breadth first, sorted keys), then any
    left over (ordered by their state with ids blanked), so that re-executing an unchanged
    notebook reproduces the same ids.
    """
    state = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
    if not state:
        return
    order: list[str] = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            view = output.get("data", {}).get("application/vnd.jupyter.widget-view+json")
            if view and view.get("model_id") in state and view["model_id"] not in order:
                order.append(view["model_id"])
    queue = list(order)
    while queue:
        current = queue.pop(0)
        refs = re.findall(r"IPY_MODEL_([0-9a-f]+)", json.dumps(state[current], sort_keys=True))
        for ref in refs:
            if ref in state and ref not in order:
                order.append(ref)
                queue.append(ref)
    blank = lambda k: re.sub(r"[0-9a-f]{32}", "", json.dumps(state[k], sort_keys=True))  # noqa: E731
    order += sorted((k for k in state if k not in order), key=blank)
    mapping = {old: hashlib.sha256(f"{name}:widget:{i}".encode()).hexdigest()[:32] for i, old in enumerate(order)}
    text = json.dumps({"cells": [dict(c) for c in nb.cells], "widgets": nb.metadata["widgets"]}, sort_keys=True)
    for old, new in mapping.items():
        text = text.replace(old, new)
    data = json.loads(text)
    import nbformat

    nb.cells = [nbformat.from_dict(c) for c in data["cells"]]
    nb.metadata["widgets"] = data["widgets"]


def execute_solution(nb, name: str, cwd: Path, timeout: int = 900):
    """Execute a solution notebook on the CPU; return it with deterministic metadata."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    import shutil
    import tempfile

    from llmcourse.threads import kernel_env
    from tools import lesson_times

    nb = copy.deepcopy(nb)
    # The course's thread policy (one torch thread, llmcourse/threads.py), as for a learner and
    # in CI: with `-j 2` on two cores, kernels of two threads each wait on each other.
    env = kernel_env(dict(os.environ, **KERNEL_ENV))
    env["CUDA_VISIBLE_DEVICES"] = ""  # the stored outputs are always the CPU run
    tmp = tempfile.mkdtemp(prefix=f"llmcourse-build-{name[:5]}-")
    env["TMPDIR"] = tmp  # a fresh temporary folder: nothing an earlier run cached is reused
    lesson_times.add_probe(nb)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(cwd)}},
        record_timing=True,
        store_widget_state=True,
    )
    start = time.perf_counter()
    try:
        client.execute(env=env)
    except CellExecutionError as exc:
        raise PipelineError(f"solutions/{name}.md: a cell failed while executing:\n{exc}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    build_time = lesson_times.take_probe(nb, time.perf_counter() - start, env)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    nb.metadata["llmcourse"][lesson_times.KEY] = build_time
    nb.metadata["language_info"] = copy.deepcopy(LANGUAGE_INFO)
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    _normalise_widget_ids(nb, name)
    return nb


def _solution_text(nb, stored, executed: bool, name: str) -> str:
    import nbformat

    if stored is not None:
        nb = copy.deepcopy(nb)
        for new, old in zip(nb.cells, stored.cells):
            if new.cell_type == "code":
                new.outputs = old.get("outputs", [])
                new.execution_count = old.get("execution_count")
        if "widgets" in stored.metadata:
            nb.metadata["widgets"] = stored.metadata["widgets"]
        if "build_time" in stored.metadata.get("llmcourse", {}):
            nb.metadata["llmcourse"]["build_time"] = stored.metadata["llmcourse"]["build_time"]
    nb.metadata["llmcourse"]["executed"] = executed
    return dumps(nb)


def _reusable(stored, gen: Generated) -> bool:
    """Stored outputs can be reused when the source hash and the generated cells are unchanged."""
    if stored is None:
        return False
    meta = stored.metadata.get("llmcourse", {})
    return (
        meta.get("source_sha256") == gen.sha
        and meta.get("executed") is True
        and _cells_signature(stored) == _cells_signature(gen.solution_nb)
    )


def _read_nb(path: Path):
    import nbformat

    if not path.exists():
        return None
    try:
        return nbformat.read(str(path), as_version=4)
    except Exception:  # noqa: BLE001 - a broken file is simply stale
        return None


def write_if_changed(path: Path, text: str) -> bool:
    """Write ``text`` to ``path`` unless it already holds exactly that; return True if written."""
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return True


# ---- table of contents and API pages ---------------------------------------------------------


def lesson_sources(layout: Layout) -> list[Path]:
    """The lesson sources ``solutions/dayNN_slug.md``, sorted by name."""
    if not layout.solutions.is_dir():
        return []
    return sorted(p for p in layout.solutions.glob("day*.md") if LESSON_RE.match(p.stem))


def _is_public_module(path: Path) -> bool:
    return not path.name.startswith("_") and (
        (path.is_dir() and (path / "__init__.py").exists()) or path.suffix == ".py"
    )


def public_modules(root: Path) -> list[str]:
    """Public modules and sub-packages directly under ``llmcourse``, from the file system, sorted."""
    package = root / "llmcourse"
    names = ["llmcourse"]
    for path in sorted(package.iterdir()) if package.is_dir() else []:
        if _is_public_module(path):
            names.append(f"llmcourse.{path.stem}")
    return names


def submodules(root: Path, module: str) -> list[str]:
    """Public modules inside a sub-package (recursively), sorted; the lessons' check modules
    ``llmcourse.checks.dayNN`` are left out of the API reference."""
    if module == "llmcourse":
        return []
    folder = root.joinpath(*module.split("."))
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.iterdir()):
        if not _is_public_module(path) or (module == "llmcourse.checks" and re.match(r"day\d+$", path.stem)):
            continue
        name = f"{module}.{path.stem}"
        found.append(name)
        if path.is_dir():
            found += submodules(root, name)
    return found


def _declared_all(root: Path, module: str) -> list[str]:
    """The names in a package's ``__all__`` list, read statically (nothing is imported)."""
    import ast

    init = root.joinpath(*module.split("."), "__init__.py")
    if not init.exists():
        return []
    try:
        tree = ast.parse(init.read_text(encoding="utf-8"))
    except SyntaxError:
        return []
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets) and node.value is not None:
            try:
                return sorted(str(n) for n in ast.literal_eval(node.value))
            except ValueError:
                return []
    return []


def _automodule(module: str, exclude: Sequence[str] = (), all_aware: bool = True) -> str:
    lines = ["```{eval-rst}", f".. automodule:: {module}", "   :members:", "   :show-inheritance:"]
    if not all_aware:
        lines.append("   :ignore-module-all:")
    if exclude:
        lines.append("   :exclude-members: " + ", ".join(exclude))
    return "\n".join(lines) + "\n```\n"


def api_pages(root: Path) -> dict[str, str]:
    """The API reference: ``book/api/index.md`` and one page per sub-package of ``llmcourse``.

    A sub-package's page documents the package's public names (its ``__all__``) under their
    public path, ``llmcourse.data.get_batch``, then each public module for what the package
    does not re-export (so that ``llmcourse.train.checkpoint`` and its helpers resolve too).
    Docstrings should refer to re-exported names by their public path.
    """
    modules = public_modules(root)
    pages = {}
    for module in modules:
        exported = _declared_all(root, module)
        parts = [f"# `{module}`\n\n", _automodule(module)]
        for sub in submodules(root, module):
            hidden = sorted(set(exported) | set(_declared_all(root, sub.rsplit(".", 1)[0])))
            parts.append(f"\n## `{sub}`\n\n" + _automodule(sub, hidden, all_aware=False))
        pages[f"book/api/{module}.md"] = "".join(parts)
    listing = "\n".join(f"- [`{m}`]({m}.md)" for m in modules)
    pages["book/api/index.md"] = (
        "# API reference\n\n"
        "The reference of the `llmcourse` package, generated from its docstrings. The lessons "
        "build each piece by hand first; this is the tested version they then use.\n\n"
        f"{listing}\n"
    )
    return pages


def lesson_week(day: int) -> int:
    """The week (1-6) that lesson ``day`` belongs to: six lessons a week."""
    return min(max((day - 1) // 6 + 1, 1), max(WEEKS))


def toc_text(layout: Layout) -> str:
    """``_toc.yml``: the front matter, the lessons by week, then the reference pages."""
    root = layout.root
    by_week: dict[int, list[str]] = {w: [] for w in WEEKS}
    for path in lesson_sources(layout):
        day = int(LESSON_RE.match(path.stem).group("day"))
        week = lesson_week(day)
        by_week[week].append(f"solutions/{path.stem}")
    lines = [
        "# Generated by `python -m tools.nb build` from the files in solutions/ and book/; do not edit.",
        "format: jb-book",
        "root: book/intro",
        "parts:",
        "  - caption: Getting started",
        "    chapters:",
        "      - file: book/how_to_take",
        "      - file: book/exercises",
    ]
    for week, title in WEEKS.items():
        lines += [f'  - caption: "Week {week}"', "    chapters:", f"      - file: book/week{week}"]
        if by_week[week]:
            lines.append("        sections:")
            lines += [f"          - file: {doc}" for doc in by_week[week]]
    lines += ["  - caption: Reference", "    chapters:", "      - file: book/glossary", "      - file: book/references"]
    if (root / "book" / "faults.md").is_file():  # the faults and bad inputs tried, with their errors
        lines.append("      - file: book/faults")
    performance = sorted(p.stem for p in (root / "book").glob("performance_*.md"))
    lines.append("      - file: book/performance")
    if performance:
        lines.append("        sections:")
        lines += [f"          - file: book/{stem}" for stem in performance]
    modules = public_modules(root)
    lines += ["      - file: book/api/index", "        sections:"]
    lines += [f"          - file: book/api/{m}" for m in modules]
    return "\n".join(lines) + "\n"


# ---- build and check -------------------------------------------------------------------------


def select(layout: Layout, names: Sequence[str]) -> list[Path]:
    """Resolve lesson names (``day03``, ``day03_tokenizers``, or a path) to source files."""
    sources = lesson_sources(layout)
    if not names:
        return sources
    chosen = []
    for raw in names:
        key = Path(raw).stem
        matches = [p for p in sources if p.stem == key or p.stem.startswith(key + "_")]
        if not matches:
            known = ", ".join(p.stem for p in sources) or "none"
            raise PipelineError(f"no lesson source matches {raw!r} in {layout.solutions} (lessons: {known})")
        chosen += [m for m in matches if m not in chosen]
    return chosen


def _execute_job(args: tuple) -> tuple[str, Optional[str], Optional[str], float]:
    layout, source, force = args
    start = time.time()
    try:
        gen = generate(layout, source)
        path = layout.solutions / f"{gen.name}.ipynb"
        stored = _read_nb(path)
        if not force and _reusable(stored, gen):
            return gen.name, _solution_text(gen.solution_nb, stored, True, gen.name), None, 0.0
        executed = execute_solution(gen.solution_nb, gen.name, layout.solutions)
        return gen.name, dumps(_mark_executed(executed)), None, time.time() - start
    except PipelineError as exc:
        return source.stem, None, str(exc), time.time() - start


def _mark_executed(nb):
    nb.metadata["llmcourse"]["executed"] = True
    return nb


def build(layout: Layout, names: Sequence[str] = (), *, execute: bool = False, force: bool = False,
          jobs: int = 1, log=print) -> list[str]:
    """Regenerate the lessons, the toc, the API pages and (with ``execute``) the solutions.

    Returns the list of errors (empty on success); every file is written only if it changed.
    """
    errors: list[str] = []
    sources = select(layout, names)
    to_execute: list[Path] = []
    for source in sources:
        try:
            gen = generate(layout, source)
        except PipelineError as exc:
            errors.append(str(exc))
            continue
        for path, text in (
            (layout.lessons / f"{gen.name}.md", gen.lesson_md),
            (layout.lessons / f"{gen.name}.ipynb", dumps(gen.lesson_nb)),
        ):
            if write_if_changed(path, text):
                log(f"wrote {_rel(path, layout.root)}")
        path = layout.solutions / f"{gen.name}.ipynb"
        stored = _read_nb(path)
        if not force and _reusable(stored, gen):
            if write_if_changed(path, _solution_text(gen.solution_nb, stored, True, gen.name)):
                log(f"wrote {_rel(path, layout.root)} (outputs reused)")
        elif execute:
            to_execute.append(source)
        else:
            if write_if_changed(path, _solution_text(gen.solution_nb, None, False, gen.name)):
                log(f"wrote {_rel(path, layout.root)} WITHOUT outputs: run with --execute to execute it")
    if to_execute:
        jobs = max(1, min(jobs, len(to_execute)))
        work = [(layout, s, force) for s in to_execute]
        if jobs == 1:
            results = map(_execute_job, work)
        else:
            pool = concurrent.futures.ProcessPoolExecutor(max_workers=jobs)
            results = pool.map(_execute_job, work)
        for name, text, error, seconds in results:
            if error:
                errors.append(error)
                log(f"FAILED {name} ({seconds:.0f}s)")
                continue
            path = layout.solutions / f"{name}.ipynb"
            changed = write_if_changed(path, text)
            log(f"executed {name} in {seconds:.1f}s" + (f", wrote {_rel(path, layout.root)}" if changed else ", unchanged"))
    if (layout.root / "_config.yml").exists():
        for rel, text in _book_files(layout).items():
            if write_if_changed(layout.root / rel, text):
                log(f"wrote {rel}")
        api_dir = layout.root / "book" / "api"
        wanted = {Path(r).name for r in api_pages(layout.root)}
        for stale in sorted(api_dir.glob("*.md")) if api_dir.is_dir() else []:
            if stale.name not in wanted:
                stale.unlink()
                log(f"removed {_rel(stale, layout.root)}")
    return errors


def _book_files(layout: Layout) -> dict[str, str]:
    files = {"_toc.yml": toc_text(layout), "_config.yml": config_text(layout.root)}
    files.update(api_pages(layout.root))
    return files


def check(layout: Layout) -> list[str]:
    """Every stale generated file, as ``"<path>: <why>"``; empty when all are current."""
    problems: list[str] = []
    names = set()
    for source in lesson_sources(layout):
        names.add(source.stem)
        try:
            gen = generate(layout, source)
        except PipelineError as exc:
            problems.append(str(exc))
            continue
        for path, text in (
            (layout.lessons / f"{gen.name}.md", gen.lesson_md),
            (layout.lessons / f"{gen.name}.ipynb", dumps(gen.lesson_nb)),
        ):
            rel = _rel(path, layout.root)
            if not path.exists():
                problems.append(f"{rel}: missing")
            elif path.read_text(encoding="utf-8") != text:
                problems.append(f"{rel}: differs from what {_rel(source, layout.root)} generates")
        path = layout.solutions / f"{gen.name}.ipynb"
        rel = _rel(path, layout.root)
        stored = _read_nb(path)
        if stored is None:
            problems.append(f"{rel}: missing or unreadable")
            continue
        meta = stored.metadata.get("llmcourse", {})
        if meta.get("source_sha256") != gen.sha:
            problems.append(f"{rel}: executed from an older version of {_rel(source, layout.root)} (source hash differs)")
        elif not meta.get("executed"):
            problems.append(f"{rel}: not executed (no stored outputs)")
        elif _cells_signature(stored) != _cells_signature(gen.solution_nb):
            problems.append(f"{rel}: its cells differ from what {_rel(source, layout.root)} generates")
        else:
            problems.extend(fragile_outputs(stored, rel))
    for folder, pattern in ((layout.lessons, "*.md"), (layout.lessons, "*.ipynb"), (layout.solutions, "*.ipynb")):
        for path in sorted(folder.glob(pattern)) if folder.is_dir() else []:
            if LESSON_RE.match(path.stem) and path.stem not in names:
                problems.append(f"{_rel(path, layout.root)}: orphan (no solutions/{path.stem}.md); delete it")
    if (layout.root / "_config.yml").exists():
        for rel, text in _book_files(layout).items():
            path = layout.root / rel
            if not path.exists():
                problems.append(f"{rel}: missing")
            elif path.read_text(encoding="utf-8") != text:
                problems.append(f"{rel}: out of date")
        api_dir = layout.root / "book" / "api"
        wanted = {Path(r).name for r in api_pages(layout.root)}
        for path in sorted(api_dir.glob("*.md")) if api_dir.is_dir() else []:
            if path.name not in wanted:
                problems.append(f"{_rel(path, layout.root)}: no such module any more; delete it")
    return problems


# ---- outputs that would not reproduce on another CPU ---------------------------------------

# A decimal with six or more digits after the point (`2.4468231201`): an unrounded float.
_UNROUNDED = re.compile(r"(?<![\w.])[-+]?\d+\.\d{6,}(?![\d\w])")
# A number in scientific notation of size 1e-6 or below (`4.8e-07`, `1.1921e-07`): round-off.
_ROUNDOFF = re.compile(r"(?<![\w.])[-+]?\d+(?:\.\d+)?[eE]-(?:0*[6-9]|0*[1-9]\d)(?![\d\w])")
FRAGILE_MARK = ": prints the "
FRAGILE_OK = "# output-ok: "
"""A comment that lets one code line's output through (with the reason), e.g. a tiny learning rate."""


def fragile_outputs(nb, rel: str) -> list[str]:
    """Cells of an executed solution whose compared text output depends on the CPU.

    The regression tests compare decimals with a tolerance (``tools/nbtolerance.py``), which
    holds for rounded results, not for round-off: a raw error magnitude (``4.8e-07``) or an
    unrounded float (``2.4468231201``) changes from one instruction set to another. Cells tagged
    ``nbval-ignore-output`` or ``nbval-skip`` are not compared and not looked at; a cell whose
    source holds ``# output-ok: <reason>`` is let through.

    Example::

        >>> import nbformat
        >>> nb = nbformat.v4.new_notebook()
        >>> cell = nbformat.v4.new_code_cell("print(d)")
        >>> cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="max diff 4.8e-07\\n")]
        >>> nb.cells = [cell]
        >>> print(*fragile_outputs(nb, "x.ipynb"))  # doctest: +ELLIPSIS
        x.ipynb cell 0: prints the round-off magnitude '4.8e-07'; print a statement instead ...
    """
    problems = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        tags = set(cell.metadata.get("tags", []))
        if tags & {"nbval-ignore-output", "nbval-skip"} or FRAGILE_OK in cell.source:
            continue
        for output in cell.get("outputs", []):
            texts = [output.get("text", "")] if output.get("output_type") == "stream" else []
            texts.append(output.get("data", {}).get("text/plain", ""))
            for text in texts:
                found = _ROUNDOFF.search(text)
                if found:
                    problems.append(
                        f"{rel} cell {index}: prints the round-off magnitude {found.group()!r}; print a "
                        f"statement instead (f\"max |difference| < 1e-5: {{diff < 1e-5}}\")"
                    )
                    break
                found = _UNROUNDED.search(text)
                if found:
                    problems.append(
                        f"{rel} cell {index}: prints the unrounded float {found.group()!r}; round it "
                        f"(f\"{{x:.4f}}\") so that it reproduces on another CPU"
                    )
                    break
            else:
                continue
            break
    return problems


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.nb", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="generate lessons, solution notebooks, _toc.yml and API pages")
    b.add_argument("names", nargs="*", help="lessons to build (day03 or day03_slug); default: all")
    b.add_argument("--execute", action="store_true", help="execute solution notebooks whose source changed")
    b.add_argument("--force", action="store_true", help="re-execute even if the source is unchanged (implies --execute)")
    b.add_argument("--jobs", "-j", type=int, default=1, help="notebooks executed in parallel (default 1)")
    sub.add_parser("check", help="exit 1 naming every stale generated file")
    t = sub.add_parser("times", help="the CPU and wall time each solved notebook took in its last build")
    t.add_argument("names", nargs="*", help="lessons (day03 or day03_slug); default: all")
    args = parser.parse_args(argv)
    if args.command == "times":
        from tools import lesson_times

        print(lesson_times.table(lesson_times.records(args.names)))
        return 0
    try:
        layout = Layout.from_root(ROOT)
        if args.command == "build":
            start = time.time()
            errors = build(layout, args.names, execute=args.execute or args.force, force=args.force, jobs=args.jobs)
            for error in errors:
                print(f"error: {error}", file=sys.stderr)
            print(f"build: {len(select(layout, args.names))} lesson(s), {len(errors)} error(s), {time.time() - start:.1f}s")
            return 1 if errors else 0
        problems = check(layout)
        fragile = [p for p in problems if FRAGILE_MARK in p]
        stale = [p for p in problems if FRAGILE_MARK not in p]
        for problem in stale:
            print(f"stale: {problem}")
        for problem in fragile:
            print(f"fragile output: {problem}")
        if stale:
            print(f"{len(stale)} stale generated file(s); run: python -m tools.nb build --execute", file=sys.stderr)
        if fragile:
            print(
                f"{len(fragile)} output(s) would not reproduce on another CPU; fix the print in the "
                "solution's source (see CONTRIBUTING.md, 'Outputs are regression tests')",
                file=sys.stderr,
            )
        if problems:
            return 1
        print(f"check: all generated files are current ({len(lesson_sources(layout))} lesson(s))")
        return 0
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
