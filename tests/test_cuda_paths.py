"""On a CUDA machine, nerfacc's and Triton's kernels and the pure-PyTorch path compute the same model.

Skipped without a GPU; run on the device machine with `pytest tests/test_cuda_paths.py`.
"""

import copy

import pytest
import torch

from ernerf_ns.config import ernerf_tiny_method
from ernerf_ns.in_process import train
from ernerf_ns.stages import StageSchedule
from ernerf_ns.synthetic import make_synthetic_portrait

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (device machine)")


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(-10 * torch.log10(((a.float().cpu() - b.float().cpu()) ** 2).mean().clamp(min=1e-12)))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("cuda")
    make_synthetic_portrait(root / "data", frames=33, size=64, write_video=False)
    config = copy.deepcopy(ernerf_tiny_method.config)
    config.pipeline.model.stages = StageSchedule(head_steps=300, lips_steps=50, torso_steps=200)
    config.pipeline.model.hash_implementation = "triton"  # trained with the fused kernels, rendered on CPU below
    trainer = train(config, root / "data", root / "runs", max_steps=550, device="cuda")
    pipeline = trainer.pipeline
    pipeline.eval()
    camera, batch = pipeline.datamanager.next_eval_image(0)
    return pipeline, camera


def test_all_three_stages_train_on_cuda(trained):
    pipeline, camera = trained
    points = torch.zeros(1, 3, device="cuda")
    assert pipeline.model.field.encoding.planes[0].backend(points) == "triton"
    metrics = pipeline.get_average_eval_image_metrics()
    assert pipeline.model.torso_ready
    assert metrics["head_psnr"] > 24.0, metrics
    assert metrics["psnr"] > 22.0, metrics  # head over the learned torso, against the full frame


@pytest.fixture
def fine_steps(trained):
    """Both marchers approximate the same integral; at fine steps their sample lattices stop mattering."""
    model = trained[0].model
    coarse = model.config.render_step_size
    model.config.render_step_size = 1 / 1024
    yield
    model.config.render_step_size = coarse


def test_nerfacc_and_pytorch_marchers_render_the_same_image(trained, fine_steps):
    pipeline, camera = trained
    model = pipeline.model
    model.config.marcher = "nerfacc"
    fast = model.get_outputs_for_camera(camera.to("cuda"))
    model.config.marcher = "torch"
    slow = model.get_outputs_for_camera(camera.to("cuda"))
    model.config.marcher = "nerfacc"
    score = psnr(fast["rgb"], slow["rgb"])
    accumulation_gap = float((fast["accumulation"] - slow["accumulation"]).abs().mean())
    assert score > 35.0 and accumulation_gap < 0.01, f"PSNR {score:.2f} dB, accumulation gap {accumulation_gap:.4f}"


def test_cpu_model_renders_what_the_cuda_model_renders(trained, fine_steps):
    pipeline, camera = trained
    model = pipeline.model
    gpu = model.get_outputs_for_camera(camera.to("cuda"))
    cpu_model = copy.deepcopy(model).to("cpu")
    cpu = cpu_model.get_outputs_for_camera(camera.to("cpu"))
    score = psnr(gpu["rgb"], cpu["rgb"])
    assert score > 35.0, f"PSNR between CUDA and CPU renders {score:.2f} dB"


def test_field_density_is_the_same_on_cpu_and_cuda(trained):
    pipeline, _ = trained
    field = pipeline.model.field
    points = torch.rand(4096, 3, device="cuda") * 2 - 1
    audio = torch.randn(4096, 32, device="cuda")
    eye = torch.rand(4096, 1, device="cuda")
    gpu = field.density(points, audio, eye)["density"]
    cpu = copy.deepcopy(field).to("cpu").density(points.cpu(), audio.cpu(), eye.cpu())["density"]
    assert torch.allclose(gpu.cpu(), cpu, rtol=1e-3, atol=1e-4)


def test_compiled_hash_lookup_equals_eager_lookup():
    from ernerf_ns.fields.triplane_encoding import TriPlaneHashEncoding

    encoding = TriPlaneHashEncoding(implementation="torch").cuda()
    with torch.no_grad():
        for module in encoding.modules():
            if hasattr(module, "params"):
                module.params.uniform_(-1, 1)
    points = torch.rand(10_000, 3, device="cuda") * 2 - 1
    compiled = encoding(points)
    encoding.use_compile = False
    eager = encoding(points)
    gap = float((compiled - eager).abs().max())
    assert gap < 1e-4, f"max difference {gap:.2e}"


