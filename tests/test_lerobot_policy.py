"""A chunkbot checkpoint is a LeRobot policy: LeRobot's own loaders (found through the
`lerobot_policy_chunkbot` plugin that ./setup.sh installs) read it as the type `chunkbot_qc_sac` and
act exactly as chunkbot's loader; a Hub repo id loads from the Hugging Face cache, and offline says in
one line what to do; push_to_hub writes what LeRobot's does, here into a file-based stand-in of the Hub."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from huggingface_hub import CommitInfo, HfApi, RepoUrl, constants
from huggingface_hub.repocard import RepoCard
from huggingface_hub.utils import filter_repo_objects
from lerobot.configs.policies import PreTrainedConfig
from lerobot.datasets.dataset_metadata import LeRobotDatasetMetadata
from lerobot.policies.factory import get_policy_class, make_policy
from lerobot.utils.import_utils import register_third_party_plugins

from policy.config import POLICY_TYPE
from policy.hub import PolicyNotFoundError
from policy.qchunk_sac import QChunkSACPolicy
from robot.history import ObservationHistory
from testing.sample_policies import make_policy as make_sample_policy
from testing.sample_policies import save_training_checkpoint

REPO = Path(__file__).resolve().parents[1]
STATE_NAMES = [f"state_{i}" for i in range(8)]
ACTION_NAMES = [f"joint_{i}" for i in range(6)]
FEATURES = (STATE_NAMES, ACTION_NAMES, -np.full(6, 90.0), np.full(6, 90.0))  # no MuJoCo needed


@pytest.fixture(scope="module", autouse=True)
def lerobot_plugins() -> None:
    register_third_party_plugins()  # what LeRobot's tools do at start-up


def checkpoint(tmp_path: Path, kind: str = "mlp") -> Path:
    """A real training checkpoint (tools.train's layout) of a small policy; returns its pretrained_model."""
    policy = make_sample_policy(kind, features=FEATURES, seed=3)
    return save_training_checkpoint(policy, tmp_path / "run") / "pretrained_model"


def observations(n: int = 4, seed: int = 0) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [{"observation.state": rng.normal(0, 10, len(STATE_NAMES)).astype(np.float32)} for _ in range(n)]


def chunks(policy: Any, n: int = 4) -> np.ndarray:
    """The stateless chunks of an episode of `observations(n)`, from a history the caller keeps."""
    history, out = ObservationHistory(policy.history_length), []
    for obs in observations(n):
        history.push(obs)
        out.append(policy.predict_chunk(history.frame()))
    return np.stack(out)


def test_lerobots_plugin_discovery_imports_the_installed_chunkbot_policy_distribution():
    register_third_party_plugins()
    assert "lerobot_policy_chunkbot" in sys.modules
    assert POLICY_TYPE in PreTrainedConfig.get_known_choices()


def test_lerobots_pretrained_config_loads_a_chunkbot_checkpoint_config_as_the_chunkbot_type(tmp_path):
    pretrained = checkpoint(tmp_path, "act")
    saved = json.loads((pretrained / "config.json").read_text())
    cfg = PreTrainedConfig.from_pretrained(pretrained)
    assert saved["type"] == cfg.type == POLICY_TYPE
    assert cfg.to_dict() == {k: v for k, v in saved.items() if k != "type"}
    assert cfg.input_features["observation.state"].shape == (len(STATE_NAMES),)
    assert cfg.output_features["action"].shape == (len(ACTION_NAMES),)
    assert cfg.n_obs_steps == cfg.obs_history_length == 3


@pytest.mark.parametrize("kind", ["mlp", "act"])
def test_lerobots_policy_class_loads_the_weights_and_acts_as_chunkbots_loader(tmp_path, kind):
    pretrained = checkpoint(tmp_path, kind)
    policy_cls = get_policy_class(POLICY_TYPE)
    assert issubclass(policy_cls, QChunkSACPolicy)
    lerobot_policy = policy_cls.from_pretrained(pretrained)
    chunkbot_policy = QChunkSACPolicy.from_pretrained(pretrained)
    torch.testing.assert_close(lerobot_policy.state_dict(), chunkbot_policy.state_dict(), check_device=False)
    np.testing.assert_allclose(chunks(lerobot_policy), chunks(chunkbot_policy), atol=1e-5)


def test_lerobots_per_step_api_keeps_the_episode_history_in_the_adapter_and_replays_each_chunk(tmp_path):
    policy = get_policy_class(POLICY_TYPE).from_pretrained(checkpoint(tmp_path, "act"))
    n, h = 7, policy.chunk_size   # one chunk played out (h = 5 steps), then part of the next
    obs, want = observations(n), chunks(policy, n)
    policy.reset()
    got = np.stack([policy.predict_action_chunk(o).numpy() for o in obs])
    np.testing.assert_allclose(got, want, atol=1e-6)   # each call's frame went into the adapter's history
    policy.reset()
    actions = np.stack([policy.select_action(o).numpy() for o in obs])
    np.testing.assert_allclose(actions[:h], want[0], atol=1e-6)     # the first chunk, played out
    np.testing.assert_allclose(actions[h:], want[h][: n - h], atol=1e-6)  # then a new one from that step


def test_lerobots_make_policy_builds_the_chunkbot_policy_from_a_checkpoint_and_dataset_metadata(tmp_path):
    pretrained = checkpoint(tmp_path)
    meta = LeRobotDatasetMetadata.create(
        "local/chunkbot_meta", fps=30, root=tmp_path / "dataset", use_videos=False, robot_type="sim_so101",
        features={"observation.state": {"dtype": "float32", "shape": (len(STATE_NAMES),), "names": STATE_NAMES},
                  "action": {"dtype": "float32", "shape": (len(ACTION_NAMES),), "names": ACTION_NAMES}})
    cfg = PreTrainedConfig.from_pretrained(pretrained)
    cfg.pretrained_path = pretrained
    policy = make_policy(cfg, ds_meta=meta)
    assert type(policy) is get_policy_class(POLICY_TYPE)
    np.testing.assert_allclose(chunks(policy), chunks(QChunkSACPolicy.from_pretrained(pretrained)), atol=1e-5)


def test_lerobot_features_of_another_size_than_the_checkpoints_are_refused_naming_both(tmp_path):
    from lerobot.configs.types import FeatureType, PolicyFeature

    cfg = PreTrainedConfig.from_pretrained(checkpoint(tmp_path))
    cfg.validate_features()
    cfg.output_features = {"action": PolicyFeature(FeatureType.ACTION, (7,))}
    with pytest.raises(ValueError, match=r"action has shape \(7,\); this chunkbot policy drives 6 joints"):
        cfg.validate_features()


def test_a_checkpoint_saved_before_the_type_field_still_loads_in_chunkbots_loader(tmp_path):
    pretrained = checkpoint(tmp_path)
    expected = chunks(QChunkSACPolicy.from_pretrained(pretrained))
    config = json.loads((pretrained / "config.json").read_text())
    del config["type"]
    (pretrained / "config.json").write_text(json.dumps(config))
    np.testing.assert_array_equal(chunks(QChunkSACPolicy.from_pretrained(pretrained)), expected)


def test_a_config_of_another_lerobot_policy_type_is_refused_in_one_line(tmp_path):
    pretrained = checkpoint(tmp_path)
    config = json.loads((pretrained / "config.json").read_text())
    (pretrained / "config.json").write_text(json.dumps({**config, "type": "act"}))
    with pytest.raises(ValueError, match=r"LeRobot 'act' policy, not chunkbot's") as error:
        QChunkSACPolicy.from_pretrained(pretrained)
    assert "\n" not in str(error.value)


@pytest.fixture()
def hf_cache(tmp_path, monkeypatch) -> Path:
    """An empty Hugging Face cache of this test's own, with the Hub switched off (HF_HUB_OFFLINE=1)."""
    cache = tmp_path / "hf_cache"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return cache


def test_a_hub_repo_id_not_in_the_cache_offline_is_one_line_that_says_what_to_do(hf_cache):
    with pytest.raises(PolicyNotFoundError) as error:
        QChunkSACPolicy.from_pretrained("nobody/not-cached")
    message = str(error.value)
    assert "\n" not in message
    assert "nobody/not-cached" in message and "HF_HUB_OFFLINE=1" in message and "download it once online" in message


def test_run_policy_on_an_uncached_hub_repo_offline_ends_with_one_line_and_no_traceback(tmp_path):
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf_home"), MUJOCO_GL="egl")
    out = subprocess.run([sys.executable, "-m", "tools.run_policy", "--robot.type=sim_so101",
                          "--policy.path=nobody/not-cached", "--episodes=1"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "Traceback" not in out.stderr
    errors = [line for line in out.stderr.splitlines() if "nobody/not-cached" in line]
    assert len(errors) == 1 and "HF_HUB_OFFLINE=1" in errors[0], out.stderr


class LocalHub:
    """A file-based stand-in for the Hugging Face Hub: HfApi's create_repo and upload_folder write to
    <root>/<repo_id>/ (upload_folder with the Hub's own pattern filter), and a model card's metadata is
    parsed locally where the Hub's validate-yaml endpoint would check it. Nothing leaves the machine."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root, self.commits = root, []
        hub = self

        def create_repo(api: HfApi, repo_id: str, *, private: bool | None = None, exist_ok: bool = False,
                        **_: Any) -> RepoUrl:
            folder = hub.root / repo_id
            if folder.exists() and not exist_ok:
                raise FileExistsError(repo_id)
            folder.mkdir(parents=True, exist_ok=True)
            return RepoUrl(f"https://huggingface.co/{repo_id}")

        def upload_folder(api: HfApi, *, repo_id: str, folder_path: str | Path, commit_message: str | None = None,
                          allow_patterns: list[str] | None = None, ignore_patterns: list[str] | None = None,
                          **_: Any) -> CommitInfo:
            folder = Path(folder_path)
            files = [p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()]
            for rel in filter_repo_objects(files, allow_patterns=allow_patterns, ignore_patterns=ignore_patterns):
                (hub.root / repo_id / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(folder / rel, hub.root / repo_id / rel)
            hub.commits.append(commit_message)
            oid = f"{len(hub.commits):040x}"
            return CommitInfo(commit_url=f"https://huggingface.co/{repo_id}/commit/{oid}",
                              commit_message=commit_message or "", commit_description="", oid=oid)

        def validate(card: RepoCard, repo_type: str | None = None) -> None:
            front = str(card).split("---")[1]
            assert isinstance(yaml.safe_load(front), dict)

        monkeypatch.setattr(HfApi, "create_repo", create_repo)
        monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
        monkeypatch.setattr(RepoCard, "validate", validate)


def test_push_to_hub_writes_the_config_weights_and_lerobots_model_card_to_the_stand_in(tmp_path, monkeypatch):
    hub = LocalHub(tmp_path / "hub", monkeypatch)
    policy = QChunkSACPolicy.from_pretrained(checkpoint(tmp_path))
    url = policy.push_to_hub("someone/chunkbot-lift", dataset_repo_id="someone/lift-demos",
                             train_config={"env_name": "chunkbot/SO101Lift-v0"})
    repo = tmp_path / "hub" / "someone" / "chunkbot-lift"
    assert url.startswith("https://huggingface.co/someone/chunkbot-lift/commit/")
    assert sorted(p.name for p in repo.iterdir()) == ["README.md", "config.json", "model.safetensors",
                                                      "train_config.json"]
    assert hub.commits == ["Upload policy weights, train config and readme"]
    assert json.loads((repo / "config.json").read_text())["type"] == POLICY_TYPE
    card = RepoCard.load(repo / "README.md")
    assert card.data.library_name == "lerobot" and card.data.pipeline_tag == "robotics"
    assert {"robotics", "lerobot", POLICY_TYPE} <= set(card.data.tags)
    assert card.data.datasets == "someone/lift-demos"
    assert f"This is a **{POLICY_TYPE}** policy" in card.text  # LeRobot's template, as for any policy type


def test_a_pushed_policy_loads_by_repo_id_from_the_hugging_face_cache_offline(tmp_path, monkeypatch, hf_cache):
    LocalHub(tmp_path / "hub", monkeypatch)
    pretrained = checkpoint(tmp_path)
    policy = QChunkSACPolicy.from_pretrained(pretrained)
    policy.push_to_hub("someone/chunkbot-lift")
    # the cache as huggingface_hub lays out a download: refs/main -> snapshots/<commit>/<files>
    cached = hf_cache / "models--someone--chunkbot-lift"
    commit = "0" * 40
    shutil.copytree(tmp_path / "hub" / "someone" / "chunkbot-lift", cached / "snapshots" / commit)
    (cached / "refs").mkdir()
    (cached / "refs" / "main").write_text(commit)
    loaded = get_policy_class(POLICY_TYPE).from_pretrained("someone/chunkbot-lift")
    np.testing.assert_allclose(chunks(loaded), chunks(policy), atol=1e-5)
    np.testing.assert_array_equal(chunks(QChunkSACPolicy.from_pretrained("someone/chunkbot-lift")), chunks(policy))
