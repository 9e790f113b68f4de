"""The learner variants the study compares, all from `policy.config.QChunkSACConfig`.

| name | actor | critic | backup |
|---|---|---|---|
| sac | 1 action | Q(s, a) | 1-step (RLPD-style SAC with demos, `preset("sac")`) |
| rlpd | 1 action | Q(s, a) | 1-step, no BC term (the paper's RLPD baseline) |
| qc | chunk of h | Q(s, a_{0:h}) (the paper's chunked critic) | h-step, gamma^h bootstrap |
| ac_1step | chunk of h | Q(s, a_0) | 1-step (the paper's "RLPD-AC" ablation) |
| seed_standard | chunk of h | Q(s, a_0) | n-step, n = h (the seed; also the paper's "BFN-n"-style n-step backup) |
| seed_conservative | chunk of h | Q(s, a_0) | n-step; actor maximises min_i Q(s, a_i) over the first 3 actions |
| seed_temporal_weighted | chunk of h | Q(s, a_0) | n-step; actor maximises sum_i w_i Q(s, a_i), w ~ 0.9^i |
| seed_standard_no_backup_entropy | chunk of h | Q(s, a_0) | n-step without -alpha log pi (ablation; run on request) |

Everything else is shared so that only the critic / backup / actor objective differs: the same MLP
actor (no ACT transformer, no observation history: state observations), the same chunk length
h = 5, and the same (study-sized) networks. Each critic family keeps its own reference value of
`backup_entropy` (the paper's chunked critic: off; the seed's first-action critic: on). With the
study's 2 critics every variant aggregates with the min (clipped double-Q, SAC's choice for 2
critics) instead of the paper's mean over 10.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from policy.config import QChunkSACConfig, preset_dict

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
    Variant("seed_standard", "seed: first-action critic, 5-step, standard",
            {"act_chunk_size": CHUNK, "q_chunking_strategy": "standard", "critic_mode": "first_action"}),
    Variant("seed_conservative", "seed: first-action critic, 5-step, conservative",
            {"act_chunk_size": CHUNK, "q_chunking_strategy": "conservative"}),
    Variant("seed_temporal_weighted", "seed: first-action critic, 5-step, temporal_weighted",
            {"act_chunk_size": CHUNK, "q_chunking_strategy": "temporal_weighted"}),
    # ablation, not in the default set: seed_standard without the entropy term in the backup, i.e. QC
    # except that the critic scores a_0 instead of the whole chunk
    Variant("seed_standard_no_backup_entropy", "ablation: first-action critic, 5-step, no entropy backup",
            {"act_chunk_size": CHUNK, "q_chunking_strategy": "standard", "critic_mode": "first_action",
             "backup_entropy": False}),
    # the paper's RLPD baseline exactly: h = 1 and no BC term (run on request, e.g. the parity budget)
    Variant("rlpd", "RLPD (h=1, no BC)", {"bc_weight": 0.0}, base="sac"),
]}

DEFAULT_VARIANTS = ["sac", "qc", "ac_1step", "seed_standard", "seed_conservative", "seed_temporal_weighted"]
