"""The numbers of a sweep: mean ± std over seeds, the difference of two settings, the table.

A sweep's rows are one dict per run (:func:`check_row` says what each holds);
:class:`SweepResult` summarises them per setting, prints the table and draws the plot.

>>> rows = [{"setting": "a", "params": {}, "seed": s, "val_loss": v, "train_loss": v,
...          "seconds": 1.0} for s, v in enumerate([2.0, 2.2, 2.4])]
>>> print(SweepResult(rows).table())
setting  val loss (mean ± std)  seeds     min     max  train loss
-------  ---------------------  -----  ------  ------  ----------
a              2.2000 ± 0.2000      3  2.0000  2.4000      2.2000
"""

from __future__ import annotations

import difflib
import math
import os
from pathlib import Path
from typing import Any, Sequence

#: What a run's ``result.json`` (and each row of ``results.json``) must hold, with its type.
ROW_FIELDS = {"setting": str, "seed": int, "val_loss": float, "train_loss": float,
              "seconds": float}


def check_row(row: Any, path: str | os.PathLike[str]) -> dict[str, Any]:
    """``row`` if it is a run's result as a sweep writes it, else a ValueError naming ``path``.

    >>> check_row({"val_loss": 1}, "out/sweep/base/seed0/result.json")
    Traceback (most recent call last):
    ...
    ValueError: out/sweep/base/seed0/result.json is not a sweep result: it lacks 'setting', \
'seed', 'train_loss', 'seconds'; delete it and run the sweep again (the run is not trained again)
    """
    fix = "delete it and run the sweep again (the run is not trained again)"
    if not isinstance(row, dict):
        raise ValueError(f"{path} is not a sweep result: it holds a {type(row).__name__}, "
                         f"not an object with {', '.join(ROW_FIELDS)}; {fix}")
    missing = [k for k in ROW_FIELDS if k not in row]
    if missing:
        raise ValueError(f"{path} is not a sweep result: it lacks "
                         f"{', '.join(repr(k) for k in missing)}; {fix}")
    for key, kind in ROW_FIELDS.items():
        value = row[key]
        ok = isinstance(value, str) if kind is str else (
            isinstance(value, (int, float)) and not isinstance(value, bool)
            and (kind is float or isinstance(value, int)) and math.isfinite(value))
        if not ok:
            raise ValueError(f"{path} is not a sweep result: its {key} is {value!r}, not "
                             f"{'text' if kind is str else 'a finite number'}; {fix}")
    return row


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
        from llmcourse.runs_data import read_json

        path = Path(out_dir) / "results.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: run the sweep first (llmcourse sweep ...)")
        data = read_json(path, "sweep results")
        rows = data.get("rows") if isinstance(data, dict) else None
        if not isinstance(rows, list):
            raise ValueError(f"{path} holds no list of rows; it was not written by a sweep "
                             "(run the sweep again to write it afresh)")
        return cls([check_row(r, path) for r in rows], data.get("preset", ""), str(out_dir))

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
        """Write ``results.json``, ``results.md`` and (``plot``) ``results.png`` in ``out_dir``.

        These files belong to the sweep: a rerun writes them afresh from its runs' results
        (each write atomic: a reader sees the old file or the new one).
        """
        from llmcourse.atomic import write_atomic, write_json_atomic

        out = Path(out_dir)
        write_json_atomic(out / "results.json", self.to_json())
        write_atomic(out / "results.md", self.markdown())
        if plot:
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure

            fig = Figure(figsize=(max(4.0, 1.1 * len(self.settings()) + 2), 3.5))
            FigureCanvasAgg(fig)
            self.plot(fig.add_subplot(1, 1, 1))
            fig.tight_layout()
            write_atomic(out / "results.png", lambda f: fig.savefig(f, format="png", dpi=100))

    def __repr__(self) -> str:
        return f"SweepResult({len(self.rows)} runs, {len(self.settings())} settings)"
