"""In-training validation for GRPO: TRL's eval loop (``eval_strategy: steps``) generates on the validation rows
and scores them with the run's reward functions, which log ``eval/rewards/<domain>_reward/mean`` (one function
per domain, so one curve per domain) to the node's TensorBoard directory.

Two changes to TRL's eval step, both for memory and speed at the study's lengths: the eval batch is a rollout's
size (so vLLM generates it as efficiently as a training rollout), and it is only generated and scored, not passed
through the policy loss; the one forward pass TRL still makes (log-probabilities for the vLLM importance-sampling
metrics) runs in chunks of the training micro-batch, so it stays within ``grpo.max_tokens_per_device``.
"""
from __future__ import annotations

from trl import GRPOTrainer


class ValidatingGRPOTrainer(GRPOTrainer):
    """GRPOTrainer whose eval step generates, scores and logs the rewards, without the loss."""

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        self._prepare_inputs(inputs)  # generation + rewards; the reward metrics land in self._metrics["eval"]
        return None, None, None

    def _get_per_token_logps_and_entropies(self, *args, batch_size=None, **kwargs):
        cap = self.args.per_device_train_batch_size
        return super()._get_per_token_logps_and_entropies(*args, batch_size=min(batch_size or cap, cap), **kwargs)
