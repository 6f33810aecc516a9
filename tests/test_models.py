"""Model shapes for every config, DCGAN init, and the search-side pieces of issue 2."""
import numpy as np
import pytest
import torch

from edgefill.runtime.imaging.masks import MASK_KINDS, importance_weights, make_mask, resolve_mask
from edgefill.runtime.core.search_config import SearchConfig
from edgefill.runtime.core.torch_search import adam_step, search_loss, torch_search
from edgefill.train.config import PRESETS, preset
from edgefill.train.discriminator import Discriminator
from edgefill.train.generator import Generator
from edgefill.train.config import RefinerConfig
from edgefill.train.refiner import Refiner, UNetRefiner, build_refiner


@pytest.mark.parametrize("name", list(PRESETS))
def test_model_shapes(name):
    g, d, r = preset(name)
    G, D, R = Generator(g).eval(), Discriminator(d).eval(), build_refiner(r).eval()
    z = torch.rand(2, g.z_dim) * 2 - 1
    with torch.no_grad():
        x = G(z)
        assert x.shape == (2, 3, 64, 64) and x.abs().max() <= 1.0
        assert D(x).shape == (2, 1)
        hole = torch.zeros(2, 1, 64, 64)
        assert R(torch.cat([x, hole], 1)).shape == (2, 3, 64, 64)  # the presets' refiner sees the hole
    assert r.arch == "unet" and r.mask_channel and r.in_channels == 4
    assert D.head.in_features == 4 * 4 * 8 * d.width


def test_paper_and_base_widths_follow_the_report():
    assert Generator(preset("paper")[0]).convs[0].out_channels == 1024  # 1024-512-256-128 (Table 2.1)
    assert Discriminator(preset("base")[1]).head.in_features == 8192
    old = Refiner(RefinerConfig(width=64))  # the report's autoencoder: a 4*4*8r code
    assert old.encoder(torch.zeros(1, 3, 64, 64)).numel() == 8192


def test_unet_refiner_starts_as_the_identity_and_keeps_range():
    R = UNetRefiner(RefinerConfig(width=8, arch="unet", mask_channel=True)).eval()
    x = torch.rand(3, 3, 64, 64) * 2 - 1
    hole = (torch.rand(3, 1, 64, 64) > 0.5).float()
    with torch.no_grad():
        assert torch.equal(R(torch.cat([x, hole], 1)), x)  # zero-initialised correction
        torch.nn.init.normal_(R.out.weight, 0, 1.0)
        out = R(torch.cat([x, hole], 1))
    assert out.abs().max() <= 1.0 and not torch.equal(out, x)
    assert sum(p.numel() for p in build_refiner(preset("base")[2]).parameters()) < 2_500_000


def test_refiner_config_refuses_an_unknown_arch():
    from edgefill.runtime.errors import EdgefillError

    with pytest.raises(EdgefillError, match="unknown refiner arch"):
        RefinerConfig(arch="transformer")


def test_dropout_is_active_only_in_training():
    from edgefill.train.config import GeneratorConfig

    G = Generator(GeneratorConfig(width=8, dropout=0.5))
    z = torch.rand(4, 100) * 2 - 1
    G.eval()
    assert torch.equal(G(z), G(z))
    G.train()
    torch.manual_seed(0)
    a = G(z)
    torch.manual_seed(1)
    assert not torch.equal(a, G(z))


def test_importance_weights_hand_computed():
    mask = np.zeros((5, 5), np.uint8)
    mask[2, 2] = 255  # one missing pixel in the middle
    w = importance_weights(mask, window=3)[0, 0]
    expected = np.zeros((5, 5), np.float32)
    expected[1:4, 1:4] = 1 / 9  # its 8 known neighbours see 1 unknown pixel out of 9
    expected[2, 2] = 0.0        # unknown pixels weigh nothing
    np.testing.assert_allclose(w, expected, atol=1e-7)
    # 7x7 default: a corner pixel next to a 2x2 hole at the image corner; outside counts as known
    mask = np.zeros((8, 8), np.uint8)
    mask[:2, :2] = 255
    w7 = importance_weights(mask)[0, 0]
    assert w7[0, 2] == pytest.approx(4 / 49) and w7[5, 5] == pytest.approx(0.0) and w7[0, 0] == 0.0


