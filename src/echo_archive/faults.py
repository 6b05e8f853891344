"""Fault points: named places in the write path where tests inject failures.

The commit protocol calls :func:`point` at each step (a blob write, an fsync,
the catalog transaction, checkpoint signing...). In normal operation this is a
dictionary lookup that does nothing. Tests arm a point to prove the crash-safety
contract (DESIGN.md invariant 2) at that exact step, in a real process:

* ``ECHO_FAULT=NAME:ERRNO[:N]`` raises ``OSError(ERRNO)`` (``ENOSPC``, ``EIO``...)
  the N-th time (default 1st) the point named ``NAME`` is reached;
* ``ECHO_FAULT=NAME:KILL[:N]`` sends ``SIGKILL`` to the process itself there,
  so a crash test can stop a commit at a chosen step;
* :func:`arm` / :func:`disarm` do the same from Python inside a test process.

Several faults may be given, separated by commas. Point names are listed in
:data:`POINTS`; arming an unknown name raises ``ValueError`` so a typo cannot
make a test pass vacuously.
"""

from __future__ import annotations

import errno as _errno
import os
import signal
import threading

__all__ = ["POINTS", "arm", "disarm", "hits", "point"]

POINTS: frozenset[str] = frozenset(
    {
        "blob.write",  # before small blobs are written to the blob store
        "blob.fsync",  # before the blob store commits (makes them durable)
        "blob.large.write",  # before a large blob's file is written
        "blob.large.rename",  # before a large blob's temp file is renamed into place
        "catalog.begin",  # first thing inside the catalog transaction
        "catalog.commit",  # before the catalog transaction (entries + hashes) commits
        "checkpoint.sign",  # before the new checkpoint is signed
        "checkpoint.write",  # inside the transaction that stores the signed checkpoint
    }
)

_lock = threading.Lock()
_armed: dict[str, tuple[str, int]] = {}
_hits: dict[str, int] = {}


def _parse_env(value: str) -> dict[str, tuple[str, int]]:
    armed: dict[str, tuple[str, int]] = {}
    for part in filter(None, (p.strip() for p in value.split(","))):
        fields = part.split(":")
        if len(fields) not in (2, 3):
            raise ValueError(f"ECHO_FAULT: {part!r} is not NAME:ERRNO[:N] or NAME:KILL[:N]")
        name, action = fields[0], fields[1].upper()
        nth = int(fields[2]) if len(fields) == 3 else 1
        _check(name, action)
        armed[name] = (action, nth)
    return armed


def _check(name: str, action: str) -> None:
    if name not in POINTS:
        raise ValueError(f"unknown fault point {name!r}; known: {sorted(POINTS)}")
    if action != "KILL" and not hasattr(_errno, action):
        raise ValueError(f"fault action {action!r} is neither KILL nor an errno name")


def arm(name: str, action: str, nth: int = 1) -> None:
    """Arm fault point ``name`` to fail the ``nth`` time it is reached.

    Args:
        name: one of :data:`POINTS`.
        action: an errno name (``"ENOSPC"``, ``"EIO"``) to raise ``OSError``, or
            ``"KILL"`` to SIGKILL the current process.
        nth: which hit (1-based) fails; earlier hits pass.

    Raises:
        ValueError: unknown point or action.

    """
    action = action.upper()
    _check(name, action)
    with _lock:
        _armed[name] = (action, nth)
        _hits[name] = 0


def disarm() -> None:
    """Disarm every fault point and reset hit counters."""
    with _lock:
        _armed.clear()
        _hits.clear()


def hits(name: str) -> int:
    """Return how many times point ``name`` was reached since it was armed."""
    return _hits.get(name, 0)


def point(name: str) -> None:
    """Mark that the write path reached fault point ``name``.

    Raises:
        OSError: when the point is armed with an errno and this is the chosen hit.

    """
    if not _armed:
        return
    with _lock:
        plan = _armed.get(name)
        if plan is None:
            return
        _hits[name] = _hits.get(name, 0) + 1
        action, nth = plan
        if _hits[name] != nth:
            return
    if action == "KILL":
        os.kill(os.getpid(), signal.SIGKILL)
    code = getattr(_errno, action)
    raise OSError(code, f"{os.strerror(code)} (injected at fault point {name})")


_env = os.environ.get("ECHO_FAULT", "")
if _env:
    _armed.update(_parse_env(_env))
