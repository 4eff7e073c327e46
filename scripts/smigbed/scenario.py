"""smigbed.scenario: an edge-demo drive (scripts/scenarios/*.yaml), checked, and what it
implies: every link's settings at a time, which edge is nearest when, and the absolute
goals the drive is judged against (smigbed.verdict).
"""
import math
import os

import yaml

from .testbed import RADIOS, ROOT

DEFAULT_SCENARIO = os.path.join(ROOT, "scripts", "scenarios", "default.yaml")
LINK_KEYS = {"delay_ms", "loss_pct", "rate_mbit", "up"}
SCENARIO_KEYS = {"name", "description", "duration_s", "edges", "start_edge", "policy",
                 "redundancy", "links", "events", "goals"}
# The session's redundancy policy (docs/protocol.md, RedundancyPolicy); unset: the SMM's
# default, auto.
REDUNDANCY_POLICIES = ("off", "auto", "always")
MAX_EDGES = 16  # the bed's namespaces and addresses (10.101.<i>.1) have room for these

# The goals a drive is judged against when its `goals:` map does not say otherwise. They
# are absolute, never derived from the run itself (issue 13). Gaps are between datagrams
# at the player over the whole drive, after the stream's first second (analysis.drive_gaps).
#   stall_ms       each migration's stall (the largest gap that began in it), <= 20 ms
#   p99_gap_ms     p99 gap: a lossless drive <= 20 ms; a lossy one (> 0.5 % loss) <= RTT + 30
#   p999_gap_ms    p99.9 gap: a lossy drive <= RTT + 50; not judged by default (None): the
#                  issue gives a lossless drive no p99.9 goal
#   max_gap_ms     the largest gap: lossless <= 50 ms; lossy <= 2 RTT + 100; a drive in
#                  which the active path dies abruptly (a dsrc outage) <= 150 ms
#   min_failovers  path failovers the vehicle must count (a drive whose active path dies
#                  says 1: SCTP must move traffic off it); 0 by default
# RTT is the round trip of the path carrying the stream; each scenario says which it used.
DEFAULT_GOALS = {"stall_ms": 20.0, "p99_gap_ms": 20.0, "p999_gap_ms": None, "max_gap_ms": 50.0,
                 "min_failovers": 0}


class ScenarioError(Exception):
    pass


def is_number(v):
    """A finite int or float (YAML's true/false are not numbers here)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def mapping(path, where, v, what):
    """`v` if it is a mapping (None: empty), else a ScenarioError saying what was expected."""
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise ScenarioError(f"{path}: {where}: expected a mapping of {what}, not {v!r}")
    return v


def load_scenario(path):
    """The scenario YAML, checked: unknown keys and bad values name themselves."""
    with open(path) as f:
        s = yaml.safe_load(f)
    if not isinstance(s, dict):
        raise ScenarioError(f"{path}: not a mapping")
    for k in s:
        if k not in SCENARIO_KEYS:
            raise ScenarioError(f"{path}: unknown key '{k}' (known: {', '.join(sorted(SCENARIO_KEYS))})")
    n_edges = s.get("edges", 3)
    if not is_number(n_edges) or n_edges != int(n_edges) or not 1 <= n_edges <= MAX_EDGES:
        raise ScenarioError(f"{path}: edges: {n_edges!r} is not a whole number from 1 to {MAX_EDGES}")
    edges = [f"edge-{i}" for i in range(1, int(n_edges) + 1)]
    s["edge_names"] = edges
    if s.get("redundancy") is not None and s["redundancy"] not in REDUNDANCY_POLICIES:
        raise ScenarioError(f"{path}: redundancy: {s['redundancy']!r} is not one of "
                            f"{', '.join(REDUNDANCY_POLICIES)}")
    if not is_number(s.get("duration_s", 0)) or s.get("duration_s", 0) <= 5:
        raise ScenarioError(f"{path}: duration_s must be a number of seconds, more than 5")
    if s.get("start_edge") is not None and s["start_edge"] not in edges:
        raise ScenarioError(f"{path}: start_edge: {s['start_edge']!r} is not one of {edges}")
    mapping(path, "policy", s.get("policy"), "the MDM's policy fields")

    def check_link(where, link):
        for k, v in mapping(path, where, link, sorted(LINK_KEYS)).items():
            if k not in LINK_KEYS:
                raise ScenarioError(f"{path}: {where}: unknown key '{k}'")
            if k == "up" and not isinstance(v, bool):
                raise ScenarioError(f"{path}: {where}.up: {v!r} is not true or false")
            if k != "up" and (not is_number(v) or v < 0):
                raise ScenarioError(f"{path}: {where}.{k}: {v!r} is not a non-negative number")
    for radio, link in mapping(path, "links", s.get("links"), list(RADIOS)).items():
        if radio not in RADIOS:
            raise ScenarioError(f"{path}: links: unknown radio '{radio}'")
        check_link(f"links.{radio}", link)
    s["goals"] = check_goals(path, s.get("goals"))
    last = -1.0
    events = s.get("events") or []
    if not isinstance(events, list):
        raise ScenarioError(f"{path}: events: expected a list of {{at_s, set, note}}, not {events!r}")
    for n, ev in enumerate(events):
        ev = mapping(path, f"events[{n}]", ev, "at_s, set, note")
        at = ev.get("at_s")
        if not is_number(at) or at < last:
            raise ScenarioError(f"{path}: events[{n}].at_s must be a number, in time order")
        last = at
        for k in ev:
            if k not in ("at_s", "set", "note"):
                raise ScenarioError(f"{path}: events[{n}]: unknown key '{k}'")
        for target, link in mapping(path, f"events[{n}].set", ev.get("set"), "EDGE/RADIO: link").items():
            edge, _, radio = str(target).partition("/")
            if edge not in edges or radio not in RADIOS:
                raise ScenarioError(f"{path}: events[{n}]: '{target}' is not EDGE/RADIO "
                                    f"(edges {edges}, radios {list(RADIOS)})")
            check_link(f"events[{n}].{target}", link)
    return s


def check_goals(path, given):
    """DEFAULT_GOALS with the scenario's `goals:` map over them, checked: each a positive
    number of ms (min_failovers a whole number >= 0), p99 <= p99.9 <= max."""
    goals = dict(DEFAULT_GOALS)
    if given is None:
        return goals
    if not isinstance(given, dict):
        raise ScenarioError(f"{path}: goals: expected a mapping of {', '.join(sorted(DEFAULT_GOALS))}")
    for k, v in given.items():
        if k not in DEFAULT_GOALS:
            raise ScenarioError(f"{path}: goals: unknown key '{k}' (known: "
                                f"{', '.join(sorted(DEFAULT_GOALS))})")
        if k == "min_failovers":
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ScenarioError(f"{path}: goals.{k}: {v!r} is not a whole number >= 0")
        elif not is_number(v) or v <= 0:
            raise ScenarioError(f"{path}: goals.{k}: {v!r} is not a positive number of ms")
        goals[k] = v if k == "min_failovers" else float(v)
    ordered = [(k, goals[k]) for k in ("p99_gap_ms", "p999_gap_ms", "max_gap_ms")
               if goals[k] is not None]
    for (ka, a), (kb, b) in zip(ordered, ordered[1:]):
        if a > b:
            raise ScenarioError(f"{path}: goals.{ka} ({a:g} ms) is above goals.{kb} ({b:g} ms)")
    return goals


def link_states(scenario, t):
    """Every (edge, radio) link's settings at scenario time t."""
    state = {(e, r): dict(scenario.get("links", {}).get(r, {})) for e in scenario["edge_names"]
             for r in RADIOS}
    for ev in scenario.get("events") or []:
        if ev["at_s"] > t:
            break
        apply_event(state, ev)
    return state


