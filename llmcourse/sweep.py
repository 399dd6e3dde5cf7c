"""Sweeps: a grid of settings times seeds, one run folder each, and a table of mean ± std.

One training run answers "what loss did this seed get"; a sweep answers "what loss does this
setting get, and how much does it move from seed to seed". :func:`run_sweep` trains every
(setting, seed) pair of a grid (or of a list of named variants) into its own run folder::

    out/sweep/
        sweep.json                  the preset and base settings every run shares
        n_embd=64/seed0/            a run folder, as `llmcourse train` writes it, plus
                     result.json    its losses, written when the run is complete
        n_embd=64/seed1/ ...
        results.json results.md results.png

and summarises them (:class:`SweepResult`). Running the same sweep again skips the finished
runs, resumes an interrupted one from its checkpoint (or restarts it when it stopped before
its first one) and never touches a folder holding a run with other settings: it is refused
before anything is trained. ``jobs=N`` trains N runs at a time in subprocesses, each limited
to its share of the CPU threads.

Example (the grid and the table need no training):
    >>> expand_settings({"model.n_embd": [64, 128], "learning_rate": [1e-3]})
    [('n_embd=64,learning_rate=0.001', {'model.n_embd': 64, 'train.learning_rate': 0.001}), \
('n_embd=128,learning_rate=0.001', {'model.n_embd': 128, 'train.learning_rate': 0.001})]
    >>> rows = [{"setting": "a", "params": {}, "seed": s, "val_loss": v, "train_loss": v,
    ...          "seconds": 1.0} for s, v in enumerate([2.0, 2.2, 2.4])]
    >>> s = SweepResult(rows).summary()[0]
    >>> s["n"], round(s["val_mean"], 4), round(s["val_std"], 4)
    (3, 2.2, 0.2)
    >>> run = run_sweep("shakespeare-char-cpu", "out/sweep", grid={"n_embd": [64, 128]},
    ...                 seeds=3, overrides={"train": {"max_iters": 100}})  # doctest: +SKIP
    >>> print(run.table())                                                  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import difflib
import itertools
import json
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

__all__ = ["run_sweep", "SweepResult", "RunFailed", "mean_std", "difference_with_error", "expand_settings", "parse_grid", "parse_variant",
           "parse_seeds"]

SWEEP_FILE = "sweep.json"
RESULT_FILE = "result.json"
LOG_FILE = "worker.log"
#: Settings a sweep manages itself: the seed (``seeds=``) and each run's folder.
_MANAGED = {"train.seed": "give the seeds with seeds= (CLI: --seeds)",
            "train.out_dir": "the sweep names each run's folder under its out_dir",
            "train.overwrite": "a sweep never replaces a run; give another out_dir",
            "train.init_from": "a sweep resumes interrupted runs by itself"}




class RunFailed(ValueError):
    """A run of a sweep diverged, or failed in its subprocess (``jobs=N``; its log says why).

    The runs finished before it keep their folders and ``result.json``: fix the setting (or drop
    it) and run the sweep again to go on from there."""


# --------------------------------------------------------------------------------------------
# Settings


def _known() -> dict[str, set[str]]:
    from llmcourse.runs import known_fields

    return known_fields()


def resolve_key(key: str, known: dict[str, set[str]] | None = None) -> str:
    """``"section.name"`` for a setting given bare (``n_embd``) or with its section.

    >>> resolve_key("n_embd"), resolve_key("train.max_iters")
    ('model.n_embd', 'train.max_iters')
    >>> resolve_key("n_emb")
    Traceback (most recent call last):
    ...
    ValueError: unknown setting 'n_emb'; did you mean 'n_embd'?
    """
    from llmcourse.presets import SECTIONS

    known = _known() if known is None else known
    key = key.strip()
    if "." in key:
        section, _, name = key.partition(".")
        if section not in SECTIONS:
            close = difflib.get_close_matches(section, SECTIONS, n=1, cutoff=0.6)
            raise ValueError(f"unknown section {section!r} in {key!r}; use one of "
                             f"{', '.join(SECTIONS)}" + (f"; did you mean {close[0]!r}?" if close else ""))
        if name not in known[section]:
            close = difflib.get_close_matches(name, sorted(known[section]), n=1, cutoff=0.6)
            raise ValueError(f"unknown setting {key!r}: {section} has no {name!r}"
                             + (f"; did you mean '{section}.{close[0]}'?" if close else ""))
        full = key
    else:
        matches = [s for s in SECTIONS if key in known[s]]
        if len(matches) > 1:
            raise ValueError(f"{key!r} is a setting of {' and '.join(matches)}; name the section, "
                             "e.g. " + " or ".join(f"{s}.{key}" for s in matches))
        if not matches:
            every = sorted(set().union(*known.values()))
            close = difflib.get_close_matches(key, every, n=1, cutoff=0.6)
            raise ValueError(f"unknown setting {key!r}" + (f"; did you mean {close[0]!r}?" if close else
                                                            "; see llmcourse train --print-config"))
        full = f"{matches[0]}.{key}"
    if full in _MANAGED:
        raise ValueError(f"{full} cannot be swept or set in a sweep: {_MANAGED[full]}")
    return full


def _label(params: dict[str, Any]) -> str:
    """``"n_embd=64,lr=0.001"``: the short names, or the full ones where two would clash."""
    names = [k.partition(".")[2] for k in params]
    return ",".join(f"{n if names.count(n) == 1 else k}={v}" for (k, v), n in zip(params.items(), names))


def expand_settings(grid: dict[str, Sequence[Any]] | None = None,
                    variants: Sequence[tuple[str, dict[str, Any]]] | None = None
                    ) -> list[tuple[str, dict[str, Any]]]:
    """The settings of a sweep: ``[(name, {"section.key": value, ...}), ...]`` in order.

    ``grid`` gives the cross product of its value lists (the first key varies slowest);
    ``variants`` are named settings. Both together: every variant with every grid point; neither:
    one setting, ``"base"``, the preset as it is.

    Raises:
        ValueError: an unknown key (with a did-you-mean), an empty or repeated value list, a
            variant without a name, or two settings with the same name.
    """
    known = _known()
    grid = dict(grid or {})
    axes: list[list[tuple[str, Any]]] = []
    for key, values in grid.items():
        full = resolve_key(key, known)
        if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
            values = [values]
        values = list(values)
        if not values:
            raise ValueError(f"the grid gives no values for {key!r}; give at least one, "
                             f"e.g. {key}=64,128")
        if len({repr(v) for v in values}) < len(values):
            raise ValueError(f"the grid repeats a value of {key!r} ({values}); give each once "
                             "(seeds, not repeats, measure the spread)")
        if any(full == a[0][0] for a in axes):
            raise ValueError(f"the grid names {full} twice; give all its values in one list")
        axes.append([(full, v) for v in values])
    points = [dict(p) for p in itertools.product(*axes)] if axes else [{}]

    named: list[tuple[str, dict[str, Any]]] = []
    for item in variants or []:
        if not (isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[1], dict)):
            raise ValueError(f"a variant is (name, {{key: value}}), got {item!r}")
        name, params = str(item[0]).strip(), item[1]
        if not name:
            raise ValueError("a variant needs a name, e.g. ('rmsnorm', {'model.norm': 'rmsnorm'})")
        named.append((name, {resolve_key(k, known): v for k, v in params.items()}))

    settings: list[tuple[str, dict[str, Any]]] = []
    for vname, vparams in named or [("", {})]:
        for point in points:
            params = dict(vparams, **point)
            label = ",".join(x for x in (vname, _label(point)) if x) or "base"
            settings.append((label, params))
    names = [s[0] for s in settings]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"two settings are both named {twice[0]!r}; give each variant its own name")
    return settings


def parse_grid(items: Sequence[str]) -> dict[str, list[Any]]:
    """``["model.n_embd=64,128"]`` (the CLI's ``--grid``) as ``{"model.n_embd": [64, 128]}``.

    >>> parse_grid(["n_embd=64,128", "learning_rate=1e-3,3e-3"])
    {'n_embd': [64, 128], 'learning_rate': [0.001, 0.003]}
    """
    from llmcourse.presets import parse_value

    grid: dict[str, list[Any]] = {}
    for item in items:
        key, eq, raw = item.partition("=")
        if not eq or not key.strip():
            raise ValueError(f"--grid {item!r} is not of the form key=v1,v2 (e.g. model.n_embd=64,128)")
        values = [parse_value(v) for v in raw.split(",") if v.strip()]
        if not values:
            raise ValueError(f"--grid {item!r} gives no values; list them, e.g. {key.strip()}=64,128")
        if key.strip() in grid:
            raise ValueError(f"--grid names {key.strip()!r} twice; give all its values in one --grid")
        grid[key.strip()] = values
    return grid


def parse_variant(text: str) -> tuple[str, dict[str, Any]]:
    """``"rms:model.norm=rmsnorm,lr=2e-3"`` (the CLI's ``--variant``) as a named setting.

    >>> parse_variant("rms:model.norm=rmsnorm,learning_rate=2e-3")
    ('rms', {'model.norm': 'rmsnorm', 'learning_rate': 0.002})
    >>> parse_variant("baseline")
    ('baseline', {})
    """
    from llmcourse.presets import parse_value

    name, _, rest = text.partition(":")
    if not name.strip():
        raise ValueError(f"--variant {text!r} needs a name: NAME:key=value[,key=value]")
    params: dict[str, Any] = {}
    for part in (p for p in rest.split(",") if p.strip()):
        key, eq, raw = part.partition("=")
        if not eq or not key.strip():
            raise ValueError(f"--variant {text!r}: {part!r} is not key=value")
        params[key.strip()] = parse_value(raw)
    return name.strip(), params


def parse_seeds(seeds: int | str | Sequence[int]) -> list[int]:
    """``3`` -> ``[0, 1, 2]``; a list (or ``"0,5,7"``) is kept as given.

    >>> parse_seeds(3), parse_seeds("1,5")
    ([0, 1, 2], [1, 5])
    """
    if isinstance(seeds, str):
        parts = [p.strip() for p in seeds.split(",") if p.strip()]
        try:
            numbers = [int(p) for p in parts]
        except ValueError:
            raise ValueError(f"seeds {seeds!r}: give a count (3) or a list of whole numbers (0,1,5)") from None
        seeds = numbers[0] if len(parts) == 1 and "," not in seeds else numbers
    if isinstance(seeds, bool):
        raise ValueError(f"seeds={seeds!r}: give a count (e.g. 3) or a list of seeds")
    if isinstance(seeds, int):
        if seeds < 1:
            raise ValueError(f"seeds={seeds}: a sweep needs at least one seed (e.g. seeds=3)")
        return list(range(seeds))
    out = list(seeds)
    if not out or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in out):
        raise ValueError(f"seeds={out!r}: give a count (e.g. 3) or a non-empty list of whole numbers >= 0")
    if len(set(out)) < len(out):
        raise ValueError(f"seeds={out!r} repeats a seed; give each once")
    return out


def _base_preset(preset_name: str, overrides: Any) -> dict[str, dict[str, Any]]:
    """The preset with the sweep-wide overrides (a ``{section: {...}}`` dict, flat keys or
    ``["key=value", ...]`` as ``--set`` takes them)."""
    from llmcourse.presets import apply_overrides, get_preset

    try:
        preset = get_preset(preset_name)
    except KeyError as exc:
        raise ValueError(exc.args[0]) from None
    known = _known()
    if overrides is None:
        return preset
    if isinstance(overrides, (list, tuple)):
        for item in overrides:
            key = str(item).partition("=")[0]
            if "=" in str(item):
                resolve_key(key, known)  # refuses the settings the sweep manages
        return apply_overrides(preset, list(overrides), known=known)
    if not isinstance(overrides, dict):
        raise ValueError(f"overrides must be a dict or a list of 'key=value', got {type(overrides).__name__}")
    flat: dict[str, Any] = {}
    for key, value in overrides.items():
        if isinstance(value, dict):
            for name, v in value.items():
                flat[resolve_key(f"{key}.{name}", known)] = v
        else:
            flat[resolve_key(key, known)] = value
    return _with(preset, flat)


def _with(preset: dict[str, dict[str, Any]], params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out = copy.deepcopy(preset)
    for full, value in params.items():
        section, _, name = full.partition(".")
        out.setdefault(section, {})[name] = value
    return out


def _jsonable(obj: Any) -> Any:
    """``obj`` as it reads back from JSON (tuples as lists, paths as strings)."""
    return json.loads(json.dumps(obj, default=str))


def _folder_name(label: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._=,+-]", "_", label)
    return safe if safe not in ("", ".", "..") else "setting"


def _strip(preset: dict[str, Any]) -> dict[str, Any]:
    """A run's preset without its folder: what must match for a run to be this sweep's."""
    p = copy.deepcopy(preset)
    p.get("train", {}).pop("out_dir", None)
    return p


# --------------------------------------------------------------------------------------------
# Results


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """``(mean, sample standard deviation)``, dividing by ``n - 1``; the std of one value is 0.0.

    >>> [round(x, 4) for x in mean_std([2.0, 2.2, 2.4])]
    [2.2, 0.2]
    """
    values = [float(v) for v in values]
    n = len(values)
    if n == 0:
        raise ValueError("mean_std of no values; give at least one")
    mean = sum(values) / n
    if n < 2:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))


def difference_with_error(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """``(mean(b) - mean(a), standard error)``, the error ``sqrt(s_a²/n_a + s_b²/n_b)``
    (Welch's) from the sample standard deviations.

    >>> d, se = difference_with_error([2.0, 2.2, 2.4], [1.9, 2.0, 2.1])
    >>> round(d, 4), round(se, 4)
    (-0.2, 0.1291)
    """
    mean_a, std_a = mean_std(a)
    mean_b, std_b = mean_std(b)
    return mean_b - mean_a, math.sqrt(std_a ** 2 / len(a) + std_b ** 2 / len(b))


def _std(values: Sequence[float]) -> float:
    return mean_std(values)[1]


class SweepResult:
    """The rows of a sweep (one per run) and their summary per setting.

    ``rows``: dicts with ``setting``, ``params``, ``seed``, ``val_loss`` (the best validation
    loss of the run), ``train_loss`` (at the last evaluation), ``final_val_loss``, ``steps``,
    ``seconds`` (training time when it was trained), ``out_dir`` and ``status``
    (``"trained"`` or ``"skipped"``).
    """

    def __init__(self, rows: list[dict[str, Any]], preset: str = "", out_dir: str | None = None):
        self.rows = rows
        self.preset = preset
        self.out_dir = out_dir

    @classmethod
    def load(cls, out_dir: str | os.PathLike[str]) -> "SweepResult":
        """The results a sweep wrote to ``out_dir/results.json``."""
        from llmcourse.runs import read_json

        path = Path(out_dir) / "results.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: run the sweep first (llmcourse sweep ...)")
        data = read_json(path, "sweep results")
        return cls(data["rows"], data.get("preset", ""), str(out_dir))

    def settings(self) -> list[str]:
        """The settings' names, in the order of the sweep."""
        return list(dict.fromkeys(r["setting"] for r in self.rows))

    def summary(self) -> list[dict[str, Any]]:
        """One dict per setting: ``setting``, ``params``, ``n`` (seeds), ``val_mean``,
        ``val_std`` (sample std, n - 1; 0.0 for one seed), ``val_min``, ``val_max``,
        ``train_mean``, ``train_std``, ``seconds_mean``."""
        out = []
        for name in self.settings():
            rows = [r for r in self.rows if r["setting"] == name]
            val = [float(r["val_loss"]) for r in rows]
            train = [float(r["train_loss"]) for r in rows]
            out.append({
                "setting": name, "params": rows[0].get("params", {}), "n": len(rows),
                "val_mean": sum(val) / len(val), "val_std": _std(val),
                "val_min": min(val), "val_max": max(val),
                "train_mean": sum(train) / len(train), "train_std": _std(train),
                "seconds_mean": sum(float(r.get("seconds", 0.0)) for r in rows) / len(rows),
            })
        return out

    def losses(self, setting: str) -> list[float]:
        """The best validation losses of one setting's runs, in the order of the seeds."""
        if setting not in self.settings():
            close = difflib.get_close_matches(setting, self.settings(), n=1, cutoff=0.5)
            raise ValueError(f"no setting {setting!r} in this sweep"
                             + (f"; did you mean {close[0]!r}?" if close else
                                f"; it has {', '.join(self.settings())}"))
        return [float(r["val_loss"]) for r in self.rows if r["setting"] == setting]

    def compare(self, a: str, b: str) -> tuple[float, float]:
        """``(mean val loss of b - that of a, its standard error)``; see :func:`difference_with_error`."""
        return difference_with_error(self.losses(a), self.losses(b))

    def table(self, digits: int = 4) -> str:
        """A plain-text table, one row per setting: val loss mean ± std over n seeds."""
        head = ["setting", "val loss (mean ± std)", "seeds", "min", "max", "train loss"]
        body = [[s["setting"], f"{s['val_mean']:.{digits}f} ± {s['val_std']:.{digits}f}",
                 str(s["n"]), f"{s['val_min']:.{digits}f}", f"{s['val_max']:.{digits}f}",
                 f"{s['train_mean']:.{digits}f}"] for s in self.summary()]
        widths = [max(len(r[i]) for r in [head] + body) for i in range(len(head))]
        lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in
                           enumerate(zip(r, widths))).rstrip() for r in [head] + body]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def markdown(self, digits: int = 4) -> str:
        """The table as Markdown (what ``results.md`` holds)."""
        lines = ["| setting | val loss (mean ± std) | seeds | min | max | train loss |",
                 "|---|---:|---:|---:|---:|---:|"]
        for s in self.summary():
            lines.append(f"| {s['setting']} | {s['val_mean']:.{digits}f} ± {s['val_std']:.{digits}f} "
                         f"| {s['n']} | {s['val_min']:.{digits}f} | {s['val_max']:.{digits}f} "
                         f"| {s['train_mean']:.{digits}f} |")
        return "\n".join(lines) + "\n"

    def plot(self, ax: Any = None, title: str | None = None) -> Any:
        """Validation loss per setting: one dot per seed, the mean ± std as a bar; returns ``ax``."""
        if ax is None:
            import matplotlib.pyplot as plt

            _, ax = plt.subplots(figsize=(max(4.0, 1.1 * len(self.settings()) + 2), 3.5))
        summary = self.summary()
        for i, s in enumerate(summary):
            vals = [float(r["val_loss"]) for r in self.rows if r["setting"] == s["setting"]]
            k = len(vals)
            xs = [i + 0.16 * ((j - (k - 1) / 2) / max(k - 1, 1)) for j in range(k)]
            ax.scatter(xs, vals, s=14, color="tab:blue", alpha=0.6, zorder=2,
                       label="one seed" if i == 0 else None)
            ax.errorbar([i + 0.25], [s["val_mean"]], yerr=[s["val_std"]], fmt="o", color="black",
                        capsize=4, zorder=3, label="mean ± std" if i == 0 else None)
        ax.set_xticks(range(len(summary)))
        ax.set_xticklabels([s["setting"] for s in summary], rotation=20 if len(summary) > 4 else 0,
                           ha="right" if len(summary) > 4 else "center")
        ax.set_ylabel("best validation loss")
        ax.set_title(title or f"sweep of {self.preset or 'a preset'}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        return ax

    def to_json(self) -> dict[str, Any]:
        return {"preset": self.preset, "rows": self.rows, "summary": self.summary()}

    def save(self, out_dir: str | os.PathLike[str], plot: bool = True) -> None:
        """Write ``results.json``, ``results.md`` and (``plot``) ``results.png`` in ``out_dir``."""
        from llmcourse.runs import _write_bytes_atomic, _write_json_atomic

        out = Path(out_dir)
        _write_json_atomic(out / "results.json", self.to_json())
        _write_bytes_atomic(out / "results.md", self.markdown().encode("utf-8"))
        if plot:
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure

            fig = Figure(figsize=(max(4.0, 1.1 * len(self.settings()) + 2), 3.5))
            FigureCanvasAgg(fig)
            self.plot(fig.add_subplot(1, 1, 1))
            fig.tight_layout()
            tmp = out / f"results.png.tmp-{os.getpid()}"
            fig.savefig(tmp, format="png", dpi=100)
            os.replace(tmp, out / "results.png")

    def __repr__(self) -> str:
        return f"SweepResult({len(self.rows)} runs, {len(self.settings())} settings)"


# --------------------------------------------------------------------------------------------
# One run


def _outcome(run_dir: Path) -> dict[str, Any]:
    """The losses of the finished run in ``run_dir``, from its ``metrics.jsonl``."""
    from llmcourse.train import read_metrics

    evals = [r for r in read_metrics(run_dir / "metrics.jsonl") if r.get("type") == "eval"]
    if not evals:
        raise ValueError(f"{run_dir} finished without an evaluation; its metrics.jsonl is incomplete")
    last = evals[-1]
    vals = [r["val_loss"] for r in evals if r.get("val_loss") is not None]
    return {"val_loss": float(min(vals)), "final_val_loss": float(last["val_loss"]),
            "train_loss": float(last["train_loss"]), "steps": int(last["iter"])}


def _run_state(run_dir: Path, preset: dict[str, Any]) -> str:
    """``"done"``, ``"resume"``, ``"fresh"`` (nothing there, or a run that stopped before its
    first checkpoint), or raise when the folder holds something else."""
    from llmcourse.runs import RUN_FILE, read_json

    if not run_dir.exists():
        return "fresh"
    if not run_dir.is_dir():
        raise FileExistsError(f"{run_dir} is a file, not a run folder; move it or give another out_dir")
    run_file = run_dir / RUN_FILE
    if not run_file.is_file():
        extra = [p.name for p in run_dir.iterdir() if p.name != LOG_FILE and ".tmp" not in p.name]
        if extra:
            raise FileExistsError(
                f"{run_dir} holds {', '.join(sorted(extra)[:3])} but no run.json: it is not a run "
                "of this sweep and is never replaced; move it or give another out_dir")
        return "fresh"
    earlier = read_json(run_file, "run")
    if not isinstance(earlier, dict) or _strip(earlier.get("preset") or {}) != _strip(preset):
        raise FileExistsError(
            f"{run_dir} holds a run made with other settings than this sweep's; it is never "
            "replaced: give another out_dir (or the sweep's original settings)")
    if (run_dir / RESULT_FILE).is_file():
        return "done"
    if any((run_dir / n).is_file() for n in ("ckpt.pt", "best.pt")):
        return "resume"
    return "fresh"


def _run_one(spec: dict[str, Any]) -> dict[str, Any]:
    """Train (or resume, or skip) one run; return its row. ``spec`` is JSON-able."""
    from llmcourse.data.prepared import _folder_lock
    from llmcourse.runs import NothingToDo, _write_json_atomic, read_json, train_preset

    run_dir = Path(spec["run_dir"])
    preset = spec["preset"]
    row = {"setting": spec["setting"], "params": spec["params"], "seed": spec["seed"]}
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    with _folder_lock(run_dir, verbose=False):  # two sweeps sharing a folder train a run once
        state = _run_state(run_dir, preset)
        if state == "done":
            done = read_json(run_dir / RESULT_FILE, "sweep result")
            return dict(done, **row, out_dir=str(run_dir), status="skipped")
        from llmcourse.train import TrainingDiverged

        start = time.perf_counter()
        try:
            train_preset(preset, resume=state == "resume", progress=False)
        except NothingToDo:
            pass  # killed after its last checkpoint, before result.json: the run is complete
        except TrainingDiverged as exc:  # say which run of the sweep it was
            raise RunFailed(f"the run {spec['setting']} seed {spec['seed']} ({run_dir}): {exc}") from None
        seconds = time.perf_counter() - start
        result = dict(row, **_outcome(run_dir), seconds=seconds)
        _write_json_atomic(run_dir / RESULT_FILE, result)
        return dict(result, out_dir=str(run_dir), status="trained")


def _worker_main(spec_json: str) -> int:
    """``python -m llmcourse.sweep --worker SPEC``: one run in a child process."""
    import torch

    spec = json.loads(spec_json)
    torch.set_num_threads(int(spec.get("threads", 1)))
    try:
        _run_one(spec)
    except (ValueError, FileExistsError, FileNotFoundError) as exc:  # the user's: one line
        print(exc, file=sys.stderr)
        return 2
    return 0


# --------------------------------------------------------------------------------------------
# The sweep


def run_sweep(preset: str, out_dir: str | os.PathLike[str], *,
              grid: dict[str, Sequence[Any]] | None = None,
              variants: Sequence[tuple[str, dict[str, Any]]] | None = None,
              seeds: int | Sequence[int] = 3, overrides: Any = None, jobs: int = 1,
              progress: bool = False, plot: bool = True) -> SweepResult:
    """Train every (setting, seed) of a sweep that is not finished yet; return all the rows.

    Args:
        preset: a preset name (``llmcourse.presets.list_presets()``).
        out_dir: the sweep's folder; each run goes to ``out_dir/<setting>/seed<k>``.
        grid: ``{"model.n_embd": [64, 128], ...}``: the cross product of the value lists.
        variants: ``[("baseline", {}), ("rms", {"model.norm": "rmsnorm"})]``: named settings.
        seeds: ``n`` for seeds ``0..n-1`` (``train.seed``), or a list of seeds.
        overrides: settings for every run: ``{"train": {"max_iters": 100}}`` or
            ``["max_iters=100"]`` as ``--set`` takes them.
        jobs: ``1`` trains in this process; ``N`` trains N runs at a time in subprocesses,
            each with ``max(1, torch.get_num_threads() // N)`` threads.
        progress: print one line per run as it finishes.
        plot: also write ``results.png`` next to ``results.json`` and ``results.md``.

    Every check comes first: bad settings, a folder holding something else, or a run
    folder holding a run with other settings raise before anything is trained.

    Raises:
        ValueError: bad settings (one line, with a did-you-mean for an unknown key).
        FileExistsError: ``out_dir`` (or one of its run folders) holds something else.
        RunFailed: a run diverged, or failed in a subprocess (the message ends with the last
            line of its ``worker.log``); the runs finished before it keep their results.
    """
    import torch

    from llmcourse.runs import (_write_json_atomic, build_configs, prepare_preset_data,
                                read_json)

    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs={jobs!r}: give a whole number >= 1 (1 trains in this process)")
    seed_list = parse_seeds(seeds)
    base = _jsonable(_base_preset(preset, overrides))  # as run.json will hold it
    settings = [(label, _jsonable(params)) for label, params in expand_settings(grid, variants)]
    out = Path(out_dir)

    # The sweep folder: new, empty, or an earlier sweep with the same base settings.
    sweep_file = out / SWEEP_FILE
    record = {"preset": preset, "base": _strip(base)}
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"out_dir {out} is a file; give a folder for the sweep")
    if sweep_file.is_file():
        earlier = read_json(sweep_file, "sweep")
        if earlier != record:
            raise FileExistsError(
                f"{out} holds a sweep with other base settings (preset "
                f"{earlier.get('preset') if isinstance(earlier, dict) else '?'!r}); its runs are "
                "never replaced: give another out_dir")
    elif out.is_dir() and any(not p.name.startswith(".") for p in out.iterdir()):
        raise FileExistsError(f"{out} is not empty and holds no {SWEEP_FILE}: it is not a sweep "
                              "folder and is never written into; give a new or empty out_dir")

    folders = [_folder_name(label) for label, _ in settings]
    clash = next((f for f in folders if folders.count(f) > 1), None)
    if clash is not None:
        names = [label for (label, _), f in zip(settings, folders) if f == clash]
        raise ValueError(f"the settings {names[0]!r} and {names[1]!r} would share the folder "
                         f"{clash!r}; rename a variant (letters, digits and . _ = , + - only)")

    # Every run's settings and folder, checked before anything is trained.
    data_seen: dict[str, Any] = {}
    specs = []
    for label, params in settings:
        p = _with(base, params)
        key = json.dumps(p.get("data", {}), sort_keys=True, default=str)
        if key not in data_seen:  # prepared once here, not by N children at once
            data_seen[key] = prepare_preset_data(p, progress=progress)
        build_configs(p, data_seen[key].vocab_size)  # bad values fail now, in one line
        for seed in seed_list:
            run_dir = out / _folder_name(label) / f"seed{seed}"
            run = _with(p, {"train.seed": seed, "train.out_dir": str(run_dir)})
            _run_state(run_dir, run)  # raises on a folder holding something else
            specs.append({"preset": run, "run_dir": str(run_dir), "setting": label,
                          "params": params, "seed": seed})
    if train_max := [s for s in specs if s["preset"]["train"].get("max_iters", 1) < 1]:
        raise ValueError(f"max_iters={train_max[0]['preset']['train']['max_iters']} trains nothing; "
                         "set max_iters >= 1")
    _write_json_atomic(sweep_file, record)

    rows: list[dict[str, Any] | None] = [None] * len(specs)

    def report(i: int, row: dict[str, Any]) -> None:
        rows[i] = row
        if progress:
            done = sum(r is not None for r in rows)
            print(f"[{done}/{len(specs)}] {row['setting']} seed {row['seed']}: val "
                  f"{row['val_loss']:.4f} ({row['status']}, {row['seconds']:.1f} s)", flush=True)

    if jobs == 1:
        for i, spec in enumerate(specs):
            report(i, _run_one(spec))
    else:
        _run_parallel(specs, jobs, max(1, torch.get_num_threads() // jobs), report)

    result = SweepResult([r for r in rows if r is not None], preset, str(out))
    result.save(out, plot=plot)
    return result


def _run_parallel(specs: list[dict[str, Any]], jobs: int, threads: int, report: Any) -> None:
    """Run the specs in at most ``jobs`` child processes at a time."""
    from llmcourse.runs import read_json

    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    waiting = list(enumerate(specs))
    running: dict[int, tuple[subprocess.Popen[bytes], Any, dict[str, Any]]] = {}
    failed: RunFailed | None = None
    try:
        while waiting or running:
            while waiting and failed is None and len(running) < jobs:
                i, spec = waiting.pop(0)
                run_dir = Path(spec["run_dir"])
                if _run_state(run_dir, spec["preset"]) == "done":  # no process for a skip
                    done = read_json(run_dir / RESULT_FILE, "sweep result")
                    report(i, dict(done, out_dir=str(run_dir), status="skipped"))
                    continue
                run_dir.mkdir(parents=True, exist_ok=True)
                log = open(run_dir / LOG_FILE, "wb")
                child = dict(spec, threads=threads)
                proc = subprocess.Popen([sys.executable, "-m", "llmcourse.sweep", "--worker",
                                         json.dumps(child)], stdout=log, stderr=subprocess.STDOUT,
                                        env=env)
                running[i] = (proc, log, spec)
            if failed is not None:
                waiting.clear()  # start no more; let the running ones finish their work
            for i, (proc, log, spec) in list(running.items()):
                if proc.poll() is None:
                    continue
                log.close()
                del running[i]
                run_dir = Path(spec["run_dir"])
                if proc.returncode != 0 or not (run_dir / RESULT_FILE).is_file():
                    tail = (run_dir / LOG_FILE).read_text(errors="replace").strip().splitlines()
                    last = tail[-1] if tail else "no output"
                    if proc.returncode == 2 and last.startswith("the run "):  # it said which run
                        failed = failed or RunFailed(f"{last} (log: {run_dir / LOG_FILE})")
                    else:
                        failed = failed or RunFailed(
                            f"the run {spec['setting']} seed {spec['seed']} failed (exit "
                            f"{proc.returncode}): {last} (log: {run_dir / LOG_FILE})")
                    continue
                done = read_json(run_dir / RESULT_FILE, "sweep result")
                report(i, dict(done, out_dir=str(run_dir), status="trained"))
            if running:
                time.sleep(0.05)
    finally:
        for proc, log, _ in running.values():  # Ctrl-C or an error here: no orphans training
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()
    if failed is not None:
        raise failed


# --------------------------------------------------------------------------------------------
# The command line: ``llmcourse sweep`` (registered by llmcourse.cli)


def cmd_sweep(args: Any) -> int:
    """``llmcourse sweep``: run the sweep, print the table, say where the results are."""
    grid = parse_grid(args.grid or [])
    variants = [parse_variant(v) for v in args.variant or []]
    result = run_sweep(args.preset, args.out_dir, grid=grid, variants=variants or None,
                       seeds=args.seeds, overrides=list(args.set or []),
                       jobs=args.jobs, progress=not args.no_progress, plot=not args.no_plot)
    print(result.table())
    trained = sum(r["status"] == "trained" for r in result.rows)
    files = "results.json, results.md" + ("" if args.no_plot else ", results.png")
    print(f"{len(result.rows)} runs ({trained} trained, {len(result.rows) - trained} skipped); "
          f"{files} in {args.out_dir}")
    return 0


def add_parser(sub: Any) -> None:
    """Add the ``sweep`` subcommand to the CLI's subparsers."""
    import argparse

    from llmcourse.cli import _count
    from llmcourse.presets import list_presets

    def seeds(text: str) -> list[int]:
        try:
            return parse_seeds(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    p = sub.add_parser("sweep", help="train a grid of settings times seeds; table of mean ± std")
    p.add_argument("--preset", default="shakespeare-char-cpu", choices=list_presets(),
                   help="starting configuration (default: shakespeare-char-cpu)")
    p.add_argument("--grid", action="append", metavar="KEY=V1,V2",
                   help="a setting and its values, e.g. --grid model.n_embd=64,128; repeat for a "
                        "cross product")
    p.add_argument("--variant", action="append", metavar="NAME:KEY=V[,KEY=V]",
                   help="a named setting, e.g. --variant rms:model.norm=rmsnorm; repeatable")
    p.add_argument("--seeds", default=[0, 1, 2], type=seeds, metavar="N|S1,S2",
                   help="seeds per setting: a count (3 = seeds 0,1,2) or a list (default: 3)")
    p.add_argument("--out-dir", required=True, help="the sweep's folder (one run folder per "
                                                    "setting and seed inside)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a setting for every run, e.g. --set max_iters=200")
    p.add_argument("--jobs", type=_count(1), default=1, metavar="N",
                   help="runs trained at a time, each in its own process (default: 1)")
    p.add_argument("--no-plot", action="store_true", help="do not write results.png")
    p.add_argument("--no-progress", action="store_true", help="no line per finished run")
    p.set_defaults(func=cmd_sweep)


if __name__ == "__main__":  # pragma: no cover - the child process of run_sweep(jobs=N)
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        sys.exit(_worker_main(sys.argv[2]))
    print("usage: llmcourse sweep --help (this module's own entry is for run_sweep's workers)",
          file=sys.stderr)
    sys.exit(2)
