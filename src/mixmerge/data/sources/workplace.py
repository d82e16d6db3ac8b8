"""The workplace-assistant agent benchmark (NeMo-Gym's ``nvidia/Nemotron-RL-agent-workplace_assistant``, the
study's agent environment): rows of the RL blend's workbench schema, ``responses_create_params.input`` (the
messages) and ``ground_truth`` (the reference tool calls) -> agent rows. Scoring them needs the 27-tool
environment, which mixmerge does not include (``mixmerge.domains.agent``)."""
from __future__ import annotations

from mixmerge.data.sources import Record
from mixmerge.data.sources.nemotron_blend import prompt_messages
from mixmerge.domains.agent import blend_verifier

COLUMNS = ["responses_create_params", "ground_truth"]


def convert(rec: Record, spec: dict, name: str) -> dict:
    item = rec.data.get("id", rec.index)
    return {"id": f"{name}-{item}", "domain": "agent", "prompt": prompt_messages(rec),
            "verifier": blend_verifier(rec, {}), "source": f"{rec.where}:{item}"}
