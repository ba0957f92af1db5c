"""Head field, region attention, audio encoder and MLP: shapes, ranges, gradients, conditioning."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ernerf_ns.audio.windows import smoothing_window
from ernerf_ns.fields.audio_encoder import AudioAttNet, AudioEncoder, AudioNet
from ernerf_ns.fields.head_field import ERNeRFHeadField
from ernerf_ns.fields.mlp import MLP
from ernerf_ns.fields.region_attention import RegionAttention

NUM_FRAMES = 5


@pytest.fixture
def field() -> ERNeRFHeadField:
    torch.manual_seed(0)
    return ERNeRFHeadField(num_frames=NUM_FRAMES, implementation="torch")


def inputs(n: int = 64, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    directions = torch.randn(n, 3, generator=g)
    return {
        "positions": torch.rand(n, 3, generator=g) * 2 - 1,
        "directions": directions / directions.norm(dim=-1, keepdim=True),
        "audio": torch.randn(n, 32, generator=g),
        "eye": torch.rand(n, 1, generator=g),
    }


def run(field: ERNeRFHeadField, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    frames = torch.arange(batch["positions"].shape[0]) % NUM_FRAMES
    return field(**batch, individual_code=field.individual_codes[frames])


def randomise_grids(field: ERNeRFHeadField, std: float = 0.5) -> None:
    """Tables start near zero; spread them so that positions (and so attention) differ between points."""
    with torch.no_grad():
        for p in field.encoding.parameters():
            p.normal_(0, std, generator=torch.Generator().manual_seed(1))


def test_mlp_is_bias_free_with_relu_between():
    mlp = MLP(3, 2, hidden_dim=8, num_layers=3)
    assert [(layer.in_features, layer.out_features) for layer in mlp.layers] == [(3, 8), (8, 8), (8, 2)]
    assert all(layer.bias is None for layer in mlp.layers)
    with torch.no_grad():
        for layer in mlp.layers:
            layer.weight.copy_(-torch.eye(layer.out_features, layer.in_features))
    # A negative first layer is cut to zero by the ReLU; no ReLU after the last layer keeps negatives.
    assert torch.equal(mlp(torch.ones(1, 3)), torch.zeros(1, 2))
    single = MLP(2, 2, hidden_dim=8, num_layers=1)
    with torch.no_grad():
        single.layers[0].weight.copy_(-torch.eye(2))
    assert torch.equal(single(torch.ones(1, 2)), -torch.ones(1, 2))


def test_field_mlps_have_no_biases(field):
    linears = [m for m in field.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == 2 + 2 + 3 + 2 + 2  # aud_ch_att, eye_att, sigma, color, unc
    assert all(m.bias is None for m in linears)
    assert [m.in_features for m in field.sigma_net.layers] == [36 + 32 + 1, 64, 64]
    assert field.sigma_net.layers[-1].out_features == 1 + 64
    assert [m.in_features for m in field.color_net.layers] == [16 + 64 + 4, 64]
    assert [(m.in_features, m.out_features) for m in field.unc_net.layers] == [(36, 32), (32, 1)]


def test_output_shapes_and_ranges(field):
    out = run(field, inputs())
    shapes = {k: tuple(v.shape) for k, v in out.items()}
    assert shapes == {
        "density": (64, 1),
        "geo_feat": (64, 64),
        "enc_x": (64, 36),
        "audio_attention": (64, 32),
        "eye_attention": (64, 1),
        "rgb": (64, 3),
        "uncertainty": (64, 1),
    }
    assert (out["density"] > 0).all()
    assert (out["uncertainty"] > 0).all()
    assert ((out["eye_attention"] > 0) & (out["eye_attention"] < 1)).all()
    assert field.individual_codes.shape == (NUM_FRAMES, 4)


def test_density_alone_matches_forward(field):
    batch = inputs()
    out = run(field, batch)
    alone = field.density(batch["positions"], batch["audio"], batch["eye"])
    assert set(alone) == {"density", "geo_feat", "enc_x", "audio_attention", "eye_attention"}
    for key, value in alone.items():
        torch.testing.assert_close(value, out[key])


def test_color_stays_within_margin():
    field = ERNeRFHeadField(num_frames=NUM_FRAMES, implementation="torch")
    with torch.no_grad():
        field.color_net.layers[-1].weight.mul_(1e4)  # saturate the sigmoid both ways
    rgb = run(field, inputs(256))["rgb"]
    assert rgb.min() >= -0.001 and rgb.max() <= 1.001
    assert rgb.min() < -0.0009 and rgb.max() > 1.0009


def test_per_frame_conditioning_broadcasts(field):
    batch = inputs(16)
    audio, eye, code = batch["audio"][:1], batch["eye"][:1], field.individual_codes[2:3]
    per_frame = field(batch["positions"], batch["directions"], audio, eye, code)
    repeated = [t.expand(16, -1) for t in (audio, eye, code)]
    per_point = field(batch["positions"], batch["directions"], *repeated)
    for key in per_point:
        torch.testing.assert_close(per_frame[key], per_point[key])


def test_gradients_reach_every_group():
    field = ERNeRFHeadField(num_frames=NUM_FRAMES, implementation="torch")
    randomise_grids(field, std=0.1)
    out = run(field, inputs(256))
    loss = out["rgb"].square().sum() + out["density"].sum() + out["uncertainty"].sum()
    loss.backward()
    groups = field.param_groups()
    assert set(groups) == {"grids", "nets", "codes"}
    grouped = [p for params in groups.values() for p in params]
    assert len({id(p) for p in grouped}) == len(grouped)
    assert {id(p) for p in grouped} == {id(p) for p in field.parameters()}
    assert len(groups["grids"]) == 3
    for name, params in groups.items():
        for p in params:
            if p.numel() == 0:
                continue  # tcnn's parameter-free SH encoding, when present
            assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_density_depends_on_audio_and_eye(field):
    randomise_grids(field)
    batch = inputs()
    base = field.density(batch["positions"], batch["audio"], batch["eye"])["density"]
    other_audio = field.density(batch["positions"], batch["audio"] + 1.0, batch["eye"])["density"]
    other_eye = field.density(batch["positions"], batch["audio"], 1.0 - batch["eye"])["density"]
    assert not torch.allclose(base, other_audio)
    assert not torch.allclose(base, other_eye)


def test_zero_channel_attention_silences_audio():
    field = ERNeRFHeadField(num_frames=NUM_FRAMES, implementation="torch")
    randomise_grids(field)
    with torch.no_grad():
        field.region_attention.aud_ch_att.layers[-1].weight.zero_()
    batch = inputs()
    silent = field.density(batch["positions"], torch.zeros_like(batch["audio"]), batch["eye"])
    loud = field.density(batch["positions"], batch["audio"] * 10, batch["eye"])
    assert torch.equal(loud["audio_attention"], torch.zeros_like(batch["audio"]))
    torch.testing.assert_close(silent["density"], loud["density"])


def test_region_attention_output():
    attention = RegionAttention(in_dim=36, audio_dim=32)
    enc_x, audio, eye = torch.randn(10, 36), torch.randn(10, 32), torch.rand(10, 1)
    out = attention(enc_x, audio, eye)
    assert out.audio_attention.shape == (10, 32) and out.eye_attention.shape == (10, 1)
    torch.testing.assert_close(out.audio, audio * out.audio_attention)
    torch.testing.assert_close(out.eye, eye * out.eye_attention)
    torch.testing.assert_close(out.eye_attention, torch.sigmoid(attention.eye_att(enc_x)))


def tcnn_sh_degree4(d: torch.Tensor) -> torch.Tensor:
    """tiny-cuda-nn's SphericalHarmonics (degree 4) transcribed from its kernel, on unit directions."""
    x, y, z = d.unbind(-1)
    xy, yz, xz, x2, y2, z2 = x * y, y * z, x * z, x * x, y * y, z * z
    return torch.stack(
        [
            torch.full_like(x, 0.28209479177387814),
            -0.48860251190291987 * y,
            0.48860251190291987 * z,
            -0.48860251190291987 * x,
            1.0925484305920792 * xy,
            -1.0925484305920792 * yz,
            0.94617469575755997 * z2 - 0.31539156525251999,
            -1.0925484305920792 * xz,
            0.54627421529603959 * x2 - 0.54627421529603959 * y2,
            0.59004358992664352 * y * (-3.0 * x2 + y2),
            2.8906114426405538 * xy * z,
            0.45704579946446572 * y * (1.0 - 5.0 * z2),
            0.3731763325901154 * z * (5.0 * z2 - 3.0),
            0.45704579946446572 * x * (1.0 - 5.0 * z2),
            1.4453057213202769 * z * (x2 - y2),
            0.59004358992664352 * x * (-x2 + 3.0 * y2),
        ],
        dim=-1,
    )


