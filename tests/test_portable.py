"""The kernel caps of `make test-portable` take effect: torch reports the capability asked for,
and float32 results of torch and of XLA change against this machine's own kernels.

`make test-portable` sets PARADIGMS_CAPS to the capability it gives ATEN_CPU_CAPABILITY; in a
plain `make test` the variable is absent and only the report's sanity is checked.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

CAPS = ["DEFAULT", "AVX2", "AVX512"]  # torch's capabilities, lowest first
CAP_VARIABLES = ("ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS", "ONEDNN_MAX_CPU_ISA")
# Probes whose float32 bits depend on the vector width (measured on an AVX-512 Xeon): torch's
# GELU differs between AVX-512, AVX2 and the default kernels; XLA's exp differs at SSE4.2 only,
# since XLA:CPU prefers 256-bit vectors on AVX-512 machines too (AVX2 changes none of its results).
PROBE = """
import hashlib, numpy as np, torch, jax, jax.numpy as jnp
x = np.random.default_rng(0).standard_normal((64, 1031)).astype(np.float32)
def digest(a): return hashlib.sha1(np.asarray(a, np.float32).tobytes()).hexdigest()
print(torch.backends.cpu.get_cpu_capability())
print(digest(torch.nn.functional.gelu(torch.from_numpy(x)).numpy()))
print(digest(jax.jit(jnp.exp)(x)))
"""


def digest(a) -> str:
    return hashlib.sha1(np.asarray(a, np.float32).tobytes()).hexdigest()


@pytest.mark.float32
def test_torch_and_xla_run_the_kernels_they_were_capped_to():
    capability = torch.backends.cpu.get_cpu_capability()
    assert capability, "torch reports no CPU capability"
    wanted = os.environ.get("PARADIGMS_CAPS")
    if wanted is None:
        return
    assert os.environ.get("ATEN_CPU_CAPABILITY") == wanted
    assert capability == wanted.upper(), f"asked for {wanted}, torch runs {capability}"
    assert "--xla_cpu_max_isa=" in os.environ.get("XLA_FLAGS", "")
    # the same probe in a process without the caps: this machine's own kernels
    env = {k: v for k, v in os.environ.items() if k not in CAP_VARIABLES}
    env["XLA_FLAGS"] = re.sub(r"--xla_cpu_max_isa=\S+", "", os.environ["XLA_FLAGS"])
    own = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True,
                         text=True, check=True).stdout.split()  # fmt: skip
    x = np.random.default_rng(0).standard_normal((64, 1031)).astype(np.float32)
    here = [digest(torch.nn.functional.gelu(torch.from_numpy(x)).numpy()),
            digest(jax.jit(jnp.exp)(x))]  # fmt: skip
    assert own[0] in CAPS, f"torch reports {own[0]} uncapped: not an x86 machine these caps know"
    if CAPS.index(own[0]) > CAPS.index(capability):  # the cap lies below this machine's kernels
        assert here[0] != own[1], f"torch's float32 GELU is the same at {capability} as at {own[0]}"
    if capability == "DEFAULT" and own[0] != "DEFAULT":
        assert here[1] != own[2], "XLA's float32 exp is the same at SSE4.2 as uncapped"
