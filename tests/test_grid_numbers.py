"""The grid's numbers beyond the trajectories: what is bit-identical (`nnx.jit` against its
split/merge loop, the torch.func step eager against captured whole by `torch.compile`, the
torch column's gradient), and the gpt's dropout masks given alike on the three corners whose
layers take them. The float32 trajectories of every edge of the grid (rows: the same paradigm
on two frameworks; columns: one framework in two paradigms) are judged inside each model's own
float32 trajectory test (tests/test_mlp.py, test_cnn_bn.py, test_gpt.py, through
`corners.check_with_corners`), sharing its runs and controls; tests/test_grid.py runs the
training scripts; docs/paradigms.md has the table.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from corners import (
    NNX,
    TORCH_FUNC,
    functional_torch_trainer,
    nnx_model,
    oop_jax_trainer,
    torch_func_model,
)
from flax import nnx
from pairs import (
    F64_TOL,
    batches_of,
    cast,
    forward_and_backward,
    initial_weights,
    max_abs_diff,
    oop_model,
)
from pairs import functional_model as pairs_functional_model
from torch.func import grad_and_value

import crossover.functional_torch.convert as tconvert
import crossover.functional_torch.models.mlp as tmlp
import crossover.functional_torch.sample as tsample
import crossover.oop_jax.convert as nconvert
import crossover.oop_jax.sample as nsample
import functional.sample as fsample
import oop.sample as osample
import shared.level0.mlp as l0
from shared import data, sides
from shared.config import CNNBNConfig, GPTConfig, MLPConfig, TrainConfig
from shared.optim import OptimizerSpec

MODELS = sides.GRID_MODELS
STEPS, BATCH = 100, 128


@pytest.fixture(scope="module")
def float32_setup(digits):
    config = MLPConfig(in_features=digits.in_features, out_features=digits.num_classes, width=64)
    cfg = TrainConfig(dtype="float32", optimizer=OptimizerSpec.create("adam", lr=1e-3))
    batches = batches_of(digits.x_train, digits.y_train, BATCH, STEPS, "float32")
    return config, cfg, cast(l0.init(config, seed=0), "float32"), batches


def model_setup(model: str, digits, float32_setup):
    """`(config, cfg, float32 start, batches)` for `model`: the MLP's from `float32_setup`; the
    cnn_bn's at width 4 from the functional side's draw, under Adam (under SGD one near-tie
    decides its float32 gap: tests/rounding.py); the gpt's, one block on pycorpus windows of 8
    characters, 4 to a batch."""
    if model == "mlp":
        return float32_setup
    _, cfg, _, batches = float32_setup
    if model == "cnn_bn":
        config = CNNBNConfig.for_data(digits, width=4)
    else:
        ds = data.load_sequences("pycorpus", seq_len=8)
        config = GPTConfig.for_data(ds, n_embd=16, n_layer=1, n_head=2)
        batches = batches_of(ds.x_train, ds.y_train, 4, STEPS, "float32")
    return config, cfg, initial_weights(model, config, dtype="float32"), batches


@pytest.mark.parametrize("model", MODELS)
def test_nnx_jit_and_split_merge_jax_jit_are_bit_identical(model, digits, float32_setup):
    """`nnx.jit` is `nnx.split`, `jax.jit`, `nnx.merge` and `nnx.update`: float32 updates of
    the two loops give the same bits, weights and BatchNorm statistics (twenty; five of the
    gpt, whose two programs take longest to compile)."""
    config, cfg, start, batches = model_setup(model, digits, float32_setup)
    n = 5 if model == "gpt" else 20
    a = oop_jax_trainer(model, config, cfg)(start, batches[:n])
    b = oop_jax_trainer(model, config, cfg, pure=jax.jit)(start, batches[:n])
    assert np.array_equal(a.losses, b.losses)
    assert a.weights.keys() == b.weights.keys()
    assert all(np.array_equal(a.weights[k], b.weights[k]) for k in a.weights), "weights differ"


def test_the_torch_func_step_is_captured_whole_and_runs_the_eager_numbers(float32_setup):
    """The functions-on-torch step under `torch.compile(fullgraph=True)`: Dynamo captures the
    whole step, `grad_and_value` and the optimizer included, without a graph break (fullgraph
    raises at one), and AOTAutograd's graph (backend "aot_eager", no code generation) runs the
    same kernels as eager mode, so ten float32 updates come out bit for bit the same. Inductor's
    generated kernels fuse and reorder the arithmetic, and compile for 20 s on two cores: the
    benchmarks time them (docs/paradigms.md)."""
    config, cfg, start, batches = float32_setup
    eager = functional_torch_trainer("mlp", config, cfg)(start, batches[:10])
    compiled = functional_torch_trainer("mlp", config, cfg, compiled="aot_eager")(
        start, batches[:10]
    )
    assert np.array_equal(eager.losses, compiled.losses)
    assert all(np.array_equal(eager.weights[k], compiled.weights[k]) for k in eager.weights)


@pytest.mark.float32
def test_in_the_torch_column_the_paradigm_changes_no_bit_of_the_gradient(float32_setup, digits):
    """`functional_call` runs the OOP side's module with a dict of weights, and `grad_and_value`
    differentiates it with the same kernels that `backward()` runs: logits, loss and every
    gradient of a float32 batch are bit-identical. (What parts the column's trajectories is the
    update: optax's shape computes it as a value and adds it, `p + (-lr * (m / d))` for Adam,
    where torch.optim's fused `addcdiv_` computes `p + (-lr * m) / d`.)"""
    config, _, start, _ = float32_setup
    x, y = digits.x_train[:BATCH].astype("float32"), digits.y_train[:BATCH]
    _, o = forward_and_backward("mlp", config, start, (x, y), "float32")
    skeleton, params, _ = torch_func_model("mlp", config, start, "float32")
    module = TORCH_FUNC["mlp"]
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    grads, loss = grad_and_value(lambda p: module.loss_fn(skeleton, p, xt, yt))(params)
    assert np.array_equal(module.apply(skeleton, params, xt).numpy(), o.outputs)
    assert loss.item() == o.loss
    assert grads.keys() == o.grads.keys()
    assert all(np.array_equal(grads[k].numpy(), o.grads[k]) for k in grads), "a gradient differs"


def test_the_same_dropout_masks_give_the_same_gpt_on_three_corners():
    """The gpt with dropout 0.3 in training mode, every Dropout layer given the same mask
    (keep = True) on the OOP side, the torch.func corner (the same module, run by
    functional_call) and the NNX corner: logits and every gradient agree to F64_TOL. Without
    masks each corner draws its own (torch's generator, a torch.Generator passed in, the
    layers' nnx.Rngs streams): the same seed gives the same logits, and they are not eval's."""
    ds = data.load_sequences("pycorpus", seq_len=8)
    config = GPTConfig.for_data(ds, n_embd=16, n_layer=1, n_head=2, dropout=0.3)
    w = initial_weights("gpt", config)
    x, y = (a[:4] for a in (ds.x_train, ds.y_train))
    rng = np.random.default_rng(0)
    shapes = {"drop": (4, 8, 16), "blocks.0.attn.attn_drop": (4, 2, 8, 8),
              "blocks.0.attn.resid_drop": (4, 8, 16), "blocks.0.mlp.drop": (4, 8, 16)}  # fmt: skip
    masks = {k: rng.random(v) > 0.3 for k, v in shapes.items()}

    def put(root, to_array):
        for name, mask in masks.items():
            layer = root
            for part in name.split("."):
                layer = layer[int(part)] if part.isdigit() else getattr(layer, part)
            layer.mask = to_array(mask)

    o = oop_model("gpt", config, w).train()
    put(o, torch.from_numpy)
    loss_o = F.cross_entropy(o(torch.from_numpy(x)).flatten(0, 1), torch.from_numpy(y).flatten())
    loss_o.backward()
    grads_o = {k: p.grad.numpy() for k, p in o.named_parameters()}
    skeleton, params, _ = torch_func_model("gpt", config, w)
    put(skeleton, torch.from_numpy)
    module = TORCH_FUNC["gpt"]
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    grads_t, loss_t = grad_and_value(lambda p: module.loss_fn(skeleton, p, xt, yt))(params)
    with jax.enable_x64(True):
        m = nnx_model("gpt", config, w)
        m.train()
        put(m, jnp.asarray)
        grad = nnx.jit(nnx.value_and_grad(NNX["gpt"].loss_fn))  # one compilation, not per op
        loss_n, grads_n = grad(m, jnp.asarray(x), jnp.asarray(y))
        grads_n = nconvert.canonical_of(m, grads_n)
    assert abs(loss_t.item() - loss_o.item()) <= F64_TOL
    assert abs(float(loss_n) - loss_o.item()) <= F64_TOL
    assert max_abs_diff(tconvert.to_canonical(grads_t), grads_o) <= F64_TOL
    assert max_abs_diff(grads_n, grads_o) <= F64_TOL
    # without masks: each corner's own draws, keyed by its seed
    plain = module.apply(module.skeleton(config, dtype="float64").eval(), params, xt, None)
    put(skeleton, lambda m: None)
    gen = [module.apply(skeleton, params, xt, torch.Generator().manual_seed(s)) for s in (1, 1, 2)]
    assert torch.equal(gen[0], gen[1]) and not torch.equal(gen[0], gen[2])
    assert max_abs_diff(gen[0], plain) > 1e-3
    # and the NNX corner's: its layers' streams draw in train() mode, advance with each call,
    # start alike from the same seed, and the checkpoint keeps every layer's stream
    with jax.enable_x64(True):
        forward = nnx.jit(lambda model, x: model(x))
        a, b = (nnx_model("gpt", config, w) for _ in range(2))
        for m in (a, b):
            m.train()
        first, second, again = forward(a, x), forward(a, x), forward(b, x)
        b.eval()
        assert np.array_equal(first, again) and not np.array_equal(first, second)
        assert max_abs_diff(first, forward(b, x)) > 1e-3
        assert len([k for k in nconvert.rng_to_canonical(a) if k.endswith(".key")]) == len(shapes)


def _batch(model: str, digits):
    """`(config, float64 weights, x, y)`: small, for one forward and backward pass."""
    if model == "gpt":
        ds = data.load_sequences("pycorpus", seq_len=8)
        config = GPTConfig.for_data(ds, n_embd=16, n_layer=1, n_head=2)
        x, y = ds.x_train[:4], ds.y_train[:4]
    else:
        config = (CNNBNConfig.for_data(digits, width=4) if model == "cnn_bn"
                  else MLPConfig(in_features=64, out_features=10, width=16))  # fmt: skip
        x, y = digits.x_train[:32], digits.y_train[:32]
    return config, initial_weights(model, config), x, y


@pytest.mark.parametrize("model", MODELS)
def test_every_corner_computes_the_oop_sides_outputs_and_gradients(model, digits):
    """float64, one batch in training mode: the NNX corner's and the torch.func corner's
    outputs, loss, every gradient and (cnn_bn) the running statistics after the pass, against
    the OOP side's module (itself proved against the functional side by the model's own test)
    to F64_TOL."""
    config, w, x, y = _batch(model, digits)
    o = oop_model(model, config, w).train()
    out_o = o(torch.from_numpy(x))
    yt = torch.from_numpy(y)
    loss_o = (F.cross_entropy(out_o.flatten(0, 1), yt.flatten()) if model == "gpt"
              else F.cross_entropy(out_o, yt))  # fmt: skip
    loss_o.backward()
    grads_o = {k: p.grad.numpy() for k, p in o.named_parameters()}
    after_o = {
        k: b.numpy() for k, b in o.named_buffers() if b is not None and k.startswith("norms")
    }
    # functions on torch
    skeleton, params, buffers = torch_func_model(model, config, w)
    module, xt = TORCH_FUNC[model], torch.from_numpy(x)
    if buffers is None:
        grads_t, loss_t = grad_and_value(lambda p: module.loss_fn(skeleton, p, xt, yt))(params)
        out_t, after_t = (
            module.apply(skeleton, params, xt, *([None] if model == "gpt" else [])),
            None,
        )
    else:

        def loss_of(p):
            return module.loss_fn(skeleton, p, buffers, xt, yt)

        grads_t, (loss_t, after_t) = grad_and_value(loss_of, has_aux=True)(params)
        out_t = module.apply(skeleton, params, buffers, xt)[0]
    # objects on JAX: one model for the outputs, another for the loss and gradients (each a
    # training pass that moves the statistics once)
    with jax.enable_x64(True):
        fresh, m = (nnx_model(model, config, w) for _ in range(2))
        for each in (fresh, m):
            each.train()
        jx, jy = jnp.asarray(x), jnp.asarray(y)
        out_n = np.asarray(nnx.jit(lambda each, x: each(x))(fresh, jx))
        loss_n, grads_n = nnx.jit(nnx.value_and_grad(NNX[model].loss_fn))(m, jx, jy)
        grads_n = nconvert.canonical_of(m, grads_n)
        after_n = {k: v for k, v in nconvert.to_canonical(m).items() if k in after_o}
    torch_func = (out_t, loss_t, tconvert.to_canonical(grads_t), tconvert.to_canonical(after_t))
    for what, got in (("torch.func", torch_func), ("NNX", (out_n, loss_n, grads_n, after_n))):
        out, loss, grads, after = got
        assert max_abs_diff(out, out_o.detach()) <= F64_TOL, (what, "outputs")
        assert abs(float(loss) - loss_o.item()) <= F64_TOL, (what, "loss")
        assert grads.keys() == grads_o.keys(), (what, sorted(grads.keys() ^ grads_o.keys()))
        assert max_abs_diff(grads, grads_o) <= F64_TOL, (what, "gradients")
        assert after.keys() == after_o.keys(), (what, "the statistics a training pass moves")
        if after_o:
            assert max_abs_diff(after, after_o) <= F64_TOL, (what, "running statistics")


def test_each_corner_decodes_as_the_forward_pass_and_samples_as_its_column():
    """The gpt token by token through each corner's KV cache (NNX: `nnx.Cache` variables
    written in place; torch.func: caches passed in and returned), for 2.5 blocks: the logits
    equal the OOP side's plain pass over the last `block_size` tokens to F64_TOL. And sampling
    (temperature 1, seed 3) prints the text of the same framework's native side: the NNX corner
    the functional side's, the torch.func corner the OOP side's."""
    ds = data.load_sequences("pycorpus", seq_len=8)
    config = GPTConfig.for_data(ds, n_embd=16, n_layer=1, n_head=2)
    w, s = initial_weights("gpt", config), config.block_size
    seq = np.random.default_rng(2).integers(0, config.vocab_size, 20)
    windows = torch.from_numpy(np.stack([seq[i : i + s] for i in range(len(seq) - s + 1)]))
    with torch.no_grad():
        out = oop_model("gpt", config, w).eval()(windows).numpy()  # (13, S, V)
    plain = np.concatenate([out[0], out[1:, -1]])  # causal: window 0 covers the first S
    skeleton, params, _ = torch_func_model("gpt", config, w)
    module, model = TORCH_FUNC["gpt"], tmlp.inference_mode(skeleton)
    state, cached_t = module.init_decode(model, params), []
    for token in seq:
        state, logits = module.decode(model, params, state, torch.tensor([int(token)]))
        cached_t.append(logits[0].numpy())
    with jax.enable_x64(True):
        m = nnx_model("gpt", config, w)
        m.eval()
        m.reset_decode(batch=1)
        cached_n = [np.asarray(m.decode(jnp.asarray([int(t)]))[0]) for t in seq]
    assert max_abs_diff(cached_t, plain) <= F64_TOL
    assert max_abs_diff(cached_n, plain) <= F64_TOL
    # sampling, through the four scripts' generate on one model
    with jax.enable_x64(True):
        f = pairs_functional_model("gpt", config, w)
        text_f = fsample.generate(f, seq[:3], 12, 1.0, None, key=jax.random.PRNGKey(3))
        text_n = nsample.generate(nnx_model("gpt", config, w), seq[:3], 12, 1.0, None, seed=3)
    text_o = osample.generate(oop_model("gpt", config, w), seq[:3], 12, 1.0, None, seed=3)
    text_t = tsample.generate(module, model, params, seq[:3], 12, 1.0, None, seed=3)
    assert np.array_equal(text_n, text_f) and np.array_equal(text_t, text_o)
