"""The learner variants the study compares, all from `policy.config.QChunkSACConfig`.

| name | actor | critic | backup |
|---|---|---|---|
| sac | 1 action | Q(s, a) | 1-step (RLPD-style SAC with demos, `preset("sac")`) |
| rlpd | 1 action | Q(s, a) | 1-step, no BC term (the paper's RLPD baseline) |
| qc | chunk of h | Q(s, a_{0:h}) (the paper's chunked critic) | h-step, gamma^h bootstrap |
| ac_1step | chunk of h | Q(s, a_0) | 1-step (the paper's "RLPD-AC" ablation) |
| first_action_standard | chunk of h | Q(s, a_0) | n-step, n = h (the seed document's; "BFN-n" of the paper) |
| first_action_conservative | chunk of h | Q(s, a_0) | n-step; actor maximises min_i Q(s, a_i), first 3 actions |
| first_action_temporal_weighted | chunk of h | Q(s, a_0) | n-step; actor maximises sum_i w_i Q(s, a_i), w ~ 0.9^i |
| first_action_standard_no_backup_entropy | chunk of h | Q(s, a_0) | n-step, no -alpha log pi (ablation, on request) |

The first-action variants come from the seed document and were named `seed_*` until they were named after
what they do; results recorded under the old names (`RENAMED_VARIANTS`) count as the new ones, and
`--variants` still takes the old names, with a one-line notice.

Everything else is shared so that only the critic / backup / actor objective differs: the same MLP
actor (no ACT transformer, no observation history: state observations), the same chunk length
h = 5, and the same (study-sized) networks. Each critic family keeps its own reference value of
`backup_entropy` (the paper's chunked critic: off; the first-action critic: on). With the
study's 2 critics every variant aggregates with the min (clipped double-Q, SAC's choice for 2
critics) instead of the paper's mean over 10.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from policy.config import QChunkSACConfig, preset_dict

log = logging.getLogger(__name__)
CHUNK = 5


@dataclass(frozen=True)
class Variant:
    name: str
    label: str                       # legend text
    overrides: dict[str, Any] = field(default_factory=dict)
    base: str = "qc"                 # policy.config preset the overrides apply to

    def config(self, network: dict[str, Any]) -> QChunkSACConfig:
        """The policy config: preset < study network sizes < this variant's overrides."""
        return QChunkSACConfig.from_dict({**preset_dict(self.base), **network, **self.overrides})


VARIANTS: dict[str, Variant] = {v.name: v for v in [
    Variant("sac", "SAC (h=1, RLPD-style)", {}, base="sac"),
    Variant("qc", "QC (chunked critic, h=5)", {"act_chunk_size": CHUNK}),
    Variant("ac_1step", "chunked actor + 1-step critic (RLPD-AC)",
            {"act_chunk_size": CHUNK, "critic_mode": "first_action", "q_chunking_strategy": "standard", "n_step": 1}),
    Variant("first_action_standard", "first-action critic, 5-step, standard",
            {"act_chunk_size": CHUNK, "q_chunking_strategy": "standard", "critic_mode": "first_action"}),
    Variant("first_action_conservative", "first-action critic, 5-step, conservative",
            {"act_chunk_size": CHUNK, "q_chunking_strategy": "conservative"}),
    Variant("first_action_temporal_weighted", "first-action critic, 5-step, temporal_weighted",
            {"act_chunk_size": CHUNK, "q_chunking_strategy": "temporal_weighted"}),
    # ablation, not in the default set: first_action_standard without the entropy term in the backup, i.e.
    # QC except that the critic scores a_0 instead of the whole chunk
    Variant("first_action_standard_no_backup_entropy", "ablation: first-action critic, 5-step, no entropy backup",
            {"act_chunk_size": CHUNK, "q_chunking_strategy": "standard", "critic_mode": "first_action",
             "backup_entropy": False}),
    # the paper's RLPD baseline exactly: h = 1 and no BC term (run on request, e.g. the parity budget)
    Variant("rlpd", "RLPD (h=1, no BC)", {"bc_weight": 0.0}, base="sac"),
]}

DEFAULT_VARIANTS = ["sac", "qc", "ac_1step", "first_action_standard", "first_action_conservative",
                    "first_action_temporal_weighted"]

# Former names -> present names. Result files keep the name they were recorded under (their folder and
# their "variant" field); the plots, the tables and the driver's skip check read them as the present one.
RENAMED_VARIANTS: dict[str, str] = {
    "seed_standard": "first_action_standard",
    "seed_conservative": "first_action_conservative",
    "seed_temporal_weighted": "first_action_temporal_weighted",
    "seed_standard_no_backup_entropy": "first_action_standard_no_backup_entropy",
}


def recorded_names(name: str) -> list[str]:
    """Every name results of variant `name` may be recorded under: its own, then its former ones."""
    return [name, *(old for old, new in RENAMED_VARIANTS.items() if new == name)]


def variant_name(name: str, *, notice: bool = True) -> str:
    """The present name of a variant named now or formerly (with a one-line notice for a former name,
    unless `notice=False`: a recorded result is not a user's choice)."""
    if name in RENAMED_VARIANTS:
        if notice:
            log.warning("variant %r is now named %r (the old name will go)", name, RENAMED_VARIANTS[name])
        return RENAMED_VARIANTS[name]
    return name
