"""Character n-gram baselines for pycorpus, the yardstick of the character models.

    python -m shared.ngram [--order N] [--discount D] [--add-k K]

Two count models of the same order, fitted on the training text and scored on the validation
text (as the continuation of the training text) in nats per character, the unit of the
character models' loss:

    >>> model = kneser_ney(train, order=4, discount=0.75, vocab=vocab)
    >>> model.prob("def", " ")                      # p(" " | "def")
    >>> cross_entropy(model, history=train, text=valid)

Interpolated Kneser-Ney (Chen & Goodman 1998) is the strong baseline a small network has to
beat; add-k smoothing is the naive one. Both give every character of the vocabulary a non-zero
probability, so the cross-entropy is finite.
"""

from __future__ import annotations

import hashlib
import math
import sys
from collections import Counter
from dataclasses import dataclass

from shared import errors, sequences
from shared.cli.base import HelpFormatter, Parser


def _ngram_counts(text: str, k: int) -> Counter[str]:
    """How often each k-gram (substring of length k) occurs in `text`."""
    return Counter(text[i : i + k] for i in range(len(text) - k + 1))


def _check(train: str, order: int, vocab: str) -> None:
    if order < 1:
        raise ValueError(f"the order must be >= 1, got {order}")
    missing = set(train) - set(vocab)
    if missing:
        raise ValueError(
            f"the training text has characters outside the vocabulary: {sorted(missing)}"
        )


@dataclass(frozen=True)
class KneserNey:
    """Interpolated Kneser-Ney with one absolute discount D for every order.

    Level k (1..order) predicts a character from the last k-1 characters h:

        p_k(w | h) = (max(c_k(h w) - D, 0) + D * N1+(h •) * p_{k-1}(w | h[1:])) / c_k(h •)

    where the top level counts occurrences, c(h w), and the lower levels count continuations,
    N1+(• h w): how many distinct characters precede h w in the training text. N1+(h •) is
    how many distinct characters follow h with a non-zero count. p_0 is uniform over the
    vocabulary. A context h never seen at level k (c_k(h •) = 0) backs off fully to p_{k-1}.
    """

    order: int
    discount: float
    vocab: str
    counts: tuple[dict[str, int], ...]  # level k-1: k-gram -> c_k
    totals: tuple[dict[str, int], ...]  # level k-1: context -> c_k(h •)
    types: tuple[dict[str, int], ...]  # level k-1: context -> N1+(h •)

    def prob(self, context: str, char: str) -> float:
        """p(char | context); only the last order-1 characters of the context matter. A
        shorter context is scored with the levels it reaches (continuation counts)."""
        keep = min(self.order - 1, len(context))
        context = context[len(context) - keep :]
        p = 1.0 / len(self.vocab)
        for k in range(1, keep + 2):
            h = context[len(context) - (k - 1) :]
            total = self.totals[k - 1].get(h, 0)
            if total:
                seen = max(self.counts[k - 1].get(h + char, 0) - self.discount, 0.0)
                p = (seen + self.discount * self.types[k - 1][h] * p) / total
        return p


def kneser_ney(train: str, order: int = 4, discount: float = 0.75, vocab: str = "") -> KneserNey:
    """Fit interpolated Kneser-Ney of `order` on `train`; `vocab` defaults to train's set."""
    vocab = vocab or "".join(sorted(set(train)))
    _check(train, order, vocab)
    if not 0 < discount < 1:
        raise ValueError(f"the discount must lie in (0, 1), got {discount}")
    counts = [_ngram_counts(train, order)]  # the top level: raw counts
    for k in range(order - 1, 0, -1):  # continuation counts: distinct left neighbours
        counts.insert(0, Counter(g[1:] for g in _ngram_counts(train, k + 1)))
    totals, types = [], []
    for level in counts:
        total, typ = Counter(), Counter()
        for g, c in level.items():
            total[g[:-1]] += c
            typ[g[:-1]] += 1
        totals.append(dict(total))
        types.append(dict(typ))
    return KneserNey(order, discount, vocab, tuple(map(dict, counts)), tuple(totals), tuple(types))


