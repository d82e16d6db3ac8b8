"""Training curves of the RL nodes: the per-domain reward TRL logs (``rewards/<domain>_reward/mean``), read from
the runs' TensorBoard event files with tensorboard's EventAccumulator, or from the model's ``train_log.json``
(TRL's log history) when a run wrote no event files (runs from before ``report_to: tensorboard``)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from mixmerge import grid

REWARD = re.compile(r"^(?:train/)?rewards/(?P<domain>[a-z][a-z0-9_]*)_reward/mean$")
COLUMNS = ["node", "model", "seed", "domain", "step", "reward", "source"]


def event_scalars(logdir: str | Path) -> pd.DataFrame:
    """Every scalar in the event files under ``logdir``: tag, step, value. Files are read oldest first and a
    later file's value for a (tag, step) wins, so a resumed run that re-logs steps after its checkpoint keeps
    the resumed values."""
    from tensorboard.backend.event_processing.event_accumulator import SCALARS, EventAccumulator

    files = sorted(Path(logdir).rglob("events.out.tfevents.*"), key=lambda p: (p.stat().st_mtime, p.name))
    rows = []
    for order, path in enumerate(files):
        acc = EventAccumulator(str(path), size_guidance={SCALARS: 0})
        acc.Reload()
        for tag in acc.Tags()[SCALARS]:
            rows += [{"tag": tag, "step": e.step, "value": e.value, "order": order} for e in acc.Scalars(tag)]
    frame = pd.DataFrame(rows, columns=["tag", "step", "value", "order"])
    frame = frame.sort_values(["tag", "step", "order"]).drop_duplicates(["tag", "step"], keep="last")
    return frame.drop(columns="order").reset_index(drop=True)


def log_history_scalars(path: str | Path) -> pd.DataFrame:
    """The same from TRL's log history (``train_log.json`` in a trained model)."""
    rows = [{"tag": key, "step": entry["step"], "value": value}
            for entry in json.loads(Path(path).read_text()) if "step" in entry
            for key, value in entry.items() if isinstance(value, (int, float)) and key != "step"]
    return pd.DataFrame(rows, columns=["tag", "step", "value"])


def reward_rows(scalars: pd.DataFrame) -> pd.DataFrame:
    """The per-domain reward means among the scalars: domain, step, reward."""
    rows = []
    for tag, step, value in scalars[["tag", "step", "value"]].itertuples(index=False):
        match = REWARD.match(tag)
        if match:
            rows.append({"domain": match["domain"], "step": int(step), "reward": float(value)})
    return pd.DataFrame(rows, columns=["domain", "step", "reward"])


def reward_curves(the_grid, root: str | Path) -> pd.DataFrame:
    """The per-domain reward curve of every RL node (every seed) under ``root``, with its source."""
    frames = []
    for node in the_grid.nodes:
        if not node.startswith("rl-"):
            continue
        logdir, history = Path(root, grid.tensorboard_dir(node)), Path(root, grid.model_dir(node), "train_log.json")
        if logdir.is_dir() and any(logdir.rglob("events.out.tfevents.*")):
            curve, source = reward_rows(event_scalars(logdir)), "tensorboard"
        elif history.exists():
            curve, source = reward_rows(log_history_scalars(history)), "train_log.json"
        else:
            continue
        name, seed = the_grid.split(node)
        frames.append(curve.assign(node=node, model=name, seed=seed, source=source))
    if not frames:
        return pd.DataFrame(columns=COLUMNS)
    return pd.concat(frames, ignore_index=True)[COLUMNS]
