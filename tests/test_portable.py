"""The kernel caps of `make test-portable` take effect: torch reports the capability asked for.

`make test-portable` sets PARADIGMS_CAPS to the capability it gives ATEN_CPU_CAPABILITY; in a
plain `make test` the variable is absent and only the report's sanity is checked.
"""

from __future__ import annotations

import os

import pytest
import torch


@pytest.mark.float32
def test_torch_runs_the_kernels_it_was_capped_to():
    capability = torch.backends.cpu.get_cpu_capability()
    assert capability, "torch reports no CPU capability"
    wanted = os.environ.get("PARADIGMS_CAPS")
    if wanted is not None:
        assert os.environ.get("ATEN_CPU_CAPABILITY") == wanted
        assert capability == wanted.upper(), f"asked for {wanted}, torch runs {capability}"
        assert "--xla_cpu_max_isa=" in os.environ.get("XLA_FLAGS", "")