@pytest.mark.parametrize("kind", MASK_KINDS)
def test_masks_are_uint8_with_holes(kind):
    m = make_mask(kind, np.random.default_rng(3))
    assert m.dtype == np.uint8 and m.shape == (64, 64) and set(np.unique(m)) <= {0, 255}
    assert 0.05 < (m == 255).mean() < 0.9


def test_mask_fractions_match_design():
    rng = np.random.default_rng(0)
    assert (make_mask("center") == 255).mean() == 0.25
    assert abs((make_mask("random", rng) == 255).mean() - 0.8) < 0.03
    assert abs((make_mask("pattern", rng) == 255).mean() - 0.25) < 0.02


def test_resolve_mask_rejects_unknown_kind():
    from edgefill.runtime.errors import EdgefillError

    with pytest.raises(EdgefillError, match="neither a mask kind"):
        resolve_mask("sideways")


def test_adam_step_matches_torch_adam_and_clips():
    torch.manual_seed(0)
    z = (torch.rand(3, 5) * 2 - 1).requires_grad_(True)
    opt = torch.optim.Adam([z], lr=0.05, betas=(0.9, 0.999), eps=1e-8)
    zz, m, v, t = z.detach().clone(), torch.zeros(3, 5), torch.zeros(3, 5), torch.zeros(3)
    for _ in range(5):
        g = torch.randn(3, 5) * 0.1
        opt.zero_grad()
        z.grad = g.clone()
        opt.step()
        zz, m, v, t = adam_step(zz, g, m, v, t, 0.05, 0.9, 0.999, 1e-8)
    np.testing.assert_allclose(zz.numpy(), z.detach().clamp(-1, 1).numpy(), atol=1e-5)  # float32 op order
    big = adam_step(torch.ones(1, 2), -torch.ones(1, 2), torch.zeros(1, 2), torch.zeros(1, 2), torch.zeros(1),
                    5.0, 0.9, 0.999, 1e-8)[0]
    assert big.max() <= 1.0
    zero = adam_step(torch.zeros(1, 2), torch.zeros(1, 2), torch.zeros(1, 2), torch.zeros(1, 2), torch.zeros(1),
                     0.1, 0.9, 0.999, 1e-8)[0]
    assert torch.isfinite(zero).all()  # the epsilon keeps a zero gradient finite


def test_search_lowers_contextual_loss_and_keeps_z_in_box(tiny_models):
    """Targets the generator can reach (y = G(z*)): the search must cut the contextual loss."""
    G, D, _ = tiny_models
    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():
        y = G(torch.rand(2, 100, generator=gen) * 1.6 - 0.8).numpy()
    W = importance_weights(np.stack([make_mask("center")] * 2))
    z0 = (torch.rand(6, 100, generator=gen) * 2 - 1).numpy()
    with torch.no_grad():
        start = search_loss(G, D, torch.from_numpy(z0), torch.from_numpy(np.repeat(y, 3, 0)),
                            torch.from_numpy(np.repeat(W, 3, 0)), 0.0, "lsgan")[0].numpy().reshape(2, 3).min(1)
    res = torch_search(G, D, y, W, SearchConfig(steps=60, restarts=3, lr=0.05, lam=0.0), z_dim=100, z0=z0)
    assert res.images.shape == (2, 3, 64, 64) and res.z.shape == (2, 100) and res.steps_run == 60
    assert np.all(res.loss < start * 0.5), (res.loss, start)
    assert np.all(np.abs(res.z) <= 1.0)
    assert np.all(np.diff(res.history, axis=0) <= 1e-6)  # best-so-far never rises


def test_both_prior_forms_are_finite_for_large_scores():
    from edgefill.runtime.core.torch_search import prior_loss

    s = torch.tensor([-50.0, 0.0, 1.0, 50.0])
    assert torch.isfinite(prior_loss(s, "log")).all()  # the report's log(1 - D) would be undefined for D >= 1
    assert prior_loss(torch.tensor([1.0]), "lsgan").item() == 0.0
