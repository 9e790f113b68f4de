"""Imported by LeRobot's tools at start-up: registers chunkbot's policy type `chunkbot_qc_sac` with
LeRobot's PreTrainedConfig (see `policy.lerobot_plugin`); the policy class is imported when asked for."""

import policy.lerobot_plugin.configuration_chunkbot_qc_sac  # noqa: F401  (registers on import)
