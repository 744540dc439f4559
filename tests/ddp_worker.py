"""Rank 1 of tests/test_parallel.py's DDP runs: `tests/ddp_worker.py JOBS`, started with
torchrun's variables (`RANK`, `WORLD_SIZE`, `MASTER_ADDR`, `MASTER_PORT`), as torchrun starts
each process of `torchrun --nproc-per-node 2 -m oop.train ...`.

It runs `oop.train.main(argv)` for each `[port, argv]` of JOBS (a JSON list) in turn, with
`MASTER_PORT` set to the job's port, while the test's own process runs the same list as rank 0:
each run joins its own process group and leaves it, as a separate `python -m oop.train` would,
and the start of a process (torch, and DDP's import of torch._dynamo: about 3 s of CPU) is
paid once for all of them. (A port per run: rank 0 hosts the group's store, and a second store
on the same port can meet a client of the first one still closing.)
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from oop import train  # noqa: E402


def main() -> int:
    with open(sys.argv[1]) as f:
        jobs = json.load(f)
    for port, argv in jobs:
        os.environ["MASTER_PORT"] = str(port)
        code = train.main(argv)
        if code:
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