def test_frame_renderer_renders_the_chunked_paths_image(trained):
    """float32 without colour skipping: the same sums (up to the order of atomic adds); bf16 networks and the
    default colour skip: the rounding of bf16 activations (about 3 significant digits)."""
    pipeline, camera = trained
    model = pipeline.model
    camera = camera.to("cuda")
    chunked = model.get_outputs_for_camera_chunked(camera)
    defaults = model.config.render_bf16, model.config.render_weight_threshold
    model.config.render_bf16, model.config.render_weight_threshold = False, 0.0
    try:
        exact = model.get_outputs_for_camera(camera)
    finally:
        model.config.render_bf16, model.config.render_weight_threshold = defaults
    fast = model.get_outputs_for_camera(camera)
    assert list(fast) == list(chunked)
    exact_score, fast_score = psnr(exact["rgb"], chunked["rgb"]), psnr(fast["rgb"], chunked["rgb"])
    gap = float((fast["accumulation"] - chunked["accumulation"]).abs().mean())
    assert exact_score > 60.0 and fast_score > 40.0 and gap < 0.005, (
        f"PSNR to the chunked path: float32 {exact_score:.1f} dB, bf16 {fast_score:.1f} dB; accumulation gap {gap:.4f}"
    )


@pytest.mark.parametrize("bf16", [False, True])
def test_graphed_networks_equal_eager_networks_step_after_step(bf16):
    """CUDA-graph replay of the head field's networks: the outputs and gradients of eager ones, for two
    sample counts and again on the second replay of each (the graphs' buffers are reused between steps).
    Under bf16 both round differently (the compiled kernels keep fp32 between fused ops), so each is held
    to the float32 eager result: the graphed path may be no farther from it than eager bf16 is."""
    from ernerf_ns.fields.cuda_graphs import mark_step
    from ernerf_ns.fields.head_field import ERNeRFHeadField

    torch.manual_seed(0)
    field = ERNeRFHeadField(num_frames=7, implementation="triton").cuda()
    with torch.no_grad():
        for p in field.encoding.parameters():
            p.normal_(0, 0.3)

    def run(graphs: bool, num_samples: int, autocast: bool):
        mark_step()
        field.graph_networks = graphs
        field.zero_grad(set_to_none=True)
        g = torch.Generator(device="cuda").manual_seed(num_samples)
        ray_indices = torch.sort(torch.randint(0, 500, (num_samples,), device="cuda", generator=g)).values
        positions = torch.rand(num_samples, 3, device="cuda", generator=g) * 2 - 1
        directions = torch.nn.functional.normalize(torch.randn(500, 3, device="cuda", generator=g), dim=-1)
        codes = field.individual_codes[torch.randint(0, 7, (500,), device="cuda", generator=g)]
        audio = torch.randn(500, 32, device="cuda", generator=g)
        eye = torch.rand(500, 1, device="cuda", generator=g)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
            out = field(positions, directions, audio, eye, codes, ray_indices=ray_indices)
        loss = sum(out[k].float().pow(2).mean() for k in ("density", "rgb", "uncertainty", "audio_attention"))
        loss.backward()
        grads = [p.grad.clone() for p in field.parameters() if p.grad is not None]
        return {k: v.detach().float().clone() for k, v in out.items()}, grads

    def gap(a: torch.Tensor, b: torch.Tensor) -> float:
        return float((a - b).abs().max()) / (float(b.abs().max()) + 1e-12)

    for num_samples in (3000, 4711, 3000, 4711):
        reference, reference_grads = run(False, num_samples, autocast=False)
        eager, eager_grads = run(False, num_samples, autocast=bf16)
        graphed, graphed_grads = run(True, num_samples, autocast=bf16)
        assert graphed.keys() == eager.keys()
        assert len(graphed_grads) == len(eager_grads) == len(reference_grads)
        for key in eager:
            assert graphed[key].shape[0] == num_samples
            assert gap(graphed[key], reference[key]) <= 1.25 * gap(eager[key], reference[key]) + 1e-4, key
        for a, b, ref in zip(graphed_grads, eager_grads, reference_grads, strict=True):
            assert gap(a, ref) <= 1.25 * gap(b, ref) + 1e-3


