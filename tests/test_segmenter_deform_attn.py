"""Deformable attention: the fused core equals a direct loop reference (borders, outside samples, any L/M/P)."""

from __future__ import annotations

import pytest
import torch

from spvis.modeling.ms_deform_attn import MSDeformAttn, ms_deform_attn_core, ms_deform_attn_reference


@pytest.fixture(autouse=True)
def _single_thread():
    """Tiny tensors gain nothing from threads, and a busy 2-core machine makes thread hand-off very slow."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def loop_reference(value, shapes, locations, weights):
    """Bilinear sampling written out sample by sample (zero outside the map, align_corners=False)."""
    n, _, m, d = value.shape
    _, lq, _, num_levels, num_points, _ = locations.shape
    starts = [0]
    for h, w in shapes[:-1]:
        starts.append(starts[-1] + h * w)
    out = torch.zeros(n, lq, m, d, dtype=torch.float64)
    v = value.double()
    for b in range(n):
        for q in range(lq):
            for head in range(m):
                for level, (h, w) in enumerate(shapes):
                    for p in range(num_points):
                        x = locations[b, q, head, level, p, 0].item() * w - 0.5
                        y = locations[b, q, head, level, p, 1].item() * h - 0.5
                        x0, y0 = int(torch.floor(torch.tensor(x))), int(torch.floor(torch.tensor(y)))
                        a = weights[b, q, head, level, p].item()
                        for yy, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
                            for xx, wx in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
                                if 0 <= xx < w and 0 <= yy < h:
                                    out[b, q, head] += a * wy * wx * v[b, starts[level] + yy * w + xx, head]
    return out.reshape(n, lq, m * d).float()


def random_inputs(shapes, n=2, lq=7, m=2, d=3, points=3, spread=0.6, seed=0):
    gen = torch.Generator().manual_seed(seed)
    s = sum(h * w for h, w in shapes)
    value = torch.randn(n, s, m, d, generator=gen)
    # locations reach well outside [0, 1] so border and fully-outside samples are exercised
    locations = torch.rand(n, lq, m, len(shapes), points, 2, generator=gen) * (1 + 2 * spread) - spread
    weights = torch.rand(n, lq, m, len(shapes), points, generator=gen)
    return value, locations, weights


@pytest.mark.parametrize("shapes,m,points", [
    ([(5, 7)], 1, 1),
    ([(6, 4), (3, 2)], 2, 3),
    ([(8, 9), (4, 5), (2, 3), (1, 1)], 3, 2),
])
def test_core_matches_loop_reference(shapes, m, points):
    value, locations, weights = random_inputs(shapes, m=m, points=points)
    expected = loop_reference(value, shapes, locations, weights)
    torch.testing.assert_close(ms_deform_attn_core(value, shapes, locations, weights), expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ms_deform_attn_reference(value, shapes, locations, weights), expected,
                               atol=1e-5, rtol=1e-5)


def test_exact_border_samples():
    """Samples exactly on pixel centres, edges and one pixel outside read the right values (or zero)."""
    shapes = [(3, 4)]
    value = torch.arange(12, dtype=torch.float32).view(1, 12, 1, 1) + 1
    xs = torch.tensor([0.5, 3.5, -0.5, 4.5, -1.0, 0.0, 4.0, 2.0]) / 4  # centre, last centre, edges, outside
    ys = torch.tensor([0.5, 2.5, 1.5, 1.5, 1.5, 0.0, 3.0, 1.5]) / 3
    locations = torch.stack([xs, ys], -1).view(1, 8, 1, 1, 1, 2)
    weights = torch.ones(1, 8, 1, 1, 1)
    out = ms_deform_attn_core(value, shapes, locations, weights).view(-1)
    expected = loop_reference(value, shapes, locations, weights).view(-1)
    torch.testing.assert_close(out, expected)
    assert out[0] == 1 and out[1] == 12 and out[4] == 0  # first pixel, last pixel, a full pixel outside


def test_gradients_match_grid_sample_reference():
    shapes = [(5, 6), (3, 3)]
    value, locations, weights = random_inputs(shapes, n=1, lq=5, m=2, d=4, points=2, spread=0.3, seed=3)
    grads = []
    for core in (ms_deform_attn_core, ms_deform_attn_reference):
        inputs = [t.clone().requires_grad_(True) for t in (value, locations, weights)]
        out = core(inputs[0], shapes, inputs[1], inputs[2])
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        grads.append([t.grad for t in inputs])
    for ours, reference in zip(*grads):
        torch.testing.assert_close(ours, reference, atol=1e-5, rtol=1e-4)


def test_module_fast_and_reference_paths_agree():
    torch.manual_seed(0)
    attn = MSDeformAttn(d_model=16, n_levels=2, n_heads=4, n_points=2)
    torch.nn.init.normal_(attn.sampling_offsets.weight, std=0.5)
    torch.nn.init.normal_(attn.attention_weights.weight)
    shapes = [(6, 5), (3, 3)]
    s = sum(h * w for h, w in shapes)
    src = torch.randn(2, s, 16)
    reference_points = torch.rand(2, s, 2, 2)
    with torch.no_grad():  # inference: the fused core
        fast = attn(src, reference_points, src, shapes)
        attn.use_reference_core = True
        slow = attn(src, reference_points, src, shapes)
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-5)
    attn.use_reference_core = False
    trained = attn(src, reference_points, src, shapes)  # with gradients: the per-level path, same values
    torch.testing.assert_close(trained.detach(), fast, atol=1e-5, rtol=1e-5)
    trained.sum().backward()
    assert attn.sampling_offsets.weight.grad.abs().sum() > 0 and attn.value_proj.weight.grad.abs().sum() > 0
    assert fast.shape == (2, s, 16)
    names = {name for name, _ in attn.named_parameters()}
    assert {"sampling_offsets.weight", "attention_weights.weight", "value_proj.weight", "output_proj.bias"} <= names
