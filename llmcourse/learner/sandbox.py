"""Confining the kernel that runs a collected notebook (``llmcourse check``).

A notebook a teacher collects is code written by someone else. ``llmcourse check`` starts its
Jupyter kernel behind a prefix command that confines it, the first of these that works here:

- **bubblewrap** (``bwrap``, in most Linux distributions' packages): the whole file system
  read-only except the run's temporary folder, a fresh minimal ``/dev``, no network, its own
  process and IPC namespaces, killed with the command;
- **unshare** (util-linux) in an unprivileged user namespace: no network, and every mount
  read-only except the temporary folder (devices and other processes stay visible);
- neither: the notebook runs with your rights, and :func:`find_confinement` returns ``None`` so
  the command can say so before it starts.

Either prefix also caps the kernel's address space (``prlimit --as``) at the machine's memory.
A confinement counts only after a trial run shows that it keeps a write outside the temporary
folder from happening.

Example::

    >>> import tempfile
    >>> box = find_confinement(Path(tempfile.mkdtemp()))
    >>> box is None or box.name in ("bubblewrap", "unshare")
    True
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import shutil
import subprocess
from pathlib import Path
from typing import Optional

__all__ = ["Confinement", "find_confinement", "memory_limit"]

# Inside the unshare namespaces: bind the work folder on itself (writable), then make every other
# mount read-only; /proc and /sys are left as they are (the namespace cannot write the host's).
_UNSHARE_SCRIPT = r"""
set -e
work="$1"; shift
mount --bind "$work" "$work"
for point in $(awk '{print $2}' /proc/self/mounts | sort -u); do
  case "$point" in /proc|/proc/*|/sys|/sys/*|"$work") continue ;; esac
  mount -o remount,bind,ro "$point" 2>/dev/null || mount -o remount,bind,ro,nosuid,nodev "$point"
done
cd "$PWD"  # the folder we started in, looked up again: through the writable bind, not under it
exec "$@"
"""


@dataclasses.dataclass(frozen=True)
class Confinement:
    """How to confine a command: its ``name`` and the ``prefix`` to put before the command."""

    name: str  # "bubblewrap" or "unshare"
    prefix: tuple[str, ...]

    def wrap(self, command: list[str]) -> list[str]:
        """``command`` run confined: ``prefix + command``."""
        return [*self.prefix, *command]


def memory_limit() -> Optional[int]:
    """The address-space cap for the kernel, in bytes: the machine's memory (``None`` if unknown)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _limits() -> list[str]:
    limit = memory_limit()
    if limit is None or not shutil.which("prlimit"):
        return []
    return ["prlimit", f"--as={limit}", "--"]


def _bubblewrap(work: Path) -> Optional[Confinement]:
    if not shutil.which("bwrap"):
        return None
    prefix = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
              "--tmpfs", "/dev/shm", "--bind", str(work), str(work),
              "--unshare-net", "--unshare-pid", "--as-pid-1", "--unshare-ipc", "--unshare-uts",
              "--die-with-parent", "--chdir", str(work), "--"]
    return Confinement("bubblewrap", tuple(_limits() + prefix))


def _unshare(work: Path) -> Optional[Confinement]:
    if not (shutil.which("unshare") and shutil.which("mount") and shutil.which("awk")):
        return None
    prefix = ["unshare", "--user", "--map-root-user", "--net", "--mount", "--",
              "sh", "-c", _UNSHARE_SCRIPT, "sh", str(work)]
    return Confinement("unshare", tuple(_limits() + prefix))


def _keeps_writes_inside(box: Confinement, work: Path) -> bool:
    """Run a trial: a file made inside ``work`` must appear, one made beside it must not."""
    inside = work / f"trial-{secrets.token_hex(4)}"
    outside = work.parent / f".llmcourse-trial-{secrets.token_hex(8)}"
    script = f'touch "{inside}" && {{ touch "{outside}" 2>/dev/null; true; }}'
    try:
        subprocess.run(box.wrap(["sh", "-c", script]), stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    escaped = outside.exists()
    if escaped:
        outside.unlink()
    made = inside.exists()
    if made:
        inside.unlink()
    return made and not escaped


def find_confinement(work: Path) -> Optional[Confinement]:
    """The first confinement that works here for a kernel writing only to ``work``, or ``None``.

    ``LLMCOURSE_CHECK_CONFINE`` picks one: ``bubblewrap`` or ``unshare`` (that one only), or
    ``none`` (run without one; the command then warns).
    """
    choice = os.environ.get("LLMCOURSE_CHECK_CONFINE", "").strip().lower()
    if choice == "none":
        return None
    work = Path(work).resolve()
    for make in (_bubblewrap, _unshare):
        box = make(work)
        if box is None or (choice and box.name != choice):
            continue
        if _keeps_writes_inside(box, work):
            return box
    return None