def test_direction_encoding_matches_tcnn_convention(field):
    directions = inputs(32)["directions"]
    torch.testing.assert_close(field.encode_directions(directions), tcnn_sh_degree4(directions), atol=1e-5, rtol=1e-5)


def test_audio_net_shapes():
    net = AudioNet(dim_in=29, dim_aud=32)
    x = torch.randn(6, 29, 16)
    assert net.encoder_conv(x).shape == (6, 64, 1)
    assert net(x).shape == (6, 32)
    convs = [m for m in net.encoder_conv if isinstance(m, nn.Conv1d)]
    assert [(c.in_channels, c.out_channels, c.stride[0]) for c in convs] == [
        (29, 32, 2),
        (32, 32, 2),
        (32, 64, 2),
        (64, 64, 2),
    ]


def test_audio_encoder_smoothing():
    torch.manual_seed(0)
    encoder = AudioEncoder(dim_in=29, dim_aud=32, seq_len=8)
    windows = torch.randn(3, 8, 29, 16)
    smooth = encoder(windows, smooth=True)
    assert smooth.shape == (3, 32)

    codes = encoder.audio_net(windows.flatten(0, 1)).view(3, 8, 32)
    weights = encoder.audio_att_net.weights(codes)
    assert weights.shape == (3, 8)
    torch.testing.assert_close(weights.sum(dim=-1), torch.ones(3))
    assert (weights > 0).all()
    torch.testing.assert_close(smooth, (weights[..., None] * codes).sum(dim=1))
    # Each window is attended independently.
    torch.testing.assert_close(encoder(windows[1:2]), smooth[1:2])

    centre = encoder(windows, smooth=False)
    torch.testing.assert_close(centre, encoder.audio_net(windows[:, 4]))
    torch.testing.assert_close(centre, codes[:, 4])


