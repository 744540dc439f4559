"""What `torch.compile` does with a `breakpoint()`: Dynamo cannot put a debugger into a graph,
so it breaks the graph there, runs the breakpoint in plain Python and compiles the rest as a
second graph. `torch._dynamo.explain` counts the graphs and says why each break happened.

    python docs/examples/debug_compile.py

docs/debugging.md quotes its output; tests/test_debugging.py checks it.
"""

import sys

import torch
import torch._dynamo

import oop.models.mlp as omlp
from shared.config import MLPConfig


def loss_with_a_stop(model, x, y):
    h = torch.relu(model.layers[0](x))
    breakpoint()  # a graph break: Dynamo hands this frame back to Python
    return torch.nn.functional.cross_entropy(model.layers[1](h), y)


torch.manual_seed(0)
model = omlp.MLP(MLPConfig(in_features=2, out_features=2, width=8, layers=1))
x, y = torch.randn(4, 2), torch.tensor([0, 1, 1, 0])
hook, sys.breakpointhook = sys.breakpointhook, lambda *a, **k: None  # no prompt while explaining
try:
    for name, fn in (("without a stop", omlp.loss_fn), ("with breakpoint()", loss_with_a_stop)):
        torch._dynamo.reset()
        report = torch._dynamo.explain(fn)(model, x, y)
        print(f"{name}: {report.graph_count} graph(s), {report.graph_break_count} break(s)")
        for reason in report.break_reasons:
            print("  reason:", reason.reason.splitlines()[1].strip())
finally:
    sys.breakpointhook = hook
