"""One of tests/test_parallel.py's JAX processes: `tests/jax_processes.py JOBS`, started twice
with torchrun's variables, as `python -m shared.launch --nproc-per-node 2 -m functional.train`
starts each process.

It runs `functional.train.main(argv)` for each argv of JOBS (a JSON list) in turn. JAX joins
the processes once per process (`jax.distributed.initialize` before its backend starts), so the
runs share one session: the first joins, and the session ends after the last, where one
`-m functional.train` would end it after its one run. Each process's start (JAX and the package,
and the gloo collectives) is paid once for all the runs. Each process writes its PID to
`JOBS.rank-R.pid` first, so that the test can end one.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import functional.train  # noqa: E402
from functional import parallel  # noqa: E402


def main() -> int:
    with open(sys.argv[1]) as f:
        jobs = json.load(f)
    with open(f"{sys.argv[1]}.rank-{os.environ['RANK']}.pid", "w") as f:
        f.write(str(os.getpid()))
    leave, parallel.leave = parallel.leave, lambda: None  # once, after the last run
    try:
        for argv in jobs:
            code = functional.train.main(argv)
            if code:
                return code
    finally:
        leave()
    return 0


if __name__ == "__main__":
    code = main()
    if parallel.peer_lost():  # as `python -m functional.train` leaves: JAX's exit handler
        sys.stdout.flush()  # would wait for the dead peer at a barrier, then abort
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
