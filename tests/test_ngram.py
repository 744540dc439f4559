"""The character n-gram baselines of shared.ngram, on small synthetic texts."""

from __future__ import annotations

import hashlib
import math
import random

import pytest

from shared import ngram, sequences

TEXT = "the cat sat on the mat; the dog sat on the log.\n" * 3 + "a cat, a dog, a bird."
VOCAB = "".join(sorted(set(TEXT) | set("xyz")))  # three characters the text never uses


def noisy_abc(n: int, seed: int) -> str:
    """'abcabc...' with one character in ten replaced by a random one of 'abcd'."""
    rng = random.Random(seed)
    return "".join(rng.choice("abcd") if rng.random() < 0.1 else "abc"[i % 3] for i in range(n))


@pytest.mark.parametrize("order", [1, 2, 3, 4])
@pytest.mark.parametrize("kind", ["kneser_ney", "add_k"])
def test_probabilities_over_the_vocabulary_sum_to_one(kind, order):
    fit = {"kneser_ney": ngram.kneser_ney, "add_k": ngram.add_k}[kind]
    model = fit(TEXT, order, 0.75 if kind == "kneser_ney" else 0.1, VOCAB)
    contexts = ["", "t", "th", "the", "e c", " sa", "zzz", "xq", "the cat sat", "d."]
    for context in contexts:  # seen, unseen (x, y, z never occur), empty, longer than order
        probs = [model.prob(context, c) for c in VOCAB]
        assert min(probs) > 0, context
        assert math.fsum(probs) == pytest.approx(1.0, abs=1e-12), context


def test_order_one_matches_hand_computed_values():
    # "aab" over "abc": c(a) = 2, c(b) = 1, N = 3, two characters seen.
    kn = ngram.kneser_ney("aab", order=1, discount=0.5, vocab="abc")
    back_off = 0.5 * 2 / 3  # D * N1+(•) / N, spread uniformly over the 3 characters
    assert kn.prob("", "a") == pytest.approx((2 - 0.5) / 3 + back_off / 3, abs=1e-15)  # 11/18
    assert kn.prob("", "b") == pytest.approx((1 - 0.5) / 3 + back_off / 3, abs=1e-15)  # 5/18
    assert kn.prob("xyz", "c") == pytest.approx(back_off / 3, abs=1e-15)  # 1/9, context ignored
    ak = ngram.add_k("aab", order=1, k=0.1, vocab="abc")
    assert [ak.prob("", c) for c in "abc"] == pytest.approx([2.1 / 3.3, 1.1 / 3.3, 0.1 / 3.3])


def test_lower_orders_use_continuation_counts():
    # "aaab": bigrams aa, aa, ab. The unigram level counts distinct left neighbours, so a and b
    # weigh the same there (each follows only "a"), although a occurs three times.
    kn = ngram.kneser_ney("aaab", order=2, discount=0.5, vocab="ab")
    unigram = {"a": (1 - 0.5 + 0.5 * 2 * 0.5) / 2, "b": (1 - 0.5 + 0.5 * 2 * 0.5) / 2}
    assert kn.prob("", "a") == pytest.approx(unigram["a"])  # 1/2, not 3/4
    assert kn.prob("b", "a") == pytest.approx(unigram["a"])  # "b" is never followed: backs off
    # context "a": c(aa) = 2, c(ab) = 1, followed by 2 distinct characters
    assert kn.prob("a", "a") == pytest.approx((2 - 0.5 + 0.5 * 2 * unigram["a"]) / 3)  # 2/3
    assert kn.prob("a", "b") == pytest.approx((1 - 0.5 + 0.5 * 2 * unigram["b"]) / 3)  # 1/3


def test_a_longer_context_predicts_a_repetitive_text_better():
    train, valid = noisy_abc(3000, seed=0), noisy_abc(600, seed=1)
    scores = {
        n: ngram.cross_entropy(ngram.kneser_ney(train, n, 0.75, "abcd"), train, valid)
        for n in (1, 3)
    }
    assert scores[1] > 1.0, scores  # about log 3: a, b and c are equally frequent
    assert scores[3] < scores[1] - 0.5, scores  # two characters back fix the phase


def test_add_k_of_an_unseen_context_is_uniform_and_scoring_continues_the_history():
    ak = ngram.add_k("ababa", order=3, k=0.1, vocab="abc")  # trigrams aba, bab, aba
    assert ak.prob("cc", "a") == pytest.approx(1 / 3)
    # "ab" after history "ab": a's context is "ab" (c(aba) = 2 of c(ab•) = 2), b's is "ba"
    expected = [(2 + 0.1) / (2 + 0.3), (1 + 0.1) / (1 + 0.3)]
    got = ngram.cross_entropy(ak, history="ab", text="ab")
    assert got == pytest.approx(-sum(map(math.log, expected)) / 2)


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda: ngram.kneser_ney("abc", order=0), "order must be >= 1"),
        (lambda: ngram.kneser_ney("abc", discount=1.0), "discount must lie in (0, 1)"),
        (lambda: ngram.add_k("abc", k=0.0), "k must be > 0"),
        (lambda: ngram.add_k("abc", vocab="ab"), "outside the vocabulary: ['c']"),
        (lambda: ngram.cross_entropy(ngram.add_k("ab"), "ab", "ac"), "outside the vocabulary"),
    ],
)
def test_bad_arguments_are_clear_errors(call, message):
    with pytest.raises(ValueError) as e:
        call()
    assert message in str(e.value)


@pytest.mark.parametrize(
    "flags,message",
    [
        (["--order", "0"], "--order must be >= 1"),
        (["--discount", "1"], "--discount must lie in (0, 1)"),
        (["--discount", "0"], "--discount must lie in (0, 1)"),
        (["--add-k", "-0.1"], "--add-k must be > 0"),
        (["--add-k", "nan"], "--add-k must be > 0"),
        (["--order", "four"], "invalid int value"),
    ],
)
def test_bad_flags_exit_with_a_one_line_error(flags, message, capsys):
    with pytest.raises(SystemExit) as e:
        ngram.main(flags)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err  # one line, no usage block


def test_the_command_line_prints_the_table_on_pycorpus(capsys):
    """The one test on the whole corpus, at order 2 to keep it under a second."""
    assert ngram.main(["--order", "2"]) == 0
    out = capsys.readouterr().out
    text = sequences.pycorpus_text()
    assert hashlib.sha256(text.encode()).hexdigest() in out
    assert f"vocabulary {len(set(text))}" in out
    rows = {line.rsplit(None, 2)[0]: line.split()[-2:] for line in out.splitlines()[3:]}
    assert set(rows) == {"uniform (log V)", "add-0.1 2-gram", "Kneser-Ney 2-gram (D=0.75)"}
    nats, bits = map(float, rows["uniform (log V)"])
    assert nats == pytest.approx(math.log(len(set(text))), abs=1e-4)
    assert bits == pytest.approx(nats / math.log(2), abs=1e-4)
    assert 1.5 < float(rows["Kneser-Ney 2-gram (D=0.75)"][0]) < nats
