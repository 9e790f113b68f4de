"""Sample-efficiency study: Q-chunking vs SAC vs the seed's variants (see docs/study.md)."""
