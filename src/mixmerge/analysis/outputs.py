"""What every analysis writes to ``results/analysis/<name>/``: its CSV tables, its figure and a JSON record of the
settings it ran with."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable


def write_outputs(out: dict[str, str], tables: dict, draw: Callable[[str], None], record: dict) -> None:
    """``tables``: {output key: DataFrame}; ``draw(path)`` saves the figure at ``out['figure']``; ``record`` goes to
    ``out['settings']``."""
    for path in out.values():
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    for key, frame in tables.items():
        frame.to_csv(out[key], index=False)
    draw(out["figure"])
    Path(out["settings"]).write_text(json.dumps(record, indent=2))
