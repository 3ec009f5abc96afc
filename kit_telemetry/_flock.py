"""An advisory lock on a whole file, shared by the processes that append to it.

The trace file and the budget journal are appended to by every process of an agent; each
takes this lock around an append and its rollback, so no process truncates another's record.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

__all__ = ["exclusive"]

if sys.platform != "win32":
    import fcntl

    @contextlib.contextmanager
    def exclusive(fd: int) -> Iterator[None]:
        """Hold an exclusive ``flock`` on ``fd`` for the block.

        Some network file systems refuse locks: the block then runs unlocked (appends stay
        whole; only a rollback could race with another process's append).
        """
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:
            yield
            return
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

else:

    def exclusive(fd: int) -> contextlib.AbstractContextManager[None]:
        """No advisory locks on Windows: appends stay whole; rollbacks may race."""
        return contextlib.nullcontext()
