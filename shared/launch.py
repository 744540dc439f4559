"""Start N processes of one training script on this machine: `python -m shared.launch --help`.

    python -m shared.launch --nproc-per-node 2 -m functional.train --model mlp --dtype float64

JAX has no launcher of its own (`jax.distributed.initialize` joins processes that something
else started: SLURM, Open MPI, Kubernetes, or you). This one starts them the way `torchrun`
does, with torchrun's variables, so that both sides read the same ones: `RANK`, `WORLD_SIZE`,
`LOCAL_RANK`, `MASTER_ADDR` and `MASTER_PORT` (a free port unless given). On the OOP side use
torchrun itself (`torchrun --standalone --nproc-per-node 2 -m oop.train ...`); this launcher
starts it the same way, without torchrun's elastic agent.

When a process fails, the others are given the collective timeout to stop on their own (each
prints its one line), then ended; the launcher exits with the first failure's code.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

from shared import errors
from shared.cli.base import Parser
from shared.run import collective_timeout


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (the kernel's pick)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def environments(nproc: int, nnodes: int, node_rank: int, addr: str, port: int) -> list[dict]:
    """Each local process's variables, torchrun's names."""
    world = nproc * nnodes
    return [{"RANK": str(node_rank * nproc + local), "LOCAL_RANK": str(local),
             "WORLD_SIZE": str(world), "LOCAL_WORLD_SIZE": str(nproc), "MASTER_ADDR": addr,
             "MASTER_PORT": str(port)} for local in range(nproc)]  # fmt: skip


def launch(command: list[str], envs: list[dict], grace: float, output=None) -> int:
    """Run `command` once per environment, wait for all; after the first failure, wait up to
    `grace` seconds for the rest, then end them. Returns the first non-zero exit code, or 0.
    `output`: a file for every process's stdout and stderr (default: this process's)."""
    streams = {} if output is None else {"stdout": output, "stderr": subprocess.STDOUT}
    procs = [subprocess.Popen(command, env={**os.environ, **env}, **streams) for env in envs]
    code, failed_at = 0, None
    try:
        while None in (codes := [p.poll() for p in procs]):
            for c in codes:
                if c not in (None, 0) and code == 0:
                    code, failed_at = c, time.monotonic()
            if failed_at is not None and time.monotonic() - failed_at > grace:
                for p in procs:
                    if p.poll() is None:
                        p.send_signal(signal.SIGTERM)
                break
            time.sleep(0.05)
        for p in procs:
            p.wait()
    except KeyboardInterrupt:  # Ctrl-C reaches every process of the group: they stop alike
        for p in procs:
            p.wait()
        return 130
    return code or next((p.returncode for p in procs if p.returncode), 0)  # the first failure


@errors.entry_point("python -m shared.launch")
def main(argv: list[str] | None = None) -> int:
    p = Parser(prog="python -m shared.launch", description=__doc__.split("\n\n")[0],
               epilog="Every argument after -m MODULE goes to that module.")  # fmt: skip
    p.add_argument(
        "--nproc-per-node",
        type=int,
        default=1,
        metavar="N",
        help="processes on this machine, one per device (default: 1)",
    )
    p.add_argument(
        "--nnodes",
        type=int,
        default=1,
        metavar="M",
        help="machines taking part, each running this command (default: 1)",
    )
    p.add_argument(
        "--node-rank",
        type=int,
        default=0,
        metavar="I",
        help="this machine's place, 0 to M - 1; machine 0 hosts the coordinator",
    )
    p.add_argument(
        "--master-addr",
        default="127.0.0.1",
        help="machine 0's address, as the others reach it (default: 127.0.0.1)",
    )
    p.add_argument("--master-port", type=int, default=None,
                   help="the coordinator's port on machine 0 (default: a free one; give it "
                   "whenever --nnodes > 1)")  # fmt: skip
    p.add_argument(
        "-m",
        dest="module",
        required=True,
        metavar="MODULE",
        help="the script to run, as python -m MODULE (functional.train, oop.train)",
    )
    args, rest = p.parse_known_args(argv)
    if args.nproc_per_node < 1 or args.nnodes < 1:
        p.error("--nproc-per-node and --nnodes count processes and machines: 1 or more")
    if not 0 <= args.node_rank < args.nnodes:
        p.error(f"--node-rank {args.node_rank}: give 0 to {args.nnodes - 1}")
    if args.nnodes > 1 and args.master_port is None:
        p.error("--nnodes > 1: give every machine the same --master-addr and --master-port")
    port = args.master_port or free_port()
    envs = environments(args.nproc_per_node, args.nnodes, args.node_rank, args.master_addr, port)
    grace = collective_timeout()
    return launch([sys.executable, "-m", args.module, *rest], envs, grace)


if __name__ == "__main__":
    sys.exit(main())