def apply_event(state, ev):
    """Applies one event's `set` to link_states' {(edge, radio): settings}."""
    for target, link in (ev.get("set") or {}).items():
        edge, _, radio = target.partition("/")
        state[(edge, radio)].update(link)


def round_trips(states, edges):
    """{edge: the smallest round trip over its up links} from link_states (edges without
    an up link are left out)."""
    out = {}
    for e in edges:
        rtts = [2 * states[(e, r)].get("delay_ms", 0) for r in RADIOS
                if states[(e, r)].get("up", True)]
        if rtts:
            out[e] = min(rtts)
    return out


def pick_nearest(rtts, edges, current=None, margin=0.0):
    """The edge with the smallest round trip (ties: the first in `edges`). With a
    `current` edge that is still reachable, another edge wins only with a round trip below
    (1 - margin) of the current's: the MDM's rule (a move must be `margin` better), so the
    verdict never asks for a move that the policy forbids."""
    best = min((e for e in edges if e in rtts), key=lambda e: rtts[e], default=None)
    if current in rtts and best is not None and not rtts[best] < (1 - margin) * rtts[current]:
        return current
    return best


def nearest(scenario, t):
    """The edge with the smallest round trip over any up link at time t (ties: first)."""
    edges = scenario["edge_names"]
    return pick_nearest(round_trips(link_states(scenario, t), edges), edges)


def nearest_changes(scenario, margin=0.0):
    """[(t, edge)] each time the nearest edge changes, to 0.1 s (an event's change counts
    from the first tenth of a second at or after it); with a margin, a change needs a round
    trip that much better (pick_nearest)."""
    edges = scenario["edge_names"]
    state = link_states(scenario, -1.0)  # the links before any event
    slots = {}  # tenth of a second -> the events in it, in order
    for ev in scenario.get("events") or []:
        if ev["at_s"] <= scenario["duration_s"]:
            slots.setdefault(max(0, math.ceil(round(ev["at_s"] * 10, 6))), []).append(ev)
    out, last = [], None
    for slot in sorted(set(slots) | {0}):
        for ev in slots.get(slot, []):
            apply_event(state, ev)
        n = pick_nearest(round_trips(state, edges), edges, last, margin)
        if n != last:
            out.append((slot / 10, n))
            last = n
    return out


def as_applied(scenario, applied):
    """The scenario with each event at the time it was really applied."""
    out = dict(scenario)
    out["events"] = [dict(ev, at_s=a) for ev, (_, a) in zip(scenario.get("events") or [], applied)]
    return out
