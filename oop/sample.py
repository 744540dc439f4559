"""Generate text from a character model's canonical checkpoint on the OOP side.

    python -m oop.sample --checkpoint runs/gru-f/final.safetensors --prompt "def "

The model keeps what it has read: a GPT's KV cache in its attention modules, an RNN's state in
the module, both written in place by each `decode` after one `reset_decode`. The draws come
from one `torch.Generator` seeded with `--seed`.
"""

from __future__ import annotations

import sys

import numpy as np
import torch

from oop import interface
from oop.convert import from_canonical
from oop.models import MODELS
from shared import checkpoint, errors
from shared.cli import sample as cli_sample


# -- drawing --
def pick(logits: torch.Tensor, generator: torch.Generator, temperature: float, top_k):
    """The next character per row: argmax at temperature 0, else a draw from the softmax of
    `logits / temperature`, restricted to the `top_k` likeliest. The largest logit is taken
    off first (the same softmax), so a tiny temperature tends to the argmax, not to inf / inf."""
    if temperature == 0:
        return logits.argmax(dim=-1)
    logits = (logits - logits.amax(dim=-1, keepdim=True)) / temperature
    if top_k is not None:
        kth = torch.topk(logits, min(top_k, logits.shape[-1])).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    return torch.multinomial(probs, 1, generator=generator)[:, 0]


# -- generation --
@torch.no_grad()
def generate(model, prompt: np.ndarray, n: int, temperature: float, top_k, *, seed: int):
    """`n` character ids continuing `prompt`, `(n,)`."""
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    model.reset_decode(batch=1)
    for token in prompt:  # read the prompt
        logits = model.decode(torch.tensor([int(token)]))
    out = []
    for _ in range(n):
        token = pick(logits, generator, temperature, top_k)
        out.append(int(token))
        logits = model.decode(token)
    return np.array(out, dtype=np.int64)


# -- command line --
@errors.entry_point("python -m oop.sample")
def main(argv: list[str] | None = None) -> int:
    req = cli_sample.parse_sample("oop", argv)
    module = MODELS[req.ckpt.model]
    with checkpoint.about(req.path):
        template = interface.init(module, req.model_config, seed=0, dtype=req.dtype)
        model = from_canonical(template, req.ckpt.weights)
    ids = generate(model, req.prompt, req.max_new_tokens, req.temperature, req.top_k, seed=req.seed)
    print(req.decode(req.prompt) + req.decode(ids))
    return 0


if __name__ == "__main__":
    sys.exit(main())
