"""Whether a process is alive, by its pid: the stack's supervisor and services (for `status` and
`down`), and the lander that announced its SQL door (for a reader choosing the door).

Standard library only: the CLI imports it at start.

>>> import os
>>> pid_alive(os.getpid()), pid_alive(None), pid_alive(0)
(True, False, False)
"""

from __future__ import annotations

import os


def pid_alive(pid: int | None) -> bool:
    # A pid of 0 or less is no process: `os.kill` would signal a whole process group instead.
    if pid is None or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process, but one that exists
        return True
    return True
