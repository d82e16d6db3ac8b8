"""The report's headroom table: the SFT model on a training slice per domain (``mixmerge headroom``)."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from mixmerge import grid

CAPTION = ("Headroom after SFT, before RL: the SFT model's k samples on n distinct training problems per domain. "
           "avg@k ± SE, pass@k (some sample right), gap = pass@k − avg@k (what RL can gain by making the right "
           "answer reliable), lenient avg@k, and the format share (right answers in the rewarded format: near 1 "
           "means a strict RL gain is a correctness gain, not format).")


def headroom_items(root: str | Path) -> list[tuple[str, object, str]]:
    """[(kind, payload, caption)]: the table, and one warning sentence per domain with too little headroom."""
    path = Path(root, grid.HEADROOM)
    if not path.exists():
        return [("text", f"Headroom: not computed (no {grid.HEADROOM}).", "")]
    found = json.loads(path.read_text())
    min_gap = found["settings"]["min_gap"]
    rows = [{"domain": domain, "n": d["n"], "k": d["k"],
             "avg@k": f"{100 * d['avg_at_k']:.1f} ± {100 * d['avg_at_k_stderr']:.1f}",
             "pass@k": f"{100 * d['pass_at_k']:.1f}", "gap": f"{100 * d['gap']:.1f}",
             "lenient avg@k": f"{100 * d['lenient_avg_at_k']:.1f}", "format share": f"{d['format_share']:.2f}",
             "headroom": "yes" if d["enough"] else f"LOW (gap < {100 * min_gap:.0f})"}
            for domain, d in found["domains"].items()]
    items = [("table", pd.DataFrame(rows).set_index("domain"), CAPTION)]
    for row in rows:
        if row["headroom"] != "yes":
            items.append(("text", f"Warning: domain {row['domain']!r} has little headroom after SFT "
                                  f"(pass@k − avg@k = {row['gap']} points): RL has little correctness to gain.", ""))
    return items
