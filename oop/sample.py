"""Generate text from a character model's canonical checkpoint on the OOP side.

    python -m oop.sample --checkpoint runs/gru-f/final.safetensors --prompt "def "

The model's recurrent state is carried by the loop from one decode call to the next, and the
draws come from one `torch.Generator` seeded with `--seed`.
"""

from __future__ import annotations

import sys

import numpy as np
import torch

from oop.convert import from_canonical
from oop.models import MODELS
from shared import cli_sample


def pick(logits: torch.Tensor, generator: torch.Generator, temperature: float, top_k):
    """The next character per row: argmax at temperature 0, else a draw from the softmax of
    `logits / temperature`, restricted to the `top_k` likeliest."""
    if temperature == 0:
        return logits.argmax(dim=-1)
    logits = logits / temperature
    if top_k is not None:
        kth = torch.topk(logits, min(top_k, logits.shape[-1])).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    return torch.multinomial(probs, 1, generator=generator)[:, 0]


@torch.no_grad()
def generate(model, prompt: np.ndarray, n: int, temperature: float, top_k, *, seed: int):
    """`n` character ids continuing `prompt`, `(n,)`."""
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    state, logits = None, None
    for token in prompt:  # read the prompt
        state, logits = model.decode(torch.tensor([int(token)]), state)
    out = []
    for _ in range(n):
        token = pick(logits, generator, temperature, top_k)
        out.append(int(token))
        state, logits = model.decode(token, state)
    return np.array(out, dtype=np.int64)


def main(argv: list[str] | None = None) -> int:
    req = cli_sample.parse_sample("oop", argv)
    module = MODELS[req.ckpt.model]
    model = from_canonical(module.init_model(req.model_config, seed=0, dtype=req.dtype),
                           req.ckpt.weights)  # fmt: skip
    ids = generate(model, req.prompt, req.max_new_tokens, req.temperature, req.top_k, seed=req.seed)
    print(req.decode(req.prompt) + req.decode(ids))
    return 0


if __name__ == "__main__":
    sys.exit(main())
