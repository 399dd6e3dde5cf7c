"""The course's one thread policy: how many CPU threads torch may use in a lesson.

Every lesson's set-up cell calls :func:`limit_threads`, and everything that starts a notebook
kernel or a worker process for a learner (``llmcourse check``, ``python -m tools.nb build``)
passes :func:`kernel_env`. The policy is **one torch thread on the CPU**, because:

- the course's CPU models are small: a second thread saves little, since most of a step is
  many small operations whose start-up cost threads do not share;
- a learner's laptop is busy with other work (a browser, a second notebook). A thread that waits
  for a core holds up every other thread of the same operation at its next barrier, so two
  threads on a busy 2-core machine can be many times *slower* than one (measured for issue 21:
  one training step took 1,851 ms with two threads and 253 ms with one, with two other
  CPU-bound processes running);
- one thread gives the same float results on every run, so stored outputs repeat.

``LLMCOURSE_THREADS=N`` (a whole number of at least 1) overrides the policy, for a learner with
an idle many-core machine who wants to try. On a CUDA device :func:`limit_threads` leaves torch
alone: there the CPU only feeds the GPU.

Example:
    >>> limit_threads("cpu")
    1
    >>> import torch; torch.get_num_threads()
    1
    >>> kernel_env({})["OMP_NUM_THREADS"]
    '1'
    >>> shell_exports({"LLMCOURSE_THREADS": "2"})
    'export OMP_NUM_THREADS=2 MKL_NUM_THREADS=2'

A shell script applies the policy with ``python -m llmcourse.threads --export``, which prints that
line (``tools/run.sh`` does, before the tests)::

    exports=$(python -m llmcourse.threads --export)   # stops a `set -e` script on a bad value
    eval "$exports"
"""

from __future__ import annotations

import os
import shlex
import sys

ENV_VAR = "LLMCOURSE_THREADS"
DEFAULT = 1
POOLS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")   # the native thread pools torch and numpy use


def cpu_threads(environ: dict[str, str] | None = None) -> int:
    """The number of torch CPU threads the course uses: ``$LLMCOURSE_THREADS`` or 1."""
    env = os.environ if environ is None else environ
    raw = env.get(ENV_VAR, "").strip()
    if not raw:
        return DEFAULT
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{ENV_VAR}={raw!r} is not a whole number of threads of at least 1; "
                         f"unset it to use the course's policy of {DEFAULT}")
    return int(raw)


def limit_threads(device=None) -> int | None:
    """Apply the policy: on the CPU set torch's thread count and return it; on CUDA return None.

    ``device`` (a string or ``torch.device``) defaults to ``"cuda"`` when a GPU is visible,
    else ``"cpu"``.
    """
    import torch

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if torch.device(device).type == "cuda":
        return None
    n = cpu_threads()
    torch.set_num_threads(n)
    return n


def kernel_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """A copy of ``environ`` (default ``os.environ``) in which the OpenMP and MKL pools follow the
    policy, for a notebook kernel or worker process started for a learner. A value the caller
    already set wins."""
    env = dict(os.environ if environ is None else environ)
    n = str(cpu_threads(env))
    for var in POOLS:
        env.setdefault(var, n)
    return env


def shell_exports(environ: dict[str, str] | None = None) -> str:
    """The policy as one line of shell, ``export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1``, with the
    values :func:`kernel_env` would give."""
    env = kernel_env(environ)
    return "export " + " ".join(f"{var}={shlex.quote(env[var])}" for var in POOLS)


def main(argv: list[str] | None = None) -> int:
    """``python -m llmcourse.threads --export``: print :func:`shell_exports` for ``eval``."""
    argv = sys.argv[1:] if argv is None else argv
    if argv != ["--export"]:
        print("llmcourse.threads: error: the only option is --export (python -m llmcourse.threads "
              "--export prints the thread policy as a shell export line)", file=sys.stderr)
        return 2
    try:
        print(shell_exports())
    except ValueError as exc:
        print(f"llmcourse.threads: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
