"""How every command of the package fails: one line on stderr, and an exit code with one meaning.

    exit 0   done
    exit 1   stopped: the work began and could not finish (a loss that became NaN, a write that
             failed mid-run); the line names the last good checkpoint, which is intact
    exit 2   refused: the command as given cannot run (a flag, a file, a folder); the line names
             the problem and the fix. Nothing the command was asked to write is changed

Every entry point's `main` is wrapped by `entry_point`, so a new script gets this for free:

    @errors.entry_point("python -m shared.compare")
    def main(argv=None) -> int: ...

What it turns into the one line: `Refused` and its kin (`CheckpointError`, `UnsupportedOption`),
`Stopped` and its kin (`RunError`, `NonFiniteLoss`), and `OSError`, with its path and reason.
Anything else is a bug in the package, and keeps its traceback. Set `PARADIGMS_TRACEBACK=1` to
see the traceback of the one-line errors too.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable

REFUSED, STOPPED = 2, 1  # exit codes


class Refused(ValueError):
    """The command as given cannot run; the message names the problem and the fix."""


class Stopped(RuntimeError):
    """Work that began and could not finish; the message names the last good checkpoint."""


def os_reason(e: OSError) -> str:
    """`PATH: reason` of an OSError, without Python's `[Errno N]`."""
    reason = e.strerror or str(e)
    path = e.filename if e.filename is not None else None
    return f"{path}: {reason}" if path is not None else reason


def one_line(message: str) -> str:
    """A message's lines joined by '; ': the promise is one line."""
    return "; ".join(part.strip() for part in str(message).splitlines() if part.strip())


def report(prog: str, message: str) -> None:
    print(f"{prog}: error: {one_line(message)}", file=sys.stderr)


def entry_point(prog: str, refuse: tuple[type[Exception], ...] = ()) -> Callable:
    """Wrap a script's `main(argv) -> int`: expected failures become one line and an exit code
    (1 stopped, 2 refused); argparse's own exits pass through (2). `refuse`: more exception
    types that mean bad input in this script (a reader of files: ValueError)."""

    def wrap(main: Callable[..., int]) -> Callable[..., int]:
        @functools.wraps(main)
        def run(argv: list[str] | None = None) -> int:
            try:
                return main(argv)
            except (Refused, *refuse) as e:  # a bare ValueError elsewhere is a bug: traceback
                code, message = REFUSED, str(e)
                error = e
            except Stopped as e:
                code, message = STOPPED, str(e)
                error = e
            except OSError as e:
                code, message = STOPPED, os_reason(e)
                error = e
            if os.environ.get("PARADIGMS_TRACEBACK"):
                raise error
            report(prog, message)
            return code

        return run

    return wrap
