"""How big is the package, and how big is each concept's reference against its engineered version?

ONE metric, for every figure and for every revision measured: **code lines** - the lines of a
file that hold Python code, without docstrings, comments and blank lines. :mod:`tokenize` finds
the lines that hold a token other than a comment or a line break; :mod:`ast` finds the
docstrings (the string that opens a module, class or function), whose lines are then dropped. A
multi-line statement counts every line it spans; a string that is data, not a docstring, counts.

Printed, for ``llmcourse/``:

- the code lines of the package outside ``checks/``, of ``checks/`` (the exercise checks, counted
  separately, not left out) and of both together;
- the largest module (in code lines);
- for each concept a learner builds, its reference and its engineered version(s), each a list of
  units: a whole file (``train/loop.py``) or one class or function in it
  (``model/gpt.py:GPT.forward``, decorators and signature included). A unit that does not
  exist in the measured revision is shown as absent, so one mapping serves old and new layouts.

The working tree is measured by default; ``--rev`` measures a commit instead, reading its files
with ``git ls-tree`` and ``git show`` (nothing is checked out or changed), so that before and
after are the same metric::

    python benchmarks/code_size.py                  # the working tree
    python benchmarks/code_size.py --rev cca75c9    # a past commit
    python benchmarks/code_size.py --rev HEAD --json out/code_size.json
"""

from __future__ import annotations

import argparse
import ast
import io
import json
import subprocess
import sys
import tokenize
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "llmcourse"

METRIC = "code lines (no docstrings, comments or blank lines; tokenize + ast)"

# concept -> (reference units, engineered units). "file" or "file:Qualified.name", relative to
# llmcourse/. Units missing in a revision are reported as absent (tests/test_code_size.py checks
# that the working tree has every one: rename a unit here when its code moves).
CONCEPTS: dict[str, tuple[list[str], list[str]]] = {
    "attention formula": (  # day 09; the engineered one is torch's fused kernel, not ours
        ["model/functional.py:scaled_dot_product_attention"],
        []),
    "attention layer": (  # day 10; engineered: GQA, RoPE, KV cache, SDPA or the manual path
        ["model/attention_reference.py:PlainCausalSelfAttention"],
        ["model/layers.py:CausalSelfAttention"]),
    "GPT forward": (
        ["model/gpt.py:GPT.forward"],
        []),
    "training loop": (
        ["train/loop.py"],
        ["train/trainer.py:Trainer", "train/step.py", "train/resume.py", "train/hooks.py",
         "train/diverged.py"]),
    "loss estimation": (
        ["train/evaluate.py:estimate_loss"],
        ["train/trainer.py:Trainer.estimate_loss", "train/trainer.py:Trainer._evaluate",
         "train/ddp.py:estimate_loss_all_ranks"]),
    "BPE training": (
        ["tokenizers/basic.py:get_stats", "tokenizers/basic.py:merge",
         "tokenizers/basic.py:train"],
        ["tokenizers/bpe.py:BPETokenizer.train", "tokenizers/bpe_train.py",
         "tokenizers/bpe_options.py"]),
    "BPE encoding": (
        ["tokenizers/basic.py:encode", "tokenizers/basic.py:decode"],
        ["tokenizers/bpe.py:BPETokenizer.encode_ordinary",
         "tokenizers/bpe.py:BPETokenizer._encode_ordinary",
         "tokenizers/bpe.py:BPETokenizer._encode_bytes",
         "tokenizers/bpe.py:BPETokenizer._encode_long",
         "tokenizers/bpe.py:BPETokenizer.decode_bytes", "tokenizers/bpe.py:BPETokenizer.decode"]),
    "sampling loop": (
        ["generate/reference.py"],
        ["generate/api.py", "generate/decoding.py", "generate/sampling.py",
         "generate/settings.py", "generate/compiled.py"]),
    "KV cache": (
        ["model/kv_cache.py:KVCache"],
        []),
    "LoRA": (
        ["finetune/lora.py:LoRALinear", "finetune/lora.py:apply_lora"],
        ["finetune/lora.py:merge_lora", "finetune/lora.py:unmerge_lora",
         "finetune/lora.py:unload_lora", "finetune/lora_files.py"]),
}

_NOT_CODE = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
             tokenize.ENDMARKER, tokenize.ENCODING}


