"""Generate text from the gpt's canonical checkpoint as functions on PyTorch.

    python -m crossover.functional_torch.sample --checkpoint runs/gpt-pycorpus/oop/final.safetensors

Twin of `functional/sample.py`: the KV cache is a value, `state, logits = decode(state,
token)`, passed in and returned; the module that runs (the OOP side's, through
`functional_call`) writes only into copies. The draws come from one `torch.Generator` seeded
with `--seed`, as on the OOP side, whose `pick` this is.
"""

from __future__ import annotations

import sys

import numpy as np
import torch

from crossover.functional_torch import interface
from crossover.functional_torch.convert import from_canonical
from crossover.functional_torch.models import MODELS, mlp
from oop.sample import pick
from shared import checkpoint, errors
from shared.cli import sample as cli_sample

SIDE = "functional_torch"


# -- drawing --
def generator(seed: int) -> torch.Generator:
    """The one generator every draw of a run comes from."""
    return torch.Generator().manual_seed(seed)


# -- generation --
@torch.no_grad()
def generate(module, model, params, prompt: np.ndarray, n: int, temperature: float, top_k, *,
             seed: int) -> np.ndarray:  # fmt: skip
    """`n` character ids continuing `prompt`, `(n,)`: the prompt read one token at a time, then
    each drawn token fed back in, the state threaded from call to call."""
    draws, state = generator(seed), module.init_decode(model, params)
    for token in prompt:
        state, logits = module.decode(model, params, state, torch.tensor([int(token)]))
    out = []
    for _ in range(n):
        token = pick(logits, draws, temperature, top_k)
        out.append(int(token))
        state, logits = module.decode(model, params, state, token)
    return np.array(out, dtype=np.int64)


# -- command line --
@errors.entry_point(f"python -m crossover.{SIDE}.sample")
def main(argv: list[str] | None = None) -> int:
    req = cli_sample.parse_sample(SIDE, argv)
    module = MODELS[req.ckpt.model]
    with checkpoint.about(req.path):
        params, _ = interface.init(module, req.model_config, seed=0, dtype=req.dtype)
        params, _ = from_canonical(params, None, req.ckpt.weights)
    model = mlp.inference_mode(module.skeleton(req.model_config, dtype=req.dtype))
    ids = generate(module, model, params, req.prompt, req.max_new_tokens, req.temperature,
                   req.top_k, seed=req.seed)  # fmt: skip
    print(req.decode(req.prompt) + req.decode(ids))
    return 0


if __name__ == "__main__":
    sys.exit(main())
