"""The pixel learner's options: a frozen pretrained image backbone loaded from a local safetensors
file, bfloat16 autocast of the update (on the CPU here), and the CNN's input pooling."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from export.graph import NormalisationFusedImageEncoder, fuse_image_normalisation
from policy.config import ImageEncoderConfig, QChunkSACConfig
from policy.encoder import ImageBackbone, ImageEncoder
from policy.learner import QChunkSACLearner
from policy.qchunk_sac import QChunkSACPolicy
from policy.replay import ChunkReplayBuffer

torch.set_num_threads(1)
G = 0.9
SHAPE = (24, 24, 3)
RESNET = {"backbone": "resnet", "channels": 4, "num_layers": 2, "latent_dim": 8}


def image_batch(seed: int = 0):
    rng = np.random.default_rng(seed)
    buf = ChunkReplayBuffer(64, 2, 2, {"front": SHAPE, "wrist": SHAPE}, seed=seed)
    for t in range(12):
        f = {"observation.state": np.array([t, -t], np.float32),
             **{f"observation.images.{c}": rng.integers(0, 256, SHAPE, dtype=np.uint8) for c in ("front", "wrist")}}
        buf.add(f, [0.1 * t, -0.1 * t], float(t % 3 == 0), False, t == 11, next_observation=f)
    return buf.sample(8, 2, 2, G)


def make_policy(image_encoder: dict, **kw) -> QChunkSACPolicy:
    cfg = QChunkSACConfig.from_dict({"act_chunk_size": 2, "num_critics": 2, "critic_hidden_dims": [16],
                                     "actor_hidden_dims": [16], "use_images": True, "discount": G,
                                     "image_encoder": image_encoder, **kw})
    pol = QChunkSACPolicy(cfg.with_features(2, ["a", "b"], {"front": SHAPE, "wrist": SHAPE}, 10.0))
    pol.normalizer.fit(None, np.array([-5.0, -5.0]), np.array([5.0, 5.0]))
    return pol


@pytest.fixture
def pretrained_weights(tmp_path):
    """A locally made backbone's weights, as a user would save a pretrained encoder."""
    torch.manual_seed(123)
    backbone = ImageBackbone(ImageEncoderConfig(**{k: v for k, v in RESNET.items() if k != "backbone"}))
    path = tmp_path / "encoder.safetensors"
    save_file({k: v.contiguous() for k, v in backbone.state_dict().items()}, str(path))
    return path, backbone.state_dict()


def test_pretrained_backbone_is_loaded_into_every_camera_and_stays_frozen_while_the_head_trains(pretrained_weights):
    path, weights = pretrained_weights
    torch.manual_seed(0)
    pol = make_policy({**RESNET, "pretrained_path": str(path), "freeze_backbone": True})
    pol.encoder.load_pretrained()
    for cam in ("front", "wrist"):
        assert all(torch.equal(v, weights[k]) for k, v in pol.encoder.cameras[cam].backbone.state_dict().items())
    lrn = QChunkSACLearner(pol, torch.Generator().manual_seed(0))
    head_before = pol.encoder.cameras["front"].head[0].weight.detach().clone()
    for seed in range(3):
        metrics = lrn.update([image_batch(seed)])
    assert all(torch.isfinite(v) for v in metrics.values())
    for cam in ("front", "wrist"):
        assert all(torch.equal(v, weights[k]) for k, v in pol.encoder.cameras[cam].backbone.state_dict().items())
    assert not torch.equal(pol.encoder.cameras["front"].head[0].weight, head_before)  # the head learns
    optimised = {id(p) for group in lrn.optimizers["critic"].param_groups for p in group["params"]}
    assert not any(id(p) in optimised for p in pol.encoder.cameras["front"].backbone.parameters())


def test_an_unfrozen_resnet_backbone_trains_through_the_critic_loss():
    torch.manual_seed(0)
    pol = make_policy(RESNET)
    lrn = QChunkSACLearner(pol, torch.Generator().manual_seed(0))
    stem = pol.encoder.cameras["wrist"].backbone.stem[0].weight
    before = stem.detach().clone()
    lrn.update([image_batch()])
    assert not torch.equal(stem, before)


def test_a_missing_pretrained_file_says_that_nothing_is_downloaded(tmp_path):
    pol = make_policy({**RESNET, "pretrained_path": str(tmp_path / "none.safetensors"), "freeze_backbone": True})
    with pytest.raises(FileNotFoundError, match="nothing is downloaded"):
        pol.encoder.load_pretrained()


def test_weights_of_another_backbone_size_are_refused(pretrained_weights):
    path, _ = pretrained_weights
    pol = make_policy({**RESNET, "channels": 8, "pretrained_path": str(path)})
    with pytest.raises(ValueError, match="does not fit"):
        pol.encoder.load_pretrained()


def test_freezing_a_backbone_without_pretrained_weights_is_refused():
    with pytest.raises(ValueError, match="pretrained_path"):
        QChunkSACConfig.from_dict({"image_encoder": {**RESNET, "freeze_backbone": True}})


