"""Results shaped like the paper's Table 1: one block of rows per T, metric columns with their direction.

The paper's columns are FID (lower is better), SSIM, CSIM (higher is better) and a user study; the user
study cannot be run by a program, so its column is left out. PSNR and L1 follow SSIM.
"""
from __future__ import annotations

import csv
import io

from .protocol import Row

COLUMNS = (("fid", "FID↓", "{:.1f}"), ("ssim", "SSIM↑", "{:.3f}"), ("csim", "CSIM↑", "{:.3f}"),
           ("psnr", "PSNR↑ (dB)", "{:.2f}"), ("l1", "L1↓", "{:.4f}"))
CSV_FIELDS = ("engine", "shots", "finetuned", "finetune_steps", "videos", "frames", "fid", "ssim", "csim", "psnr", "l1")


def markdown(rows: list[Row]) -> str:
    """A Markdown table: "Method (T)" then the metric columns; "—" where a metric was not computed."""
    lines = ["| Method (T) | " + " | ".join(title for _, title, _ in COLUMNS) + " |",
             "|---|" + "---:|" * len(COLUMNS)]
    for row in sorted(rows, key=lambda r: (r.method.shots, r.method.engine != "warp", r.method.finetune_steps)):
        d = row.as_dict()
        cells = [fmt.format(d[key]) if d[key] is not None else "—" for key, _, fmt in COLUMNS]
        lines.append(f"| {row.method.label} ({row.method.shots}) | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def csv_text(rows: list[Row]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        d = row.as_dict()
        writer.writerow({k: ("" if d[k] is None else d[k]) for k in CSV_FIELDS})
    return out.getvalue()
