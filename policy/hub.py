"""Where a saved policy lives: a local folder, or a Hugging Face Hub repository (LeRobot's `--policy.path`).

`pretrained_dir(name_or_path)` returns the folder holding config.json + model.safetensors. A path that
exists is a local policy: a `pretrained_model` folder, a training checkpoint holding one, or a
`tools.train` output dir (its last checkpoint). Anything else that reads as `owner/name` is a Hub repo
id, fetched with huggingface_hub's `snapshot_download` into its cache (offline, HF_HUB_OFFLINE=1, the
cache alone answers). Every way that can fail is one `PolicyNotFoundError` line that says what to do.
huggingface_hub is imported only for a repo id, so local loading needs no network stack.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
# what a policy repo holds that loading needs (README.md, train_config.json stay on the Hub)
POLICY_FILES = [CONFIG_NAME, WEIGHTS_NAME]
# huggingface_hub's rule for repo ids: owner/name of letters, digits, '-', '_', '.'
REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")


class PolicyNotFoundError(FileNotFoundError):
    """No policy where the user pointed: a missing folder, a Hub repo that is absent, private, or not
    cached while offline. A FileNotFoundError, so the tools report it in one line."""


def local_pretrained_dir(path: str | Path) -> Path | None:
    """The folder with config.json + model.safetensors at `path`, in its pretrained_model/, or in its
    checkpoints/last/pretrained_model/; None if there is none."""
    path = Path(path)
    for candidate in (path, path / "pretrained_model", path / "checkpoints" / "last" / "pretrained_model"):
        if (candidate / CONFIG_NAME).is_file() and (candidate / WEIGHTS_NAME).is_file():
            return candidate
    return None


def is_repo_id(name: str | Path) -> bool:
    """True for a string that can only be a Hub repo id: `owner/name` and no such local path."""
    text = str(name)
    return bool(REPO_ID.fullmatch(text)) and not Path(text).exists()


def pretrained_dir(name_or_path: str | Path, revision: str | None = None, **download: Any) -> Path:
    """The local folder of a policy given as a path or a Hub repo id (downloaded into the HF cache;
    `download`: snapshot_download's token, cache_dir, force_download, local_files_only)."""
    if Path(name_or_path).exists():
        found = local_pretrained_dir(name_or_path)
        if found is None:
            raise PolicyNotFoundError(
                f"no {CONFIG_NAME} + {WEIGHTS_NAME} in {name_or_path} (nor in its pretrained_model/ or "
                "checkpoints/last/pretrained_model/): give a tools.train output dir, a checkpoint or a "
                "pretrained_model dir")
        return found
    if not is_repo_id(name_or_path):
        raise PolicyNotFoundError(
            f"{name_or_path} does not exist: give a tools.train output dir, a checkpoint, a pretrained_model "
            "dir, or a Hugging Face Hub repo id such as `owner/name`")
    return _download(str(name_or_path), revision, download)


def _download(repo_id: str, revision: str | None, options: dict[str, Any]) -> Path:
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    at = f"{repo_id}@{revision}" if revision else repo_id
    try:
        folder = Path(snapshot_download(repo_id, revision=revision, allow_patterns=POLICY_FILES, **options))
    except LocalEntryNotFoundError:
        if constants.HF_HUB_OFFLINE or options.get("local_files_only"):
            raise PolicyNotFoundError(
                f"{at} is not in the local Hugging Face cache ({constants.HF_HUB_CACHE}) and the Hub is off "
                "(HF_HUB_OFFLINE=1, chunkbot's tools' default): download it once online with HF_HUB_OFFLINE=0, "
                "or give a local checkpoint folder") from None
        raise PolicyNotFoundError(
            f"cannot reach the Hugging Face Hub for {at}, and it is not in the local cache "
            f"({constants.HF_HUB_CACHE}): check the network, or give a local checkpoint folder") from None
    except GatedRepoError:
        raise PolicyNotFoundError(f"{at} is a gated Hub repo: accept its terms on huggingface.co and log in "
                                  "(`hf auth login`)") from None
    except RepositoryNotFoundError:
        raise PolicyNotFoundError(f"no Hub repo {repo_id} (or it is private: log in with `hf auth login`); "
                                  "check the repo id, or give a local checkpoint folder") from None
    except RevisionNotFoundError:
        raise PolicyNotFoundError(f"the Hub repo {repo_id} has no revision {revision!r}") from None
    except HfHubHTTPError as e:
        raise PolicyNotFoundError(f"the Hugging Face Hub refused {at} ({' '.join(str(e).split())[:160]})") from None
    found = local_pretrained_dir(folder)
    if found is None:
        raise PolicyNotFoundError(f"the Hub repo {at} has no {CONFIG_NAME} + {WEIGHTS_NAME}: is it a policy repo?")
    return found
