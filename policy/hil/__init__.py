"""Human-in-the-loop RL sessions with chunked policies (QC-SAC on the arm, takeovers as training data).

    HILConfig       the session's options (tools.hil_session / tools.actor / tools.learner)
    HILSession      the actor: episodes, takeovers, rewards, dataset, episodes.jsonl
    HILLearner      the learner: episode batches in, updates, weights out, checkpoints
    LocalLink       the learner in the same process;  RemoteLink: over policy.transport
    ScriptedPerson  the simulated person who takes over when the policy is failing
"""

from policy.hil.config import HILConfig
from policy.hil.learner import HILLearner, HILLearnerConfig
from policy.hil.scripted_person import ScriptedPerson, ScriptedPersonConfig
from policy.hil.session import ActorPolicy, EpisodeResult, HILSession, LocalLink

__all__ = ["ActorPolicy", "EpisodeResult", "HILConfig", "HILLearner", "HILLearnerConfig", "HILSession",
           "LocalLink", "ScriptedPerson", "ScriptedPersonConfig"]
