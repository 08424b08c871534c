"""A PNG timeline per scenario: traffic, campaign activity, detections and alerts over event time."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from extractguard.evaluation.scoring import ScenarioScore

MINUTE_MS = 60_000


def render_timeline(
    path: Path,
    score: ScenarioScore,
    start_ms: int,
    traffic: dict[str, Counter[int]],
    detections: list[dict[str, Any]],
    alert_firsts: list[tuple[int, str | None, str]],
) -> Path:
    """`traffic`: requests per minute index by series ("organic" or a campaign's name);
    `alert_firsts`: (event time, campaign pointed at or None, rule) of each alert's first delivery."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:  # pragma: no cover - depends on the install
        raise RuntimeError("the scorecard's timelines need matplotlib: pip install 'extractguard[eval]'") from error

    minutes = int(score.duration_s // 60) + 1
    hours = [m / 60 for m in range(minutes)]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 6.5), sharex=True, height_ratios=[3, 2])
    series = ["organic", *sorted(k for k in traffic if k != "organic")]
    stacks = [[traffic.get(name, Counter())[m] for m in range(minutes)] for name in series]
    colours = ["#9aa5b1", "#d1495b", "#edae49", "#00798c", "#30638e", "#003d5b"]
    top.stackplot(hours, stacks, labels=series, colors=colours[: len(series)], alpha=0.85, linewidth=0)
    for campaign in score.campaigns:
        top.axvline((campaign.first_request_ms - start_ms) / 3_600_000, color="#d1495b", linestyle=":", linewidth=1)
    top.set_ylabel("requests / minute")
    top.set_title(f"{score.name}: traffic by ground truth (campaign start dotted)")
    top.legend(loc="upper left", fontsize=8)

    by_detector: dict[str, Counter[int]] = {}
    for detection in detections:
        minute = (detection["window_end_ms"] - start_ms) // MINUTE_MS
        by_detector.setdefault(detection["detector"], Counter())[minute] += 1
    for (name, counts), colour in zip(sorted(by_detector.items()), ["#30638e", "#edae49", "#00798c"], strict=False):
        xs = sorted(counts)
        bottom.vlines([x / 60 for x in xs], 0, [counts[x] for x in xs], colors=colour, label=f"{name} detections")
    for ts, target, _rule in alert_firsts:
        colour = "#d1495b" if target else "#5c5c5c"
        bottom.axvline((ts - start_ms) / 3_600_000, color=colour, alpha=0.6, linewidth=1)
    bottom.plot([], [], color="#d1495b", label="alert pointing at a campaign")
    bottom.plot([], [], color="#5c5c5c", label="alert on organic accounts")
    bottom.set_ylabel("detections / minute")
    bottom.set_xlabel("hours of event time since the scenario's start")
    bottom.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
