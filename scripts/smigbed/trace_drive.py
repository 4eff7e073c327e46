"""smigbed.trace_drive: one vehicle of a SUMO trace (smigbed.trace) as an edge-demo drive.

The vehicle's position at each step of the trace goes through the radio model
(smigbed.radio) to every (edge, radio) link's settings; each step whose settings differ
from the last becomes a scenario event, so the drive is an ordinary scenario (the same
bed, timeline, summary and verdict as --scenario). Its goals follow issue 13's rules from
the links the stream may ride (`goals_for`), never from the run.

    trace = load_fcd(path); placement = load_placement(edges_path)
    vehicle = choose_vehicle(trace, placement, margin=0.3, dwell_s=3)
    scenario = drive_for(trace, placement, vehicle, margin=0.3)
"""
import os

from .scenario import (RADIOS, apply_event, check_goals, link_states, nearest_changes,
                       pick_nearest, round_trips)
from .trace import TraceError
from .verdict import FOLLOW_SLACK_S

LOSSY_PCT = 0.5        # issue 13: above this loss, p99 may be RTT + 30 (20 ms below)
MIN_DRIVE_S = 10       # shorter: no change of edge could be followed
ABRUPT_DEATH_GAP_MS = 150.0


def _note(before, after, sample):
    """What a trace event says on the timeline: dsrc ranges entered or left ("" when only
    delays and loss moved, which the timeline does not print)."""
    said = []
    for (edge, radio), link in sorted(after.items()):
        was = before.get((edge, radio), {}).get("up", False)
        if radio == "dsrc" and link["up"] != was:
            said.append(f"{edge} dsrc {'in range' if link['up'] else 'out of range'}")
    if not said:
        return ""
    return f"trace: at ({sample.x:.0f}, {sample.y:.0f}) m: " + ", ".join(said)


def link_events(trace, placement, vehicle):
    """The scenario events of one vehicle: every (edge, radio) link at the first step, then
    the links that changed at each later step (at_s from the vehicle's first step)."""
    samples = trace.vehicles[vehicle]
    events, last = [], {}
    for sample in samples:
        links = placement.links(sample.x, sample.y)
        changed = {f"{e}/{r}": link for (e, r), link in links.items() if last.get((e, r)) != link}
        if changed:
            events.append({"at_s": round(sample.t - samples[0].t, 3), "set": changed,
                           "note": _note(last, links, sample)})
        last = links
    return events


def goals_for(scenario, margin):
    """Issue 13's goals for the links the stream may ride: the nearest edge's best link
    (with the MDM's margin) over the drive. Lossless (no loss on any such link): stall and
    p99 20 ms, largest gap 50 ms. Lossy: stall RTT + 50, p99 20 ms up to 0.5 % loss and
    RTT + 30 above, p99.9 RTT + 50, largest 2 RTT + 100, with RTT the largest such round
    trip. A best link that goes down (the car leaves the serving dsrc's range) is an
    abrupt death: largest gap at least 150 ms."""
    edges = scenario["edge_names"]
    state = link_states(scenario, -1.0)
    current, best_link, rtt_max, loss_max, dies = None, None, 0.0, 0.0, False
    for ev in scenario["events"]:
        apply_event(state, ev)
        if best_link is not None and not state[best_link].get("up", True):
            dies = True
        current = pick_nearest(round_trips(state, edges), edges, current, margin)
        if current is None:
            best_link = None
            continue
        up = [(current, r) for r in RADIOS if state[(current, r)].get("up", True)]
        best_link = min(up, key=lambda k: state[k].get("delay_ms", 0))
        rtt_max = max(rtt_max, 2 * state[best_link].get("delay_ms", 0))
        loss_max = max(loss_max, state[best_link].get("loss_pct", 0))
    if loss_max > 0:
        goals = {"stall_ms": rtt_max + 50,
                 "p99_gap_ms": rtt_max + 30 if loss_max > LOSSY_PCT else 20.0,
                 "p999_gap_ms": rtt_max + 50, "max_gap_ms": 2 * rtt_max + 100}
    else:
        goals = {"stall_ms": 20.0, "p99_gap_ms": 20.0, "max_gap_ms": 50.0}
    if dies:
        goals["max_gap_ms"] = max(goals["max_gap_ms"], ABRUPT_DEATH_GAP_MS)
    return check_goals(scenario["name"], goals)


def drive_for(trace, placement, vehicle, margin):
    """The scenario (as smigbed.scenario.load_scenario returns one) of `vehicle`'s drive."""
    if vehicle not in trace.vehicles:
        known = sorted(trace.vehicles, key=lambda v: (len(v), v))
        raise TraceError(f"{trace.path}: no vehicle {vehicle!r} (it has {len(known)}: "
                         f"{', '.join(known[:10])}{', ...' if len(known) > 10 else ''})")
    span = trace.span(vehicle)
    if span < MIN_DRIVE_S:
        raise TraceError(f"{trace.path}: vehicle {vehicle!r} is on the road for {span:g} s only "
                         f"(a drive needs {MIN_DRIVE_S} s)")
    edges = [e.name for e in placement.edges]
    scenario = {
        "name": f"trace {os.path.basename(trace.path)}, vehicle {vehicle}",
        "description": f"vehicle {vehicle} of {trace.path} past the edges of {placement.path}",
        "duration_s": span, "edges": len(edges), "edge_names": edges,
        "links": {}, "events": link_events(trace, placement, vehicle),
        "capacities": {e.name: e.capacity for e in placement.edges},
    }
    scenario["goals"] = goals_for(scenario, margin)
    return scenario


def lasting_changes(scenario, margin, dwell_s):
    """The changes of nearest edge that the verdict asks the session to follow."""
    changes = nearest_changes(scenario, margin)
    ends = [t for t, _ in changes[1:]] + [scenario["duration_s"]]
    return [(t, e) for (t, e), end in zip(changes, ends) if end - t >= dwell_s + FOLLOW_SLACK_S]


def choose_vehicle(trace, placement, margin, dwell_s):
    """The vehicle whose drive asks the most of the session: the most lasting changes of
    nearest edge, then the longest drive (ties: the smallest id)."""
    best, best_key = None, None
    for vehicle in sorted(trace.vehicles):
        if trace.span(vehicle) < MIN_DRIVE_S:
            continue
        s = drive_for(trace, placement, vehicle, margin)
        key = (len(lasting_changes(s, margin, dwell_s)), s["duration_s"])
        if best_key is None or key > best_key:
            best, best_key = vehicle, key
    if best is None:
        raise TraceError(f"{trace.path}: no vehicle is on the road for {MIN_DRIVE_S} s or more")
    return best
