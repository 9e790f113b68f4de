"""chunkbot's Q-chunking SAC policy as a LeRobot policy type, `chunkbot_qc_sac`.

LeRobot's tools call `lerobot.utils.import_utils.register_third_party_plugins()`, which imports every
installed distribution whose name starts with `lerobot_policy_`. chunkbot's `./setup.sh` installs one,
`lerobot_policy_chunkbot` (plugins/), whose import registers the config class below; LeRobot's own
loaders then read a chunkbot checkpoint:

    cfg = PreTrainedConfig.from_pretrained("outputs/train/lift/checkpoints/last/pretrained_model")
    policy = get_policy_class(cfg.type).from_pretrained(".../pretrained_model")   # or make_policy(cfg, ds_meta)

The module names follow LeRobot's convention (`configuration_<x>` holds `<X>Config`, the sibling
`modeling_<x>` holds `<X>Policy`): that is how `lerobot.policies.factory.get_policy_class` finds the
policy class of a registered config without importing it up front. The classes are chunkbot's own
(`QChunkSACConfig`, `QChunkSACPolicy`) with LeRobot's base classes added, so the files on disk, the
weights' names and every action are the same whichever loader reads them.
"""
