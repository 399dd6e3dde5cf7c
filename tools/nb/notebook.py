"""One lesson source in, its notebooks out: the Colab badge and set-up cell, the cells, the metadata.

:func:`generate` does everything that derives from ``solutions/dayNN_slug.md`` except executing
the solution: the lesson's MyST text with stubs, the lesson notebook, and the solution notebook
without outputs. Notebooks are written with :func:`dumps` (deterministic bytes), and
:func:`cells_signature` says whether a stored solution still has the cells the source makes.

Example::

    >>> source_sha256("x") == source_sha256("x") != source_sha256("y")
    True
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
from pathlib import Path
from typing import Sequence

from tools.nb.layout import LESSON_RE, Layout, PipelineError, rel_path
from tools.nb.marks import transform_source
from tools.nb.release import release_tag

KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}
LANGUAGE_INFO = {
    "codemirror_mode": {"name": "ipython", "version": 3},
    "file_extension": ".py",
    "mimetype": "text/x-python",
    "name": "python",
    "nbconvert_exporter": "python",
    "pygments_lexer": "ipython3",
}
TOOL_VERSION = 1  # bump when the generated form changes, so that outputs are regenerated
SETUP_HEADER = "# Setup: in Google Colab this installs the course package; elsewhere it does nothing."


def source_sha256(text: str) -> str:
    """The hash a solution notebook records of its source (and of this tool's version)."""
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


def read_notebook(path: Path):
    """The notebook stored at ``path``, or ``None`` when it is missing or unreadable (stale)."""
    import nbformat

    if not path.exists():
        return None
    try:
        return nbformat.read(str(path), as_version=4)
    except Exception:  # noqa: BLE001 - a broken file is simply stale
        return None


def cells_signature(nb) -> list[tuple]:
    """What must be unchanged for stored outputs to be reused: every cell but the set-up cell's
    text (it does nothing outside Colab, so a new release tag in it changes no output)."""
    return [
        (c["cell_type"], SETUP_HEADER if str(c["source"]).startswith(SETUP_HEADER) else c["source"],
         tuple(c.get("metadata", {}).get("tags", [])), c.get("id"))
        for c in nb["cells"]
    ]


@dataclasses.dataclass
class Generated:
    name: str
    source_path: Path
    sha: str
    lesson_md: str
    lesson_nb: object
    solution_nb: object  # unexecuted


def lesson_files(layout: Layout, gen: Generated) -> list[tuple[Path, str]]:
    """The lesson's two generated files and the text each must hold (``build`` writes them,
    ``check`` compares them)."""
    return [(layout.lessons / f"{gen.name}.md", gen.lesson_md),
            (layout.lessons / f"{gen.name}.ipynb", dumps(gen.lesson_nb))]


def generate(layout: Layout, source_path: Path) -> Generated:
    """Everything that derives from one lesson source, except the execution of the solution."""
    name = source_path.stem
    if not LESSON_RE.match(name):
        raise PipelineError(f"{source_path}: lesson files are named dayNN_slug.md (lower case, digits, _)")
    text = source_path.read_text(encoding="utf-8")
    rel = rel_path(source_path, layout.root)
    lesson = transform_source(text, "lesson", rel)
    solution = transform_source(text, "solution", rel)
    sha = source_sha256(text)
    lesson_nb = make_notebook(layout, name, "lesson", lesson.text, lesson.hidden, sha, rel)
    solution_nb = make_notebook(layout, name, "solution", solution.text, solution.hidden, sha, rel)
    return Generated(name, source_path, sha, lesson.text, lesson_nb, solution_nb)
