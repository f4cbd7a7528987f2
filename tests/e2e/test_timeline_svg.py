"""The demo's timeline picture (localcloud/timeline_svg.py), from a synthetic timeline: no cloud."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from localcloud.timeline_svg import lanes, render

M, W = "i-0000000000000000a", "i-0000000000000000b"
EVENTS = [
    {"t": 0.0, "kind": "cloud-up"},
    {"t": 1.0, "kind": "instance-launched", "instance": M, "group": "demo-managers"},
    {"t": 1.0, "kind": "hook-wait", "instance": M, "transition": "launch"},
    {"t": 3.0, "kind": "host-ready", "instance": M},
    {"t": 9.0, "kind": "action-ended", "instance": M, "transition": "launch", "result": "CONTINUE"},
    {"t": 2.0, "kind": "instance-launched", "instance": W, "group": "demo-workers"},
    {"t": 4.0, "kind": "host-ready", "instance": W},
    {"t": 20.0, "kind": "action-ended", "instance": W, "transition": "launch", "result": "ABANDON"},
    {"t": 21.0, "kind": "instance-terminated", "instance": W},
    {"t": 30.0, "kind": "hook-wait", "instance": M, "transition": "terminate"},
    {"t": 31.0, "kind": "dns-change", "changes": [{"action": "DELETE", "set": M, "ips": ["10.0.0.4"]}], "insync_at": 32.0},
    {"t": 47.0, "kind": "action-ended", "instance": M, "transition": "terminate", "result": "CONTINUE"},
    {"t": 50.0, "kind": "instance-terminated", "instance": M},
]


def test_each_instance_has_its_phases_in_order_with_the_hold_after_the_record_change():
    ls, end = lanes(EVENTS)
    assert end == 50.0 and [lane.instance for lane in ls] == [M, W]
    m, w = ls
    assert m.segments == [("Pending:Wait", 1.0, 3.0), ("joining", 3.0, 9.0), ("InService", 9.0, 30.0),
                          ("Terminating:Wait", 30.0, 32.0), ("hold", 32.0, 47.0), ("shutting down", 47.0, 50.0)]
    assert (m.dns_change, m.released) == (31.0, 47.0)
    # An abandoned launch never comes into service.
    assert w.segments == [("Pending:Wait", 2.0, 4.0), ("joining", 4.0, 20.0), ("shutting down", 20.0, 21.0)]


def test_the_picture_is_svg_with_a_lane_per_instance_and_the_marks():
    svg = render(EVENTS)
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    texts = [t.text for t in root.iter(ns + "text")]
    assert f"{M} (manager)" in texts and f"{W} (worker)" in texts, texts
    titles = [t.text for t in root.iter(ns + "title")]
    assert "hold: 32.0s to 47.0s" in titles and "record change submitted at 31.0s" in titles, titles
    assert "terminate action released at 47.0s" in titles and "✗ ABANDON" in texts