def test_bf16_autocast_update_on_the_cpu_gives_finite_losses_close_to_float32():
    batch = image_batch()
    results = {}
    for bf16 in (False, True):
        torch.manual_seed(0)
        pol = make_policy({"channels": 4, "num_layers": 2, "latent_dim": 8}, bf16=bf16)
        lrn = QChunkSACLearner(pol, torch.Generator().manual_seed(0))
        results[bf16] = lrn.update([batch])
    assert all(torch.isfinite(v) for v in results[True].values())
    assert results[True]["loss_critic"].dtype == torch.float32
    for key in ("loss_critic", "loss_actor", "q_mean"):
        assert results[True][key].item() == pytest.approx(results[False][key].item(), rel=0.1, abs=0.05), key
    assert results[True]["loss_critic"].item() != results[False]["loss_critic"].item()  # bf16 really ran


def test_a_pooled_encoder_takes_full_resolution_frames_and_convolves_their_average():
    torch.manual_seed(0)
    pooled = ImageEncoder(SHAPE, ImageEncoderConfig(channels=4, num_layers=2, latent_dim=8, pool=2))
    small = ImageEncoder((12, 12, 3), ImageEncoderConfig(channels=4, num_layers=2, latent_dim=8))
    small.load_state_dict(pooled.state_dict())          # same weights: the convs are sized for 12x12
    images = torch.randint(0, 256, (3, *SHAPE), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    x = torch.nn.functional.avg_pool2d(images.permute(0, 3, 1, 2).float() / 255.0 - 0.5, 2)
    expected = small.head(small.convs(x).flatten(1))
    torch.testing.assert_close(pooled(images), expected)


def test_folding_the_image_scaling_into_the_first_conv_keeps_the_pool():
    torch.manual_seed(0)
    encoder = ImageEncoder(SHAPE, ImageEncoderConfig(channels=4, num_layers=2, latent_dim=8, pool=2)).eval()
    fused = fuse_image_normalisation(encoder, SHAPE, tolerance=1e-5)
    assert isinstance(fused, NormalisationFusedImageEncoder)   # exact, so fused (not the unfused fallback)
    images = torch.randint(0, 256, (4, *SHAPE), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(fused(images), encoder(images), atol=1e-5, rtol=1e-5)


def test_a_pool_the_images_cannot_take_is_refused_with_the_sizes():
    with pytest.raises(ValueError, match=r"24x24 \(pooled by 8: 3x3\).*image_encoder.pool"):
        ImageEncoder(SHAPE, ImageEncoderConfig(num_layers=2, pool=8))
    with pytest.raises(ValueError, match="pool must be >= 1"):
        ImageEncoder(SHAPE, ImageEncoderConfig(pool=0))


def test_bc_trains_encoder_adds_a_gradient_to_the_encoder_and_changes_no_other():
    batch = image_batch()
    grads = {}
    for on in (False, True):
        torch.manual_seed(0)
        pol = make_policy({"channels": 4, "num_layers": 2, "latent_dim": 8}, bc_trains_encoder=on, bc_weight=1.0)
        lrn = QChunkSACLearner(pol, torch.Generator().manual_seed(0))
        lrn.update([batch])
        grads[on] = {n: p.grad.clone() for n, p in lrn.named_parameters() if p.grad is not None}
    assert grads[False].keys() == grads[True].keys()
    encoder = [n for n in grads[True] if ".encoder.cameras." in n]
    assert encoder and all(not torch.allclose(grads[True][n], grads[False][n]) for n in encoder)
    for n in set(grads[True]) - set(encoder):      # the critic's and the actor's own gradients are unchanged
        torch.testing.assert_close(grads[True][n], grads[False][n], msg=n)


def test_bc_trains_encoder_leaves_a_state_encoder_to_the_critic():
    batch = image_batch()
    grads = {}
    for on in (False, True):
        torch.manual_seed(0)
        pol = make_policy({"channels": 4, "num_layers": 2, "latent_dim": 8}, bc_trains_encoder=on, bc_weight=1.0,
                          state_encoder_dim=8)
        lrn = QChunkSACLearner(pol, torch.Generator().manual_seed(0))
        lrn.update([batch])
        grads[on] = {n: p.grad.clone() for n, p in lrn.named_parameters() if ".encoder.state_net." in n}
    assert grads[True]
    for n in grads[True]:
        torch.testing.assert_close(grads[True][n], grads[False][n], msg=n)


CNN = {"channels": 4, "num_layers": 2, "latent_dim": 8}


def test_the_target_encoder_follows_the_online_encoder_at_encoder_tau():
    torch.manual_seed(0)
    pol = make_policy(CNN, target_encoder=True, encoder_tau=0.25)
    lrn = QChunkSACLearner(pol, torch.Generator().manual_seed(0))
    before = {k: v.clone() for k, v in pol.encoder.state_dict().items()}
    assert all(torch.equal(v, before[k]) for k, v in lrn.encoder_target.state_dict().items())
    lrn.update([image_batch()])
    # Polyak towards the encoder the losses saw (before the optimiser step): the copy did not move, and
    # the online encoder stepped away from it
    for k, v in lrn.encoder_target.state_dict().items():
        torch.testing.assert_close(v, before[k], msg=k)
    lrn.update([image_batch(1)])
    moved = [k for k, v in lrn.encoder_target.state_dict().items() if not torch.equal(v, before[k])]
    assert moved and not any(p.requires_grad for p in lrn.encoder_target.parameters())
    online = pol.encoder.state_dict()
    assert any(not torch.allclose(lrn.encoder_target.state_dict()[k], online[k]) for k in moved)


def test_the_td_target_reads_the_target_encoder_not_the_live_one():
    torch.manual_seed(0)
    pol = make_policy(CNN, target_encoder=True)
    lrn = QChunkSACLearner(pol, torch.Generator().manual_seed(0))
    batch = image_batch()
    with torch.no_grad():
        for p in lrn.encoder_target.parameters():
            p.add_(0.5)

    def target() -> torch.Tensor:
        lrn.generator.manual_seed(3)
        return lrn.td_target(batch, torch.tensor(0.1))

    with_copy = target()
    lrn.encoder_target.load_state_dict(pol.encoder.state_dict())
    assert not torch.allclose(with_copy, target())


def test_a_state_policy_without_an_encoder_to_train_keeps_no_target_encoder():
    cfg = QChunkSACConfig.from_dict({"act_chunk_size": 2, "critic_hidden_dims": [16], "actor_hidden_dims": [16],
                                     "target_encoder": True})
    pol = QChunkSACPolicy(cfg.with_features(2, ["a", "b"], {}, 10.0))
    assert QChunkSACLearner(pol).encoder_target is None


def test_the_target_encoder_is_saved_and_restored_with_the_training_state():
    torch.manual_seed(0)
    pol = make_policy(CNN, target_encoder=True)
    lrn = QChunkSACLearner(pol, torch.Generator().manual_seed(0))
    for seed in range(3):
        lrn.update([image_batch(seed)])
    state = lrn.training_state()
    torch.manual_seed(1)
    fresh = QChunkSACLearner(make_policy(CNN, target_encoder=True))
    fresh.load_training_state(state)
    for k, v in lrn.encoder_target.state_dict().items():
        torch.testing.assert_close(fresh.encoder_target.state_dict()[k], v, msg=k)


def test_without_critic_trains_encoder_the_cameras_learn_from_the_bc_term_alone():
    batch = image_batch()
    grads = {}
    for bc, critic in ((True, True), (False, True), (True, False)):
        torch.manual_seed(0)
        pol = make_policy(CNN, bc_trains_encoder=bc, critic_trains_encoder=critic, bc_weight=1.0)
        lrn = QChunkSACLearner(pol, torch.Generator().manual_seed(0))
        lrn.update([batch])
        grads[bc, critic] = {n: p.grad.clone() for n, p in lrn.named_parameters() if p.grad is not None}
    both, critic_only, bc_only = grads[True, True], grads[False, True], grads[True, False]
    cams = [n for n in both if ".encoder.cameras." in n]
    assert cams
    for n in cams:   # the encoder's gradient is the sum of the two losses' parts: drop the critic's, BC's is left
        torch.testing.assert_close(bc_only[n], both[n] - critic_only[n], msg=n, atol=1e-6, rtol=1e-4)
    for n in set(both) - set(cams):   # the critic and the actor see the same values either way
        torch.testing.assert_close(bc_only[n], both[n], msg=n)


def test_critic_trains_encoder_off_without_bc_to_train_the_cameras_is_refused():
    with pytest.raises(ValueError, match="critic_trains_encoder=false"):
        QChunkSACConfig(critic_trains_encoder=False, bc_trains_encoder=False)
    with pytest.raises(ValueError, match="critic_trains_encoder=false"):
        QChunkSACConfig(critic_trains_encoder=False, bc_weight=0.0)


def _two_backward_passes(learner, critic_loss, actor_loss, feat):
    """The definition: each loss backward through the whole graph to its own parameters."""
    critic_loss.backward(inputs=learner._critic_loss_inputs, retain_graph=True)
    actor_loss.backward(inputs=learner._actor_loss_inputs)


@pytest.mark.parametrize("options", [{}, {"state_encoder_dim": 8}, {"critic_trains_encoder": False}],
                         ids=["default", "state_encoder", "critic_does_not_train_cameras"])
def test_one_backward_pass_through_the_encoder_gives_the_gradients_of_two(options, monkeypatch):
    batch = image_batch()
    grads = {}
    for name in ("one pass", "two passes"):
        torch.manual_seed(0)
        lrn = QChunkSACLearner(make_policy(CNN, bc_weight=1.0, **options), torch.Generator().manual_seed(0))
        if name == "two passes":
            monkeypatch.setattr(lrn, "_backward_through_the_encoder_once", partial(_two_backward_passes, lrn))
        lrn.update([batch])
        grads[name] = {n: p.grad.clone() for n, p in lrn.named_parameters() if p.grad is not None}
    assert grads["one pass"].keys() == grads["two passes"].keys()
    assert any(".encoder.cameras." in n for n in grads["one pass"])
    for n, g in grads["two passes"].items():
        torch.testing.assert_close(grads["one pass"][n], g, msg=n, atol=1e-6, rtol=1e-5)