@dataclass(frozen=True)
class AddK:
    """Add-k smoothing: p(w | h) = (c(h w) + k) / (c(h •) + k V), h the last order-1 chars.

    An unseen context gives the uniform distribution; a context shorter than order-1
    characters is scored with the counts of the shorter order it fills."""

    order: int
    k: float
    vocab: str
    counts: tuple[dict[str, int], ...]  # level j-1: j-gram -> c
    totals: tuple[dict[str, int], ...]  # level j-1: context -> c(h •)

    def prob(self, context: str, char: str) -> float:
        keep = min(self.order - 1, len(context))
        h = context[len(context) - keep :]
        seen = self.counts[keep].get(h + char, 0)
        return (seen + self.k) / (self.totals[keep].get(h, 0) + self.k * len(self.vocab))


def add_k(train: str, order: int = 4, k: float = 0.1, vocab: str = "") -> AddK:
    """Fit an add-k smoothed n-gram of `order` on `train`; `vocab` defaults to train's set."""
    vocab = vocab or "".join(sorted(set(train)))
    _check(train, order, vocab)
    if not 0 < k < math.inf:
        raise ValueError(f"k must be > 0 and finite, got {k}")
    counts = [_ngram_counts(train, j) for j in range(1, order + 1)]
    totals = []
    for level in counts:
        total = Counter()
        for g, c in level.items():
            total[g[:-1]] += c
        totals.append(dict(total))
    return AddK(order, k, vocab, tuple(map(dict, counts)), tuple(totals))


def cross_entropy(model: KneserNey | AddK, history: str, text: str) -> float:
    """Mean -log p(c_t | the order-1 characters before it) over every character of `text`, in
    nats. `text` is scored as the continuation of `history`: its first characters take their
    context from the end of `history` (for pycorpus, the end of the training text)."""
    if not text:
        raise ValueError("there is no text to score")
    outside = set(text) - set(model.vocab)
    if outside:
        raise ValueError(f"the text has characters outside the vocabulary: {sorted(outside)}")
    full, n = history + text, model.order - 1
    nll = math.fsum(
        -math.log(model.prob(full[max(0, i - n) : i], full[i]))
        for i in range(len(history), len(full))
    )
    return nll / len(text)


def _parser() -> Parser:
    p = Parser(
        prog="python -m shared.ngram",
        description="Character n-gram baselines on pycorpus: fit on the first 90% of the text, "
        "report nats and bits per character on the last 10%, scored as its continuation.",
        formatter_class=HelpFormatter,
    )
    p.add_argument(
        "--order", type=int, default=4, help="n: characters per n-gram, the predicted one included"
    )
    p.add_argument(
        "--discount", type=float, default=0.75, help="Kneser-Ney's absolute discount D, in (0, 1)"
    )
    p.add_argument(
        "--add-k", type=float, default=0.1, help="the pseudo-count k of the add-k model, > 0"
    )
    return p


@errors.entry_point("python -m shared.ngram")
def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.order < 1:
        parser.error(f"--order must be >= 1, got {args.order}")
    if not 0 < args.discount < 1:
        parser.error(f"--discount must lie in (0, 1), got {args.discount}")
    if not 0 < args.add_k < math.inf:
        parser.error(f"--add-k must be > 0, got {args.add_k}")
    text = sequences.pycorpus_text()
    vocab = "".join(sorted(set(text)))
    cut = int(round(len(text) * (1 - sequences.VALID_FRACTION)))
    train, valid = text[:cut], text[cut:]
    sha = hashlib.sha256(text.encode("utf-8")).hexdigest()
    n = args.order
    rows = [("uniform (log V)", math.log(len(vocab)))]
    kn = kneser_ney(train, n, args.discount, vocab)
    ak = add_k(train, n, args.add_k, vocab)
    rows.append((f"add-{args.add_k:g} {n}-gram", cross_entropy(ak, train, valid)))
    rows.append((f"Kneser-Ney {n}-gram (D={args.discount:g})", cross_entropy(kn, train, valid)))
    print(f"pycorpus {sha[:12]}  (sha256 {sha})")
    print(f"train {len(train):,} chars, valid {len(valid):,} chars, vocabulary {len(vocab)}")
    w = max(len(name) for name, _ in rows)
    print(f"{'model':<{w}}  nats/char  bits/char")
    for name, nats in rows:
        print(f"{name:<{w}}  {nats:9.4f}  {nats / math.log(2):9.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
