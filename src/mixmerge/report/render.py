"""How the report's tables read: cell texts (value, SE, CI, seed spread, n), Markdown tables, and one
self-contained HTML page (figures embedded as base64 PNG, inline CSS, no scripts, nothing fetched)."""
from __future__ import annotations

import base64
import html
import math
from pathlib import Path

import pandas as pd


def pct(x: float, signed: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{100 * x:+.1f}" if signed else f"{100 * x:.1f}"


def pvalue(p: float) -> str:
    if p is None or math.isnan(p):
        return "n/a"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def cell_text(row) -> str:
    """strict ±SE [95% CI] / lenient ±SE, in %, with the spread between seeds when there are several."""
    text = (f"{pct(row['strict'])} ±{pct(row['strict_se'])} [{pct(row['strict_lo'])}, {pct(row['strict_hi'])}]"
            f" / {pct(row['lenient'])} ±{pct(row['lenient_se'])}")
    if row["seeds"] > 1:
        text += f" (seed sd {pct(row['strict_seed_sd'])} / {pct(row['lenient_seed_sd'])})"
    return text


def cells_display(cells: pd.DataFrame, models: list[str]) -> pd.DataFrame:
    """Rows: models; columns: benchmarks headed with their n (items) and k (samples per item)."""
    columns = list(dict.fromkeys(cells["benchmark"]))
    heads = {}
    for bench in columns:
        sub = cells[cells["benchmark"] == bench]
        k = sub["k"].iloc[0]
        heads[bench] = f"{bench} (n={int(sub['n'].iloc[0])}" + (f", k={int(k)})" if not pd.isna(k) else ")")
    table = pd.DataFrame(index=pd.Index([m for m in models if m in set(cells["model"])], name="model"))
    for bench in columns:
        sub = cells[cells["benchmark"] == bench].set_index("model")
        table[heads[bench]] = [cell_text(sub.loc[m]) if m in sub.index else "" for m in table.index]
    return table


def comparisons_display(frame: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for r in frame.itertuples():
        rows.append({"family": r.family, "a": r.a, "b": r.b, "benchmark": r.benchmark, "n": r.n,
                     "Δ strict [95% CI]": f"{pct(r.strict_diff, True)} [{pct(r.strict_lo, True)}, "
                                          f"{pct(r.strict_hi, True)}]",
                     "SE": pct(r.strict_se), "p": pvalue(r.p), "p (Holm)": pvalue(r.p_holm),
                     "Δ lenient [95% CI]": f"{pct(r.lenient_diff, True)} [{pct(r.lenient_lo, True)}, "
                                           f"{pct(r.lenient_hi, True)}]",
                     "reading": r.reading})
    return pd.DataFrame(rows)


def pass_display(passes: pd.DataFrame) -> pd.DataFrame:
    shown = passes.copy()
    cols = [c for c in shown.columns if c.startswith("pass@")]
    shown[cols] = shown[cols].map(pct)
    return shown.set_index("model")


def to_markdown(table: pd.DataFrame, caption: str) -> str:
    cols = [str(table.index.name or "")] + [str(c) for c in table.columns]
    lines = [f"**{caption}**", "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for idx, row in table.iterrows():
        lines.append("| " + " | ".join([str(idx)] + [str(v) for v in row.values]) + " |")
    return "\n".join(lines) + "\n"


STYLE = """body{font-family:sans-serif;max-width:1400px;margin:auto;padding:1em;color:#222}
table{border-collapse:collapse;font-size:12px;margin:.5em 0 1.5em}th,td{border:1px solid #ccc;padding:2px 6px;
text-align:left;vertical-align:top}th{background:#f2f2f2}caption,figcaption{caption-side:top;text-align:left;
font-size:13px;color:#444;margin:.3em 0;max-width:1100px}img{max-width:100%;border:1px solid #eee}
figure{margin:1em 0 2em}"""


class Page:
    """A self-contained HTML page built section by section."""

    def __init__(self, title: str):
        self.title = title
        self.parts: list[str] = []

    def heading(self, text: str) -> None:
        self.parts.append(f"<h2>{html.escape(text)}</h2>")

    def paragraph(self, text: str) -> None:
        self.parts.append(f"<p>{html.escape(text)}</p>")

    def table(self, frame: pd.DataFrame, caption: str, index: bool = True) -> None:
        body = frame.to_html(index=index, escape=True, border=0, na_rep="n/a")
        self.parts.append(body.replace("<thead>", f"<caption>{html.escape(caption)}</caption><thead>", 1))

    def figure(self, png: Path, caption: str) -> None:
        data = base64.b64encode(Path(png).read_bytes()).decode("ascii")
        self.parts.append(f'<figure><figcaption>{html.escape(caption)}</figcaption><img alt="{html.escape(png.name)}"'
                          f' src="data:image/png;base64,{data}"></figure>')

    def write(self, out: Path) -> None:
        out.write_text(f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>"
                       f"{html.escape(self.title)}</title><style>{STYLE}</style></head><body><h1>"
                       f"{html.escape(self.title)}</h1>\n" + "\n".join(self.parts) + "\n</body></html>\n")
