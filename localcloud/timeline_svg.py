"""The demo's timeline as a picture (SVG): one lane per instance from its launch to its end,
coloured by phase (Pending:Wait, joining, InService, Terminating:Wait, the hold after its
record change is in sync), with the record change and the release marked. Pure: the cloud's
timeline records in, SVG text out."""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape
from typing import Any

PHASES = {  # name: colour
    "Pending:Wait": "#f0ad4e",
    "joining": "#5bc0de",
    "InService": "#5cb85c",
    "Terminating:Wait": "#d9534f",
    "hold": "#9b59b6",
    "shutting down": "#bbbbbb",
}


@dataclass
class Lane:
    instance: str
    group: str
    launched: float
    host_ready: float | None = None
    launch_ended: float | None = None
    launch_result: str | None = None
    terminating: float | None = None
    dns_change: float | None = None
    insync: float | None = None
    released: float | None = None
    gone: float | None = None
    segments: list[tuple[str, float, float]] = field(default_factory=list)


def lanes(events: list[dict[str, Any]]) -> tuple[list[Lane], float]:
    """The instances' lanes, in launch order, and the timeline's end (seconds from its start)."""
    by_id: dict[str, Lane] = {}
    end = max((e["t"] for e in events), default=0.0)
    for e in events:
        k, i, t = e["kind"], e.get("instance"), e["t"]
        if k == "instance-launched":
            by_id[i] = Lane(i, e.get("group", ""), t)
        lane = by_id.get(i) if i else None
        if k == "dns-change":
            for c in e["changes"]:
                gone = by_id.get(c.get("set"))
                if c["action"] == "DELETE" and gone is not None and gone.dns_change is None:
                    gone.dns_change, gone.insync = t, e.get("insync_at")
        if lane is None:
            continue
        if k == "host-ready" and lane.host_ready is None:
            lane.host_ready = t
        elif k == "action-ended" and e.get("transition") == "launch" and lane.launch_ended is None:
            lane.launch_ended, lane.launch_result = t, e.get("result")
        elif k == "hook-wait" and e.get("transition") == "terminate" and lane.terminating is None:
            lane.terminating = t
        elif k == "action-ended" and e.get("transition") == "terminate" and lane.released is None:
            lane.released = t
        elif k == "instance-terminated" and lane.gone is None:
            lane.gone = t
    for lane in by_id.values():
        lane.segments = _segments(lane, end)
    return sorted(by_id.values(), key=lambda x: x.launched), end


def _segments(lane: Lane, end: float) -> list[tuple[str, float, float]]:
    """(phase, from, to) in order; each phase ends where the next begins."""
    marks: list[tuple[str, float | None]] = [
        ("Pending:Wait", lane.launched),
        ("joining", lane.host_ready),
        ("InService", lane.launch_ended if lane.launch_result == "CONTINUE" else None),
        ("Terminating:Wait", lane.terminating),
        ("hold", lane.insync if lane.insync is not None and lane.released is not None and lane.insync < lane.released
         else None),
        # Released by its terminate action, or let go by an abandoned launch.
        ("shutting down", lane.released if lane.released is not None
         else lane.launch_ended if lane.launch_result == "ABANDON" else None),
    ]
    present = [(name, t) for name, t in marks if t is not None]
    out = []
    for (name, start), (_, stop) in zip(present, [*present[1:], ("", lane.gone if lane.gone is not None else end)],
                                        strict=True):
        if stop > start:
            out.append((name, start, stop))
    return out


def render(events: list[dict[str, Any]], title: str = "swarm-lifecycle demo") -> str:
    """The SVG of `events` (the local cloud's timeline records)."""
    ls, end = lanes(events)
    left, top, lane_h, width = 190, 50, 26, 900
    scale = (width - left - 20) / max(end, 1.0)
    height = top + lane_h * len(ls) + 60
    x = lambda t: left + t * scale  # noqa: E731
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="11">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="10" y="20" font-size="14" font-weight="bold">{escape(title)}</text>']
    step = next(s for s in (5, 10, 20, 30, 60, 120, 300, 600) if end / s <= 12)
    for k in range(int(end // step) + 1):
        tx = x(k * step)
        out.append(f'<line x1="{tx:.1f}" y1="{top - 8}" x2="{tx:.1f}" y2="{top + lane_h * len(ls)}" stroke="#eee"/>')
        out.append(f'<text x="{tx:.1f}" y="{top - 12}" text-anchor="middle" fill="#666">{k * step}s</text>')
    for n, lane in enumerate(ls):
        y = top + n * lane_h
        role = "manager" if "manager" in lane.group else "worker"
        out.append(f'<text x="10" y="{y + 16}">{escape(lane.instance)} ({role})</text>')
        for name, a, b in lane.segments:
            out.append(f'<rect x="{x(a):.1f}" y="{y + 4}" width="{max(x(b) - x(a), 1):.1f}" height="{lane_h - 8}" '
                       f'fill="{PHASES[name]}"><title>{escape(name)}: {a:.1f}s to {b:.1f}s</title></rect>')
        if lane.launch_result == "ABANDON" and lane.launch_ended is not None:
            out.append(f'<text x="{x(lane.launch_ended):.1f}" y="{y + 17}" fill="#a00" font-weight="bold">'
                       f'✗ ABANDON</text>')
        if lane.dns_change is not None:
            tx = x(lane.dns_change)
            out.append(f'<path d="M{tx - 5:.1f},{y} L{tx + 5:.1f},{y} L{tx:.1f},{y + 8} Z" fill="black">'
                       f'<title>record change submitted at {lane.dns_change:.1f}s</title></path>')
        if lane.released is not None:
            tx, cy = x(lane.released), y + lane_h / 2
            out.append(f'<path d="M{tx:.1f},{cy - 6:.1f} L{tx + 6:.1f},{cy:.1f} L{tx:.1f},{cy + 6:.1f} '
                       f'L{tx - 6:.1f},{cy:.1f} Z" fill="white" stroke="black">'
                       f'<title>terminate action released at {lane.released:.1f}s</title></path>')
    ly = top + lane_h * len(ls) + 25
    lx = 10
    for name, colour in PHASES.items():
        out.append(f'<rect x="{lx}" y="{ly - 9}" width="12" height="12" fill="{colour}"/>')
        out.append(f'<text x="{lx + 16}" y="{ly + 1}">{escape(name)}</text>')
        lx += 30 + 7 * len(name)
    out.append(f'<path d="M{lx},{ly - 9} L{lx + 10},{ly - 9} L{lx + 5},{ly - 1} Z" fill="black"/>'
               f'<text x="{lx + 14}" y="{ly + 1}">record change</text>')
    lx += 110
    out.append(f'<path d="M{lx + 5},{ly - 9} L{lx + 11},{ly - 3} L{lx + 5},{ly + 3} L{lx - 1},{ly - 3} Z" '
               f'fill="white" stroke="black"/><text x="{lx + 16}" y="{ly + 1}">release</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
