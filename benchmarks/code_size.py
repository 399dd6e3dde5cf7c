"""How big is the package, and how long are its central functions?

Prints, for ``llmcourse/`` outside ``checks/``:

- the total number of lines (``wc -l``) and the longest module;
- the number of ``raise`` statements (counted with :mod:`ast`, so strings and comments that
  mention "raise" are not counted);
- the *body lines* of the functions a reader of the course studies: the non-blank,
  non-comment lines of the function after its signature and docstring.

The functions are found by qualified name; where a concept is spread over several functions
(the BPE trainer, ``GPT.forward`` and its helper) all of them are summed and listed. A name that
no longer exists is skipped, so the script keeps working as the code is reorganised. Run::

    python benchmarks/code_size.py
    python benchmarks/code_size.py --json out/code_size.json
    python benchmarks/code_size.py --root /tmp/old/llmcourse     # an older checkout
"""

from __future__ import annotations

import argparse
import ast
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "llmcourse"  # --root measures another checkout

# concept -> candidate "module:Qualified.name" entries (those that exist are summed)
CONCEPTS = {
    "CausalSelfAttention.forward": ["model/layers.py:CausalSelfAttention.forward",
                                    "model/attention.py:CausalSelfAttention.forward"],
    "GPT.forward": ["model/gpt.py:GPT.forward", "model/gpt.py:GPT._trunk"],
    "BPE trainer": ["tokenizers/bpe.py:BPETokenizer.train", "tokenizers/bpe.py:_learn_merges",
                    "tokenizers/bpe_train.py:learn_merges"],
    "Trainer.fit": ["train/trainer.py:Trainer.fit"],
    "textbook BPE train": ["tokenizers/basic.py:train"],
}

# modules whose size is printed on their own (those that exist)
WATCHED = ["generate.py", "generate/__init__.py", "generate/sampling.py", "generate/settings.py",
           "generate/decoding.py", "generate/api.py", "generate/beam.py", "model/layers.py",
           "model/config.py", "train/config.py", "tokenizers/basic.py", "fields.py"]


def modules() -> list[Path]:
    return sorted(p for p in ROOT.rglob("*.py") if "checks" not in p.relative_to(ROOT).parts)


def find_function(tree: ast.AST, qualname: str) -> ast.FunctionDef | None:
    node: ast.AST = tree
    for part in qualname.split("."):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) \
                    and child.name == part:
                node = child
                break
        else:
            return None
    return node if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) else None


def body_lines(fn: ast.FunctionDef, source_lines: list[str]) -> int:
    body = fn.body
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None),
                                                             ast.Constant) \
            and isinstance(body[0].value.value, str):
        body = body[1:]  # the docstring
    if not body:
        return 0
    lines = source_lines[body[0].lineno - 1: fn.end_lineno]
    return sum(1 for line in lines if line.strip() and not line.strip().startswith("#"))


def measure() -> dict:
    mods = modules()
    sizes = {str(p.relative_to(ROOT)): len(p.read_text().splitlines()) for p in mods}
    raises = 0
    for p in mods:
        raises += sum(isinstance(n, ast.Raise) for n in ast.walk(ast.parse(p.read_text())))
    longest = max(sizes, key=sizes.get)
    concepts = {}
    for concept, entries in CONCEPTS.items():
        parts = {}
        for entry in entries:
            mod, qual = entry.split(":")
            path = ROOT / mod
            if not path.exists():
                continue
            text = path.read_text()
            fn = find_function(ast.parse(text), qual)
            if fn is not None:
                parts[entry] = body_lines(fn, text.splitlines())
        concepts[concept] = {"total": sum(parts.values()), "parts": parts}
    watched = {m: sizes[m] for m in WATCHED if m in sizes}
    return {"lines": sum(sizes.values()), "modules": len(mods), "watched": watched,
            "longest": {"module": longest, "lines": sizes[longest]},
            "raise": raises, "concepts": concepts}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", help="also write the figures to this file")
    p.add_argument("--root", help="the llmcourse/ folder to measure (default: this checkout's); "
                   "e.g. of `git archive <commit> llmcourse | tar -x -C /tmp/old`")
    args = p.parse_args()
    if args.root:
        global ROOT
        ROOT = Path(args.root).resolve()
    m = measure()
    print(f"llmcourse/ outside checks/: {m['lines']} lines in {m['modules']} modules")
    print(f"longest module: {m['longest']['module']} ({m['longest']['lines']} lines)")
    print(f"raise statements: {m['raise']}")
    print("modules: " + ", ".join(f"{k} {v}" for k, v in m["watched"].items()))
    for concept, c in m["concepts"].items():
        parts = ", ".join(f"{k.split(':')[1]} {v}" for k, v in c["parts"].items())
        print(f"body lines of {concept}: {c['total']}  ({parts})")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(m, indent=2) + "\n")


if __name__ == "__main__":
    main()