def docstring_lines(tree: ast.AST) -> set[int]:
    """The line numbers of every docstring in ``tree``."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            first = node.body[0] if node.body else None
            if (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                    and isinstance(first.value.value, str)):
                lines.update(range(first.lineno, first.end_lineno + 1))
    return lines


def code_line_numbers(source: str) -> set[int]:
    """The numbers of the lines of ``source`` that hold code (the metric)."""
    lines: set[int] = set()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type not in _NOT_CODE:
            lines.update(range(tok.start[0], tok.end[0] + 1))
    return lines - docstring_lines(ast.parse(source))


def find_node(tree: ast.AST, qualname: str) -> ast.AST | None:
    """The class or function ``A.b`` at the top of ``tree`` (``None`` if there is none)."""
    node: ast.AST = tree
    for part in qualname.split("."):
        for child in ast.iter_child_nodes(node):
            if (isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                    and child.name == part):
                node = child
                break
        else:
            return None
    return node


class Source:
    """The ``.py`` files of ``llmcourse/`` in the working tree or in a git revision."""

    def __init__(self, rev: str | None = None) -> None:
        self.rev = rev
        if rev is None:
            root = REPO / PACKAGE
            self.paths = sorted(str(p.relative_to(root)) for p in root.rglob("*.py")
                                if "__pycache__" not in p.parts)
            self.label = f"working tree of {REPO}"
        else:
            sha = self._git("rev-parse", "--verify", f"{rev}^{{commit}}").strip()
            listing = self._git("ls-tree", "-r", "--name-only", sha, "--", f"{PACKAGE}/")
            self.paths = sorted(p[len(PACKAGE) + 1:] for p in listing.splitlines()
                                if p.endswith(".py"))
            self.label = f"git revision {rev} ({sha[:12]})"
            self.rev = sha
        self._cache: dict[str, str] = {}

    @staticmethod
    def _git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"code_size.py: error: git {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout

    def read(self, path: str) -> str | None:
        if path not in self.paths:
            return None
        if path not in self._cache:
            if self.rev is None:
                self._cache[path] = (REPO / PACKAGE / path).read_text(encoding="utf-8")
            else:
                self._cache[path] = self._git("show", f"{self.rev}:{PACKAGE}/{path}")
        return self._cache[path]


def measure_unit(source: Source, unit: str) -> int | None:
    """Code lines of ``file`` or ``file:Qual.name`` (``None``: absent in this revision)."""
    path, _, qualname = unit.partition(":")
    text = source.read(path)
    if text is None:
        return None
    lines = code_line_numbers(text)
    if not qualname:
        return len(lines)
    node = find_node(ast.parse(text), qualname)
    if node is None:
        return None
    first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
    return sum(1 for n in lines if first <= n <= node.end_lineno)


def measure(source: Source) -> dict:
    sizes = {p: len(code_line_numbers(source.read(p) or "")) for p in source.paths}
    is_checks = {p: p.split("/")[0] == "checks" for p in sizes}
    package = {p: n for p, n in sizes.items() if not is_checks[p]}
    checks = {p: n for p, n in sizes.items() if is_checks[p]}
    largest = max(package, key=package.get)
    concepts = {}
    for concept, (reference, engineered) in CONCEPTS.items():
        concepts[concept] = {
            side: {unit: measure_unit(source, unit) for unit in units}
            for side, units in (("reference", reference), ("engineered", engineered))}
    return {
        "metric": METRIC, "source": source.label,
        "package": {"code_lines": sum(package.values()), "modules": len(package)},
        "checks": {"code_lines": sum(checks.values()), "modules": len(checks)},
        "total": sum(sizes.values()),
        "largest": {"module": largest, "code_lines": package[largest]},
        "concepts": concepts,
    }


def _side(units: dict[str, int | None]) -> str:
    if not units:
        return "-"
    total = sum(n for n in units.values() if n is not None)
    parts = ", ".join(f"{u} {'absent' if n is None else n}" for u, n in units.items())
    return f"{total:5d}  ({parts})"


def report(m: dict) -> str:
    rows = [
        f"metric: {m['metric']}",
        f"measured: {m['source']}",
        f"llmcourse/ outside checks/: {m['package']['code_lines']} code lines in "
        f"{m['package']['modules']} modules",
        f"llmcourse/checks/: {m['checks']['code_lines']} code lines in "
        f"{m['checks']['modules']} modules",
        f"package total (both): {m['total']} code lines",
        f"largest module outside checks/: {m['largest']['module']} "
        f"({m['largest']['code_lines']} code lines)",
        "concepts (code lines; reference vs engineered):",
    ]
    for concept, sides in m["concepts"].items():
        rows.append(f"  {concept}")
        rows.append(f"    reference : {_side(sides['reference'])}")
        rows.append(f"    engineered: {_side(sides['engineered'])}")
    return "\n".join(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rev", help="measure this git revision (read with git show) instead of "
                   "the working tree, e.g. --rev cca75c9")
    p.add_argument("--json", help="also write the figures to this file")
    args = p.parse_args()
    m = measure(Source(args.rev))
    print(report(m))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(m, indent=2) + "\n")


if __name__ == "__main__":
    main()
