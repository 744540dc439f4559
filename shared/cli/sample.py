"""Flags of the generation scripts, `python -m functional.sample`, `python -m oop.sample` and
`python -m keras3.sample` (which adds `--backend`).

All take the same flags and print the prompt followed by the generated characters. Greedy
decoding (`--temperature 0`) is deterministic, so the two sides print the same text from the
same checkpoint; sampling draws from each side's own generator (a JAX key split per step, a
`torch.Generator`, a Keras `SeedGenerator`), so those texts differ.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from shared import checkpoint, sides
from shared.cli.base import HelpFormatter, Parser

MAX_NEW_TOKENS = 2**31 - 1  # prompt and new characters: the functional side's scan counts int32


@dataclass(frozen=True)
class SampleRequest:
    ckpt: checkpoint.Checkpoint
    model_config: object
    vocab: str  # characters by id
    prompt: np.ndarray  # (P,) int64 character ids
    max_new_tokens: int
    temperature: float  # 0: greedy (argmax)
    top_k: int | None  # keep the k most likely characters before sampling
    seed: int
    dtype: str
    path: str = ""  # the checkpoint's file, for errors

    def decode(self, ids) -> str:
        return "".join(self.vocab[int(i)] for i in ids)


def parse_sample(side: str, argv: list[str] | None = None) -> SampleRequest:
    p = Parser(
        prog=f"python -m {sides.side(side).package}.sample",
        description=f"Generate text with the {side} side from a character model's canonical "
        "checkpoint, written by either side.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("--checkpoint", required=True, metavar="FILE", help="a .safetensors checkpoint")
    me = sides.side(side)
    if me.backends:
        p.add_argument("--backend", choices=me.backends, default=me.backends[0],
                       help=f"the framework Keras runs on (default: {me.backends[0]})")  # fmt: skip
    p.add_argument("--prompt", default="def ", help="the text to continue")
    p.add_argument("--max-new-tokens", type=int, default=200, help="characters to generate")
    p.add_argument(
        "--temperature",
        type=float,
        default=1.0,
        help="divides the logits before sampling; 0 picks the most likely character (greedy), "
        "the same on both sides",
    )
    p.add_argument("--top-k", type=int, default=None, help="sample among the k likeliest only")
    p.add_argument("--seed", type=int, default=0, help="the sampling generator's seed")
    args = p.parse_args(argv)
    try:
        if not 0 <= args.max_new_tokens <= MAX_NEW_TOKENS - len(args.prompt):
            raise ValueError(
                f"--max-new-tokens must lie in [0, {MAX_NEW_TOKENS - len(args.prompt)}] (JAX "
                f"counts a scan's steps in int32), got {args.max_new_tokens}"
            )
        if not (math.isfinite(args.temperature) and args.temperature >= 0):
            raise ValueError(f"--temperature must be a finite number >= 0, got {args.temperature}")
        if not 0 <= args.seed < 2**63:  # what both generators take, as TrainConfig's seed
            raise ValueError(f"--seed must lie in [0, 2**63), got {args.seed}")
        if args.top_k is not None and args.top_k < 1:
            raise ValueError(f"--top-k must be >= 1, got {args.top_k}")
        if not args.prompt:
            raise ValueError("--prompt must hold at least one character")
        ckpt = checkpoint.read(args.checkpoint)
        model_config = checkpoint.model_config(ckpt, args.checkpoint)
        sides.side(side).refuse_unless_has(ckpt.model)
        if getattr(model_config, "task", None) != "next-char":
            raise ValueError(
                f"{args.checkpoint} holds a {ckpt.model} trained on "
                f"{ckpt.train_config.get('dataset', 'another data set')}; sampling needs a "
                "character model (--dataset pycorpus)"
            )
        vocab = model_config.vocab  # the characters travel in the model config
        if not vocab:
            raise ValueError(f"{args.checkpoint} does not list its characters; retrain it")
        unknown = sorted(set(args.prompt) - set(vocab))
        if unknown:
            raise ValueError(f"--prompt has characters the model never saw: {''.join(unknown)!r}")
        dtypes = {v.dtype.name for v in ckpt.weights.values() if v.dtype.kind == "f"}
    except (TypeError, ValueError) as e:  # CheckpointError is a ValueError
        p.error(str(e))
    prompt = np.array([vocab.index(c) for c in args.prompt], dtype=np.int64)
    return SampleRequest(
        ckpt,
        model_config,
        vocab,
        prompt,
        args.max_new_tokens,
        args.temperature,
        args.top_k,
        args.seed,
        dtypes.pop(),
        args.checkpoint,
    )
