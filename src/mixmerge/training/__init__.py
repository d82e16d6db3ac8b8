"""Training stages: the tiny base model, SFT and GRPO (TRL), checkpoints and resume."""