def test_all_frame_codes_equal_each_frames_own_window():
    torch.manual_seed(0)
    encoder = AudioEncoder(dim_in=29, dim_aud=32, seq_len=8)
    features = torch.randn(11, 29, 16)
    for smooth in (False, True):
        windows = features[smoothing_window(torch.arange(11), 11, 8)]
        torch.testing.assert_close(encoder.all_frames(features, smooth), encoder(windows, smooth=smooth))


def test_conditioning_per_ray_equals_conditioning_per_point(field):
    """The model hands the field one direction, audio code, eye value and individual code per ray."""
    batch = inputs(12)
    ray_indices = torch.tensor([0, 0, 1, 1, 1, 2, 3, 3, 3, 3, 4, 5])
    per_ray = (
        torch.nn.functional.normalize(torch.randn(6, 3), dim=-1),
        batch["audio"][:6],
        batch["eye"][:6],
        field.individual_codes[torch.tensor([0, 1, 2, 3, 4, 0])],
    )
    once = field(batch["positions"], *per_ray, ray_indices=ray_indices)
    each = field(batch["positions"], *(t[ray_indices] for t in per_ray))
    for key in each:
        torch.testing.assert_close(once[key], each[key])


def test_audio_att_net_layers():
    net = AudioAttNet(dim_aud=32, seq_len=8)
    convs = [m for m in net.attention_conv if isinstance(m, nn.Conv1d)]
    assert [c.out_channels for c in convs] == [16, 8, 4, 2, 1]
    assert all(c.stride[0] == 1 and c.kernel_size[0] == 3 for c in convs)
    assert (net.attention_fc.in_features, net.attention_fc.out_features) == (8, 8)


def test_direction_encoding_stays_float32_under_the_networks_bf16_autocast(field):
    directions = inputs(32)["directions"]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        encoded = field.encode_directions(directions)
    assert encoded.dtype == torch.float32
    torch.testing.assert_close(encoded, tcnn_sh_degree4(directions), atol=1e-5, rtol=1e-5)
