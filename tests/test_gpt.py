"""GPT-mini twins: written-out attention in equinox against the same in `nn.Module`s.

From the same canonical weights the two sides give the same logits and the same gradient for
every weight (the tied `wte.weight` collects both of its uses); a causal model's logits at a
position ignore every later token; one AdamW update (no-decay mask, warmup, clipping) and 100 of
them stay together; decoding with a KV cache (a pytree returned by each step; buffers written
in place) equals the plain forward pass, also past `block_size`; greedy text is the same on both
sides; and each side's sampler draws top-k/temperature frequencies a chi-square test accepts.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import rounding
import torch
from corners import check_with_corners
from pairs import (
    F64_TOL,
    batches_of,
    cast,
    forward_and_backward,
    initial_weights,
    max_abs_diff,
    pair,
    trainers,
)
from pairs import functional_model as functional_twin

import functional.convert as fconvert
import functional.models.gpt as fgpt
import functional.sample as fsample
import oop.convert as oconvert
import oop.models.gpt as ogpt
import oop.sample as osample
from shared import checkpoint, data
from shared.config import GPTConfig, TrainConfig, to_dict
from shared.optim import OptimizerSpec, ScheduleSpec

# float64 twins agree to rounding (measured: ~1e-16): F64_TOL
CFG = GPTConfig(n_layer=2, n_head=2, n_embd=16, block_size=8, vocab_size=13)
BATCH = 3
# the recipe: AdamW without decay on biases, LayerNorms and embeddings, linear warmup
# then cosine, clipping at global norm 1.0
ADAMW = OptimizerSpec.create(
    "adamw", lr=3e-3, beta2=0.99, weight_decay=0.1, clip_norm=1.0,
    no_decay=("*.bias", "*ln_*", "wte.weight", "wpe.weight"),
)  # fmt: skip
SCHEDULE = ScheduleSpec(name="cosine", warmup_steps=10, eta_min=1e-4)


def weights(config: GPTConfig = CFG) -> dict[str, np.ndarray]:
    return initial_weights("gpt", config, key=3)


def functional_model(config: GPTConfig = CFG, dtype: str = "float64"):
    return functional_twin("gpt", config, weights(config), dtype)


def oop_model(config: GPTConfig = CFG, dtype: str = "float64", **kwargs):
    """The nn.Module twin; `kwargs` choose its attention (`sdpa=True`: torch's fused kernel)."""
    model = ogpt.GPT(config, dtype=ogpt.DTYPES[dtype], **kwargs)
    return oconvert.from_canonical(model, cast(weights(config), dtype))


def tokens(shape, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, CFG.vocab_size, shape)


@pytest.mark.proves("gpt", "config")
def test_names_shapes_and_the_tied_head_stored_once():
    w, torch_model = weights(), oop_model()
    assert list(torch_model.state_dict()) == list(CFG.weight_shapes())  # names, torch's order
    assert {k: v.shape for k, v in w.items()} == CFG.weight_shapes()
    assert not any("head" in k for k in w)  # the head is wte.weight, not a copy of it
    assert sum(p.numel() for p in torch_model.parameters()) == sum(v.size for v in w.values())
    assert sum(np.prod(s) for s in GPTConfig().weight_shapes().values()) == 822_912  # the default
    with jax.enable_x64(True):
        again = fconvert.to_canonical(
            fconvert.from_canonical(functional_model(), oconvert.to_canonical(torch_model))
        )
    assert all(np.array_equal(w[k], again[k]) for k in w)


@pytest.mark.proves("gpt", "model")
def test_both_sides_draw_gpt2_initial_weights():
    """N(0, 0.02) weights, N(0, 0.02 / sqrt(2 n_layer)) for the projections that end a residual
    branch, zero biases, LayerNorms at 1 and 0, on each side (the numbers differ)."""
    config = GPTConfig(n_layer=2, n_head=2, n_embd=64, block_size=64, vocab_size=64)
    with jax.enable_x64(True):
        f = fconvert.to_canonical(fgpt.init_model(config, key=jax.random.PRNGKey(1)))
    o = oconvert.to_canonical(ogpt.init_model(config, seed=1))
    assert f.keys() == o.keys()
    for name in f:
        for w in (f[name], o[name]):
            if name.endswith("bias"):
                assert np.all(w == 0), name
            elif "ln_" in name:
                assert np.all(w == 1), name
            else:
                std = 0.02 / (2 if name.endswith(("out_proj.weight", "mlp.proj.weight")) else 1)
                assert abs(w.std() / std - 1) < 0.1 and abs(w.mean()) < 0.2 * std, name


@pytest.mark.proves("gpt", "layers", "model")
def test_logits_agree_and_sdpa_equals_the_written_out_attention():
    x = tokens((BATCH, CFG.block_size))
    with jax.enable_x64(True):
        logits_f = eqx.filter_jit(lambda m, x: jax.vmap(m)(x))(functional_model(), x)
    torch_model = oop_model().eval()
    logits_o = torch_model(torch.from_numpy(x))
    assert max_abs_diff(logits_f, logits_o) <= F64_TOL
    assert max_abs_diff(oop_model(sdpa=True).eval()(torch.from_numpy(x)), logits_o) <= F64_TOL


@pytest.mark.proves("gpt", "layers")
def test_a_later_token_never_changes_earlier_logits():
    x = tokens((1, CFG.block_size))
    changed = x.copy()
    changed[0, 5] = (x[0, 5] + 1) % CFG.vocab_size
    torch_model = oop_model().eval()
    with jax.enable_x64(True):
        f, forward = functional_model(), eqx.filter_jit(fgpt.GPT.__call__)
        for side_logits in (
            lambda s: np.asarray(forward(f, jnp.asarray(s[0]))),
            lambda s: torch_model(torch.from_numpy(s))[0].detach().numpy(),
        ):
            before, after = side_logits(x), side_logits(changed)
            assert np.array_equal(before[:5], after[:5])  # positions 0..4 cannot see token 5
            assert max_abs_diff(before[5:], after[5:]) > 1e-3  # and the later ones do


@pytest.mark.proves("gpt", "model", "loss")
def test_every_gradient_agrees_and_the_tied_matrix_sums_both_uses():
    x, y = tokens((BATCH, CFG.block_size)), tokens((BATCH, CFG.block_size), seed=1)
    f, o = forward_and_backward("gpt", CFG, weights(), (x, y))
    grads, torch_model = f.grads, o.model  # the nn.Module holds its gradients in .grad
    assert abs(f.loss - o.loss) <= F64_TOL
    for name, p in torch_model.named_parameters():
        assert max_abs_diff(grads[name], p.grad) <= F64_TOL, name
    # the key bias shifts every score of a query equally, and softmax ignores the shift
    assert max_abs_diff(grads["blocks.0.attn.k_proj.bias"], 0.0) <= F64_TOL
    # untie by hand: the embedding's gradient plus the head's is the tied gradient
    head = torch_model.wte.weight.detach().clone().requires_grad_()
    hidden = torch_model.ln_f(_trunk(torch_model, torch.from_numpy(x)))
    torch_model.zero_grad()
    loss = torch.nn.functional.cross_entropy((hidden @ head.T).flatten(0, 1),
                                             torch.from_numpy(y).flatten())  # fmt: skip
    loss.backward()
    assert max_abs_diff(torch_model.wte.weight.grad + head.grad, grads["wte.weight"]) <= F64_TOL


def _trunk(model: ogpt.GPT, idx: torch.Tensor) -> torch.Tensor:
    x = model.wte(idx) + model.wpe(torch.arange(idx.shape[1]))
    for block in model.blocks:
        x = block(x)
    return x


# The trajectories prove the train step (the no-decay mask, warmup, cosine, clipping, AdamW): one
# block does that, and compiles in half the time; two blocks are proven by the tests above.
TRAJ_CFG = dict(n_layer=1, n_head=2, n_embd=16, block_size=8)


def trajectory(dtype: str, steps: int, batch: int = 4, horizon: int = 100):
    """`steps` AdamW updates with warmup and a cosine over `horizon` updates, clipping, on
    pycorpus windows of 8 characters, both sides from one init through `rounding`: returns
    its verdict, whose runs hold the weights after the first update (`.at[1]`)."""
    ds = data.load_sequences("pycorpus", seq_len=CFG.block_size)
    cfg = GPTConfig(**TRAJ_CFG, vocab_size=ds.in_features)
    batches = batches_of(ds.x_train, ds.y_train, batch, steps, dtype)
    train = TrainConfig(steps=horizon, dtype=dtype, optimizer=ADAMW, schedule=SCHEDULE)
    start = cast(weights(cfg), dtype)
    native = trainers("gpt", cfg, train, at=(1,))
    if dtype == "float32":  # and the grid's other corners (docs/paradigms.md)
        return check_with_corners("gpt", cfg, train, native, start, batches, "gpt")
    return rounding.check_trajectories(*native, start, batches, dtype, what="gpt")


@pytest.mark.proves("gpt", "train step")
def test_one_adamw_step_and_100_in_float64():
    """The first update (no-decay mask, warmup, clipping), then 99 more. The key biases have a
    zero true gradient; Adam divides their rounding noise by its own size, so they move by up
    to lr per update in a direction rounding picks. Measured: 2.8e-13 apart after 100 updates,
    the largest gap of any weight, 1.8e-15 in loss (see docs/models/gpt.md)."""
    verdict = trajectory("float64", 100)
    assert max_abs_diff(verdict.a.at[1], verdict.b.at[1]) <= F64_TOL


@pytest.mark.proves("gpt", "train step")
def test_100_steps_in_float32():
    """Against the rounding control (tests/rounding.py): Adam turns rounding into steps."""
    verdict = trajectory("float32", 100)
    print("gpt adamw", verdict)


@pytest.mark.proves("gpt", "layers", "model")
def test_decoding_with_the_cache_is_the_forward_pass_also_past_the_block():
    """Token by token through each side's KV cache, for 2.5 blocks: the logits equal those of
    a plain pass over the last `block_size` tokens, which is also what the cache slides to."""
    seq, s = tokens(20, seed=2), CFG.block_size
    windows = np.stack([seq[i : i + s] for i in range(len(seq) - s + 1)])  # (13, S)
    torch_model = oop_model().eval()
    with jax.enable_x64(True):
        f = functional_model()
        out = np.asarray(eqx.filter_jit(lambda m, w: jax.vmap(m)(w))(f, windows))  # (13, S, V)
        plain = np.concatenate([out[0], out[1:, -1]])  # causal: window 0 covers the first S
        decode, cache, cached_f = eqx.filter_jit(fgpt.GPT.decode), f.init_decode(), []
        for token in seq:
            cache, logits = decode(f, cache, jnp.asarray(token))
            cached_f.append(np.asarray(logits))
    torch_model.reset_decode(batch=1)
    cached_o = [torch_model.decode(torch.tensor([int(t)]))[0] for t in seq]
    assert max_abs_diff(cached_f, plain) <= F64_TOL
    assert max_abs_diff(np.stack([c.numpy() for c in cached_o]), plain) <= F64_TOL


def test_greedy_text_is_identical_on_both_sides(tmp_path, capsys):
    """From a float64 checkpoint of the test weights, on pycorpus's characters (the script
    and the training CLI: tests/test_scripts.py)."""
    vocab = data.load("pycorpus", 8).vocab
    config = GPTConfig(**{**CFG.__dict__, "vocab_size": len(vocab), "vocab": vocab})
    rng = np.random.default_rng(0)  # weights far from GPT-2's small init: a varied greedy text
    w = {k: v if "ln_" in k else rng.normal(0, 0.5, v.shape) for k, v in weights(config).items()}
    path = tmp_path / "gpt.safetensors"
    checkpoint.save(path, w, model="gpt", model_config=to_dict(config),
                    train_config={"dataset": "pycorpus"}, step=0, side="functional")  # fmt: skip
    flags = ["--checkpoint", str(path), "--temperature", "0", "--max-new-tokens", "30"]
    texts = []
    for side in (fsample, osample):  # 30 new characters: past the block of 8
        assert side.main([*flags, "--prompt", "def f("]) == 0
        texts.append(capsys.readouterr().out)
    assert texts[0] == texts[1] and texts[0].startswith("def f(")
    assert len(set(texts[0][6:])) >= 5, texts[0]  # a varied text, not one repeated character


@pytest.mark.parametrize("temperature, top_k", [(1.0, None), (0.7, 3)])
def test_each_sampler_draws_the_distribution_it_promises(temperature, top_k):
    """A fixed logit vector, 20 000 draws per side: Pearson's chi-square statistic against
    softmax(logits / temperature) over the top-k stays under its 0.1% critical value."""
    logits = np.array([2.0, 1.5, 1.0, 0.5, 0.0, -1.0])
    keep = np.argsort(-logits)[: top_k or len(logits)]
    p = np.zeros_like(logits)
    p[keep] = np.exp(logits[keep] / temperature)
    p /= p.sum()
    n = 20_000
    with jax.enable_x64(True):
        keys = jax.random.split(jax.random.PRNGKey(0), n)
        pick = jax.vmap(lambda k: fsample.pick(jnp.asarray(logits), k, temperature, top_k))
        draws_f = np.asarray(pick(keys))
    generator = torch.Generator().manual_seed(0)
    rows = torch.from_numpy(logits).repeat(n, 1)
    draws_o = osample.pick(rows, generator, temperature, top_k).numpy()
    critical = {5: 20.52, 2: 13.82}[len(keep) - 1]  # chi-square, 0.1% upper tail
    for draws in (draws_f, draws_o):
        counts = np.bincount(draws, minlength=len(logits))
        assert counts[p == 0].sum() == 0  # nothing outside the top k
        expected = n * p[keep]
        assert np.sum((counts[keep] - expected) ** 2 / expected) < critical


@pytest.mark.proves("gpt", "layers", "evaluate")
def test_dropout_is_off_in_inference_and_keyed_in_training():
    """With dropout 0.3, inference gives the dropout-free logits on both sides; training draws
    masks: the same key gives the same logits, another key others, and torch differs from
    eval."""
    noisy = GPTConfig(**{**CFG.__dict__, "dropout": 0.3})
    x = tokens((1, CFG.block_size))
    with jax.enable_x64(True):
        plain = np.asarray(eqx.filter_jit(fgpt.GPT.__call__)(functional_model(), x[0],
                                                             inference=True))  # fmt: skip
        f, o = pair("gpt", noisy, weights())
        call = eqx.filter_jit(fgpt.GPT.__call__)
        assert max_abs_diff(call(f, jnp.asarray(x[0]), inference=True), plain) == 0.0
        a, b, c = (call(f, jnp.asarray(x[0]), key=jax.random.PRNGKey(k)) for k in (1, 1, 2))
        assert (
            max_abs_diff(a, b) == 0.0
            and max_abs_diff(a, c) > 1e-3
            and max_abs_diff(a, plain) > 1e-3
        )
    assert max_abs_diff(o.eval()(torch.from_numpy(x))[0], plain) <= F64_TOL
    assert max_abs_diff(o.train()(torch.from_numpy(x))[0], plain) > 1e-3
