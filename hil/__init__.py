"""Human-in-the-loop RL sessions with chunked policies: QC-SAC on the arm, takeovers as training data.

An application of the policy (package `policy`) and the robot (package `robot`), with the learner
here or elsewhere over the link (package `link`):

    HILConfig       the session's options (tools.hil_session / tools.actor)
    HILSession      the actor: episodes, takeovers, rewards, dataset, episodes.jsonl   (session.py)
    Person          takeovers, session keys, the scene between episodes               (person.py)
    LocalLink       the learner in this process; RemoteLink: over the link            (link.py)
    HILLearner      the learner: episode batches in, updates, weights out             (learner.py)
    LearnerService  the learner for many actors over the link (tools.learner)         (serve.py)
"""
