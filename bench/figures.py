"""How the bench scripts summarise samples and lay out their tables (no I/O)."""

from __future__ import annotations

import math
import statistics


def percentile(samples: list[float], fraction: float) -> float:
    """Nearest-rank percentile: with fewer than 1/(1-fraction) samples, the largest."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    rank = min(len(ordered), max(1, math.ceil(fraction * len(ordered))))
    return ordered[rank - 1]


def spread(samples: list[float]) -> dict[str, float]:
    """Median, 99th percentile (nearest rank) and largest of a list of seconds, in ms."""
    return {"p50_ms": statistics.median(samples) * 1000,
            "p99_ms": percentile(samples, 0.99) * 1000,
            "max_ms": max(samples) * 1000,
            "samples": float(len(samples))}


def table(headers: list[str], rows: list[list[str]]) -> str:
    """A plain-text table: the first column left-aligned, the others right-aligned."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) if i == 0 else h.rjust(w)
                       for i, (h, w) in enumerate(zip(headers, widths, strict=True)))]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(row, widths, strict=True))))
    return "\n".join(lines)


def size_text(size: float) -> str:
    return f"{size / 1024:.1f} KB" if size >= 1024 else f"{size:.0f} B"
