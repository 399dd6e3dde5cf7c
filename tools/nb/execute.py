"""Executing a solution notebook on the CPU, so that its stored outputs are the same every time.

:func:`execute_solution` runs the notebook in a fresh kernel with the course's thread policy
(``llmcourse/threads.py``), no GPU and an empty temporary folder, records how long it took
(:mod:`tools.nb.record`) and makes the metadata deterministic, widget ids included.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import time
from pathlib import Path

from tools.nb import record
from tools.nb.layout import PipelineError
from tools.nb.notebook import KERNELSPEC, LANGUAGE_INFO

# Kernel-side environment for executing solutions; tools/test_notebooks.sh uses the same.
KERNEL_ENV = {"MPLBACKEND": "module://matplotlib_inline.backend_inline", "PYTHONHASHSEED": "0"}


def normalise_widget_ids(nb, name: str) -> None:
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
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    import shutil
    import tempfile

    from llmcourse.threads import kernel_env

    nb = copy.deepcopy(nb)
    # The course's thread policy (one torch thread, llmcourse/threads.py), as for a learner and
    # in CI: with `-j 2` on two cores, kernels of two threads each wait on each other.
    env = kernel_env(dict(os.environ, **KERNEL_ENV))
    env["CUDA_VISIBLE_DEVICES"] = ""  # the stored outputs are always the CPU run
    tmp = tempfile.mkdtemp(prefix=f"llmcourse-build-{name[:5]}-")
    env["TMPDIR"] = tmp  # a fresh temporary folder: nothing an earlier run cached is reused
    record.add_probe(nb)
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
    build_time = record.take_probe(nb, time.perf_counter() - start, env)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    nb.metadata["llmcourse"][record.KEY] = build_time
    nb.metadata["language_info"] = copy.deepcopy(LANGUAGE_INFO)
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    normalise_widget_ids(nb, name)
    return nb
