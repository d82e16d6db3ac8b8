"""The study's SFT blend on fixture files of the Nemotron post-training chat schema: drops, seeded sampling to
targets, data card, errors that name file/row/field, and one real SFT step on the prepared chats."""
import json
from pathlib import Path

import pandas as pd
import pytest

from mixmerge.data.sources import DataError
from mixmerge.data.sources.sft_blend import COLUMNS, prepare_sft_blend

FIX = Path(__file__).parent / "fixtures" / "sft_blend"


def spec(**sources):
    return {"seed": 42, "sources": {name: {"source": {"path": str(FIX / f"{name}.jsonl")}, "target": target}
                                    for name, target in sources.items()}}


@pytest.fixture(scope="module")
def blend(tmp_path_factory):
    out = tmp_path_factory.mktemp("sft") / "train.parquet"
    card = prepare_sft_blend(spec(math=4, code=None, chat=1), out)
    return out, card, pd.read_parquet(out)


def test_blend_drops_samples_and_cards(blend):
    out, card, rows = blend
    assert card["rows_per_source"] == {"math": 4, "code": 1, "chat": 1} and card["rows"] == 6 == len(rows)
    math, code, chat = (card["sources"][n] for n in ("math", "code", "chat"))
    assert (math["rows_read"], math["drops"], math["kept"], math["sampling"]) == (3, {"empty_turn": 1}, 2,
                                                                                  "with replacement")
    assert math["distinct_rows_used"] <= 2
    assert (code["drops"], code["sampling"], code["rows"]) == ({"placeholder_prompt": 1}, "all", 1)
    assert (chat["kept"], chat["sampling"], chat["rows"]) == (2, "without replacement", 1)
    assert json.loads(out.with_name("train.card.json").read_text()) == json.loads(json.dumps(card))
    assert list(rows.columns) == COLUMNS and rows["id"].is_unique


def test_blend_keeps_reasoning_and_tool_calls(blend):
    _, _, rows = blend
    tool_rows = rows[rows["tools"] != ""]
    assert len(tool_rows) >= 1  # math draws 4 of its 2 kept rows: with seed 42 the tool row is among them
    messages = json.loads(tool_rows.iloc[0]["messages"])
    assert messages[1]["tool_calls"][0]["function"]["name"] == "python"
    assert messages[1]["reasoning_content"] == "I will run code."
    assert json.loads(tool_rows.iloc[0]["tools"])[0]["function"]["name"] == "python"
    code = json.loads(rows[rows["id"].str.startswith("code-")].iloc[0]["messages"])
    assert code[0]["content"] == "Read n and print n + 1." and "tool_calls" not in code[1]


def test_blend_is_deterministic(blend, tmp_path):
    out, _, rows = blend
    prepare_sft_blend(spec(math=4, code=None, chat=1), tmp_path / "again.parquet")
    assert pd.read_parquet(tmp_path / "again.parquet").equals(rows)


def test_bad_row_names_file_row_field(tmp_path):
    with pytest.raises(DataError, match=r"chat_bad.jsonl: row 1: field 'messages\[0\].role': 'robot' is not one"):
        prepare_sft_blend(spec(chat_bad=None), tmp_path / "x.parquet")
    card = prepare_sft_blend({**spec(chat_bad=None), "skip_bad_rows": True}, tmp_path / "x.parquet")
    source = card["sources"]["chat_bad"]
    assert (source["skipped_bad_rows"], source["rows"]) == (1, 1)
    assert "row 1: field 'messages[0].role'" in source["bad_row_examples"][0]


# The tiny base's ChatML, with reasoning and the generation markers assistant-only loss needs.
TRAINING_TEMPLATE = (
    "{% for m in messages %}{% if m['role'] == 'assistant' %}{{ '<|im_start|>assistant\\n' }}{% generation %}"
    "{% if m.reasoning_content %}{{ '<think>\\n' + m.reasoning_content + '\\n</think>\\n\\n' }}{% endif %}"
    "{{ m['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\\n' }}"
    "{% else %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{% endif %}{% endfor %}"
)


def test_sft_trains_on_chats_with_assistant_only_loss(tmp_path):
    from transformers import AutoTokenizer

    from mixmerge.training.base_model import build_base
    from mixmerge.training.sft import tokenized_chats, train_sft

    texts = ["What is 7 * 6? The answer is 42.", "Name a primary colour. Red.", "Say hi in French. Bonjour."] * 20
    tiny = {"architecture": "qwen2", "vocab_size": 300, "hidden_size": 32, "intermediate_size": 64, "num_layers": 1,
            "num_heads": 2, "num_kv_heads": 1, "max_positions": 256}
    base = tmp_path / "base"
    build_base(texts, tiny, 0, base)
    tokenizer = AutoTokenizer.from_pretrained(base)
    tokenizer.chat_template = TRAINING_TEMPLATE
    tokenizer.save_pretrained(base)
    chats = tmp_path / "chats.parquet"
    prepare_sft_blend(spec(chat=None), chats)

    ds = tokenized_chats(str(chats), tokenizer)
    trained = {tokenizer.decode([t for t, m in zip(r["input_ids"], r["assistant_masks"]) if m]) for r in ds}
    assert trained == {"Red.<|im_end|>", "Bonjour.<|im_end|>"}  # the loss sees the answers only

    cfg = {"trl": {"max_steps": 2, "per_device_train_batch_size": 2, "gradient_accumulation_steps": 1,
                   "learning_rate": 1e-3, "lr_scheduler_type": "constant", "weight_decay": 0.0, "max_length": 128,
                   "save_steps": 2, "gradient_checkpointing": False, "bf16": False}}
    train_sft(str(base), cfg, 0, 1, str(tmp_path / "sft"), str(tmp_path / "ckpt"), chats=str(chats))
    assert (tmp_path / "sft" / "config.json").exists()
