"""The files the docs and the code point at exist: the first-action config (the seed document's JSON) the
README trains with, the design notes' sections the code cites."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

from policy.config import FIRST_ACTION_JSON

REPO = Path(__file__).resolve().parents[1]
FIRST_ACTION_FILE = REPO / "configs" / "first_action.json"
SOURCES = [p for d in ("robot", "policy", "calibration", "export", "tools", "benchmarks") for p in (REPO / d).rglob("*.py")]


def test_the_shipped_first_action_file_is_the_seed_documents_json_block():
    assert json.loads(FIRST_ACTION_FILE.read_text()) == FIRST_ACTION_JSON


def test_the_readme_command_trains_the_first_action_policy():
    from tools.train import build_config

    assert "--config-path=configs/first_action.json" in (REPO / "README.md").read_text()
    policy = build_config([f"--config-path={FIRST_ACTION_FILE}", "--env-name=chunkbot/SO101Lift-v0"]).policy
    assert (policy.use_act_actor, policy.chunk_size, policy.obs_history_length) == (True, 8, 5)
    assert (policy.critic_mode, policy.q_chunking_strategy) == ("first_action", "standard")


def test_every_design_section_the_code_cites_exists():
    headings = [line for line in (REPO / "docs" / "design.md").read_text().splitlines() if line.startswith("#")]
    cited = {" ".join(m.split()) for p in SOURCES for m in re.findall(r'docs/design\.md, "([^"]+)"', p.read_text())}
    assert cited, "the code cites no design section: the pattern in this test is stale"
    missing = sorted(c for c in cited if not any(c in h for h in headings))
    assert not missing, f"docs/design.md has no section {missing}"


def test_nothing_cites_a_design_file_outside_the_repository():
    offenders = [str(p.relative_to(REPO)) for p in SOURCES if re.search(r"\bDESIGN\.md|\.\./shared", p.read_text())]
    assert not offenders


def test_the_former_config_file_name_still_loads_with_a_one_line_notice(caplog):
    from tools.train import build_config

    with caplog.at_level(logging.WARNING, logger="tools._policy_cli"):
        old = build_config([f"--config-path={REPO / 'configs' / 'seed.json'}"]).policy
    assert old == build_config([f"--config-path={FIRST_ACTION_FILE}"]).policy
    assert [r.getMessage() for r in caplog.records] == [
        f"{REPO / 'configs' / 'seed.json'} is now named configs/first_action.json (the old name will go)"]
