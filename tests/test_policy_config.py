"""QChunkSACConfig: the seed document's JSON (the first_action preset), presets, resolved defaults, clear errors."""

from __future__ import annotations

import json
import logging
import math

import pytest

from policy.config import FIRST_ACTION_JSON, QChunkSACConfig, preset

# The seed document's config block, verbatim.
SEED_DOCUMENT_TEXT = """{
    "use_act_actor": true,
    "use_sequence_act_actor": true,
    "enable_q_chunking": true,
    "q_chunking_strategy": "standard",
    "act_chunk_size": 8,
    "obs_history_length": 5,
    "q_chunking_horizon": 3,
    "q_chunking_decay": 0.9,
    "q_chunking_entropy_scaling": "linear"
}"""


def test_the_seed_documents_json_loads_as_written_and_means_the_first_action_critic(tmp_path):
    path = tmp_path / "sac_q_chunking.json"
    path.write_text(SEED_DOCUMENT_TEXT)
    cfg = QChunkSACConfig.load(path)
    assert cfg.use_act_actor and cfg.use_sequence_act_actor and cfg.enable_q_chunking
    assert cfg.chunk_size == 8 and cfg.obs_history_length == 5
    assert cfg.critic_mode == "first_action" and cfg.q_chunking_strategy == "standard"
    assert cfg.td_horizon == 8                  # n-step TD over the chunk, as the seed document
    assert cfg.critic_aggregation == "min" and cfg.backup_entropy  # LeRobot SAC's target, as the seed document
    assert json.loads(SEED_DOCUMENT_TEXT) == FIRST_ACTION_JSON


def test_the_first_action_preset_equals_the_seed_documents_json():
    assert preset("first_action") == QChunkSACConfig.from_dict(json.loads(SEED_DOCUMENT_TEXT))


def test_the_former_preset_name_seed_still_works_with_a_one_line_notice(caplog):
    with caplog.at_level(logging.WARNING, logger="policy.config"):
        assert preset("seed") == preset("first_action")
    notices = [r.getMessage() for r in caplog.records]
    assert notices == ["preset 'seed' is now named 'first_action' (the old name will go); using 'first_action'"]


def test_qc_preset_has_the_papers_numbers():
    cfg = preset("qc")
    assert (cfg.critic_mode, cfg.chunk_size, cfg.num_critics, cfg.critic_hidden_dims) == ("chunked", 5, 10, [512] * 4)
    assert (cfg.critic_aggregation, cfg.backup_entropy, cfg.batch_size, cfg.utd_ratio) == ("mean", False, 256, 1)
    assert (cfg.discount, cfg.tau, cfg.bc_weight, cfg.offline_ratio) == (0.99, 0.005, 0.01, 0.5)


def test_disabling_q_chunking_is_plain_sac_with_one_action_chunks():
    cfg = QChunkSACConfig.from_dict({**FIRST_ACTION_JSON, "enable_q_chunking": False})
    assert cfg.chunk_size == 1 and cfg.td_horizon == 1
    assert preset("sac").chunk_size == 1


def test_unknown_key_is_an_error_naming_it():
    with pytest.raises(ValueError, match="q_chunking_stratgy"):
        QChunkSACConfig.from_dict({**FIRST_ACTION_JSON, "q_chunking_stratgy": "standard"})


def test_a_first_action_strategy_with_the_chunked_critic_is_an_error_that_says_what_to_set():
    with pytest.raises(ValueError, match="critic_mode='first_action'"):
        QChunkSACConfig(critic_mode="chunked", q_chunking_strategy="conservative")


def test_act_actor_without_sequence_output_cannot_chunk():
    with pytest.raises(ValueError, match="use_sequence_act_actor"):
        QChunkSACConfig.from_dict({**FIRST_ACTION_JSON, "use_sequence_act_actor": False})


def test_unknown_entropy_scaling_is_an_error_listing_the_choices():
    with pytest.raises(ValueError, match="linear"):
        QChunkSACConfig(q_chunking_entropy_scaling="quadratic")


@pytest.mark.parametrize("scaling, expected", [("linear", -0.5 * 4 * 3), ("sqrt", -0.5 * 2 * 3), ("none", -0.5 * 3)])
def test_target_entropy_scales_with_the_chunk(scaling, expected):
    cfg = QChunkSACConfig(act_chunk_size=4, q_chunking_entropy_scaling=scaling)
    assert cfg.target_entropy(action_dim=3) == pytest.approx(expected)


def test_sqrt_scaling_uses_the_square_root_of_the_chunk_length():
    cfg = QChunkSACConfig(act_chunk_size=5, q_chunking_entropy_scaling="sqrt", entropy_coefficient=1.0)
    assert cfg.target_entropy(action_dim=6) == pytest.approx(-math.sqrt(5) * 6)


def test_config_round_trips_through_json(tmp_path):
    cfg = preset("first_action", q_chunking_strategy="temporal_weighted").with_features(7, ["a", "b"], {}, 30.0)
    cfg.save(tmp_path / "config.json")
    assert QChunkSACConfig.load(tmp_path / "config.json") == cfg


def test_n_step_follows_the_chunk_length_unless_set():
    assert QChunkSACConfig(q_chunking_strategy="standard", act_chunk_size=6).td_horizon == 6
    assert QChunkSACConfig(q_chunking_strategy="standard", act_chunk_size=6, n_step=3).td_horizon == 3
    assert QChunkSACConfig(critic_mode="chunked", act_chunk_size=6, n_step=3).td_horizon == 6