def test_graphed_audio_encoder_equals_eager_step_after_step():
    """The audio encoder's all-frame codes replayed as a CUDA graph: eager values and gradients, smoothed and
    not (ER-NeRF turns smoothing on mid-run), on every replay."""
    from ernerf_ns.fields.audio_encoder import AudioEncoder
    from ernerf_ns.fields.cuda_graphs import mark_step

    torch.manual_seed(0)
    encoder = AudioEncoder(dim_in=32).cuda()
    features = torch.randn(40, 32, 16, device="cuda")

    def run(graphs: bool, smooth: bool):
        mark_step()
        encoder.graph_networks = graphs
        encoder.zero_grad(set_to_none=True)
        codes = encoder.all_frames(features, smooth)
        codes.pow(2).mean().backward()
        return codes.detach().clone(), [p.grad.clone() for p in encoder.parameters() if p.grad is not None]

    for smooth in (False, True, False, True):
        eager, eager_grads = run(False, smooth)
        graphed, graphed_grads = run(True, smooth)
        torch.testing.assert_close(graphed, eager, rtol=1e-4, atol=1e-5)
        assert len(graphed_grads) == len(eager_grads) > 0
        for a, b in zip(graphed_grads, eager_grads, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-5)


def test_graphed_head_losses_equal_eager_losses_step_after_step():
    """The head losses replayed as a CUDA graph: eager values and gradients, with the loss ramp changing every
    step (an input of the graph, not a constant in it) and with the jitter term on some steps only."""
    from ernerf_ns.fields.cuda_graphs import graphed, mark_step
    from ernerf_ns.models.ernerf import ERNeRFModelConfig
    from ernerf_ns.models.losses import head_losses

    config = ERNeRFModelConfig()
    g = torch.Generator(device="cuda").manual_seed(0)
    rays = 4096

    def inputs(smoothness: bool):
        outputs = {
            "rgb": torch.rand(rays, 3, device="cuda", generator=g),
            "uncertainty": torch.rand(rays, 1, device="cuda", generator=g),
            "accumulation": torch.rand(rays, 1, device="cuda", generator=g),
            "audio_attention": torch.rand(rays, 1, device="cuda", generator=g),
            "eye_attention": torch.rand(rays, 1, device="cuda", generator=g),
        }
        if smoothness:
            outputs["smoothness"] = torch.rand((), device="cuda", generator=g)
        for value in outputs.values():
            value.requires_grad_(True)
        image = torch.rand(rays, 3, device="cuda", generator=g)
        face = (torch.rand(rays, device="cuda", generator=g) > 0.5).float()
        return outputs, image, face

    for step, frac in enumerate((0.1, 0.35, 0.8, 1.0)):
        outputs, image, face = inputs(smoothness=step % 2 == 1)
        eager = head_losses(outputs, image, face, frac, config)
        eager_grads = torch.autograd.grad(sum(eager.values()), list(outputs.values()))
        mark_step()
        frac_tensor = torch.tensor(frac, device="cuda")
        replayed = graphed(head_losses)(outputs, image, face, frac_tensor, config)
        replayed_grads = torch.autograd.grad(sum(replayed.values()), list(outputs.values()))
        assert replayed.keys() == eager.keys()
        for key in eager:
            torch.testing.assert_close(replayed[key], eager[key], rtol=1e-4, atol=1e-6)
        for a, b in zip(replayed_grads, eager_grads, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-7)


def test_graphed_training_runs_every_stage_as_well_as_eager(tmp_path):
    """`graph_networks` through a whole schedule (head, lips, torso) and a render: the held-out head PSNR of
    the eager run, within 1 dB, from the same seed."""
    make_synthetic_portrait(tmp_path / "data", frames=33, size=64, write_video=False)
    scores = {}
    for graphs in (False, True):
        config = copy.deepcopy(ernerf_tiny_method.config)
        config.pipeline.model.stages = StageSchedule(head_steps=300, lips_steps=50, torso_steps=200)
        config.pipeline.model.hash_implementation = "triton"
        config.pipeline.model.graph_networks = graphs
        torch.manual_seed(0)
        trainer = train(config, tmp_path / "data", tmp_path / f"runs{graphs}", max_steps=550, device="cuda")
        trainer.pipeline.eval()
        scores[graphs] = trainer.pipeline.get_average_eval_image_metrics()["head_psnr"]
    assert scores[False] > 24.0 and abs(scores[True] - scores[False]) < 1.0, scores
