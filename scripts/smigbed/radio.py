"""smigbed.radio: where the edge servers stand (the edges file beside a trace) and the radio
model that turns a vehicle's distance to each into the settings of its links.

The edges file (YAML; scripts/scenarios/city/city.edges.yaml):

    radio:                   # optional: the model's parameters over DEFAULT_MODEL
      dsrc: {far_delay_ms: 10}
    edges:                   # edge-1, edge-2, ... in this order
      - {id: edge-1, x: 150, y: 150, dsrc_range_m: 234, capacity: 8}

x and y are in the trace's coordinates (m; SUMO's network coordinates), dsrc_range_m is
the edge's roadside radio range, capacity the sessions it may serve (optional, default 16).
`id` is optional and, when given, must be the name the demo gives the edge, edge-<n> in
file order.

The model (docs/architecture.md, "Mobility traces"), per (vehicle, edge) at distance d:
  - dsrc: up while d <= dsrc_range_m. One-way delay rises linearly from near_delay_ms at
    the edge to far_delay_ms at the range's end; loss is 0 up to clean_fraction of the
    range, then rises linearly to edge_loss_pct at its end; rate_mbit.
  - cell: always up (the operator's network reaches every edge). One-way delay is
    near_delay_ms within near_m of the edge (its cell site is beside it), rising linearly
    to far_delay_ms at far_m and beyond; loss_pct; rate_mbit.
Delays are rounded to whole ms and loss to 0.25 %, so a car moving by a few metres does
not change the links.
"""
import math

import yaml

from .scenario import MAX_EDGES, is_number

DEFAULT_MODEL = {
    "dsrc": {"near_delay_ms": 2.0, "far_delay_ms": 8.0, "clean_fraction": 0.7,
             "edge_loss_pct": 1.0, "rate_mbit": 50.0},
    "cell": {"near_delay_ms": 10.0, "far_delay_ms": 25.0, "near_m": 300.0, "far_m": 1000.0,
             "loss_pct": 0.0, "rate_mbit": 20.0},
}
EDGE_KEYS = {"id", "x", "y", "dsrc_range_m", "capacity"}
DEFAULT_CAPACITY = 16


class PlacementError(Exception):
    pass


class Edge:
    def __init__(self, name, x, y, dsrc_range_m, capacity):
        self.name, self.x, self.y = name, x, y
        self.dsrc_range_m, self.capacity = dsrc_range_m, capacity

    def distance(self, x, y):
        return math.hypot(x - self.x, y - self.y)


class Placement:
    def __init__(self, path, edges, model):
        self.path, self.edges, self.model = path, edges, model

    def links(self, x, y):
        """{(edge name, radio): link settings} for a vehicle at (x, y)."""
        out = {}
        for e in self.edges:
            d = e.distance(x, y)
            out[(e.name, "dsrc")] = dsrc_link(self.model["dsrc"], d, e.dsrc_range_m)
            out[(e.name, "cell")] = cell_link(self.model["cell"], d)
        return out


def _ramp(lo, hi, f):
    return lo + (hi - lo) * min(1.0, max(0.0, f))


def dsrc_link(m, d, range_m):
    if d > range_m:
        return {"up": False}
    f = d / range_m
    loss = 0.0 if f <= m["clean_fraction"] else _ramp(
        0.0, m["edge_loss_pct"], (f - m["clean_fraction"]) / max(1e-9, 1 - m["clean_fraction"]))
    return {"up": True, "delay_ms": round(_ramp(m["near_delay_ms"], m["far_delay_ms"], f)),
            "loss_pct": round(loss * 4) / 4, "rate_mbit": m["rate_mbit"]}


def cell_link(m, d):
    f = (d - m["near_m"]) / max(1e-9, m["far_m"] - m["near_m"])
    return {"up": True, "delay_ms": round(_ramp(m["near_delay_ms"], m["far_delay_ms"], f)),
            "loss_pct": round(m["loss_pct"] * 4) / 4, "rate_mbit": m["rate_mbit"]}


def _model(path, given):
    model = {r: dict(p) for r, p in DEFAULT_MODEL.items()}
    if given is None:
        return model
    if not isinstance(given, dict):
        raise PlacementError(f"{path}: radio: expected a mapping of {', '.join(DEFAULT_MODEL)}")
    for radio, params in given.items():
        if radio not in DEFAULT_MODEL:
            raise PlacementError(f"{path}: radio: unknown radio {radio!r} (known: {', '.join(DEFAULT_MODEL)})")
        if not isinstance(params, dict):
            raise PlacementError(f"{path}: radio.{radio}: expected a mapping of "
                                 f"{', '.join(DEFAULT_MODEL[radio])}")
        for k, v in params.items():
            if k not in DEFAULT_MODEL[radio]:
                raise PlacementError(f"{path}: radio.{radio}: unknown key {k!r} (known: "
                                     f"{', '.join(DEFAULT_MODEL[radio])})")
            if not is_number(v) or v < 0:
                raise PlacementError(f"{path}: radio.{radio}.{k}: {v!r} is not a non-negative number")
            model[radio][k] = float(v)
    for radio, p in model.items():
        if p["far_delay_ms"] < p["near_delay_ms"]:
            raise PlacementError(f"{path}: radio.{radio}: far_delay_ms ({p['far_delay_ms']:g}) is "
                                 f"below near_delay_ms ({p['near_delay_ms']:g})")
    if model["dsrc"]["clean_fraction"] > 1:
        raise PlacementError(f"{path}: radio.dsrc.clean_fraction: {model['dsrc']['clean_fraction']:g} "
                             "is above 1 (a fraction of the range)")
    if model["cell"]["far_m"] < model["cell"]["near_m"]:
        raise PlacementError(f"{path}: radio.cell: far_m is below near_m")
    for radio, p in model.items():
        loss = p.get("edge_loss_pct", p.get("loss_pct"))
        if loss > 100:
            raise PlacementError(f"{path}: radio.{radio}: a loss of {loss:g} % is above 100")
    return model


def load_placement(path):
    """The edges file, checked: errors name the file and the field."""
    with open(path, "rb") as f:
        try:
            doc = yaml.safe_load(f.read().decode())
        except UnicodeDecodeError as e:
            raise PlacementError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
        except yaml.YAMLError as e:
            raise PlacementError(f"{path}: not YAML: {e}") from None
    if not isinstance(doc, dict):
        raise PlacementError(f"{path}: expected a mapping with edges (and optionally radio)")
    for k in doc:
        if k not in ("edges", "radio"):
            raise PlacementError(f"{path}: unknown key {k!r} (known: edges, radio)")
    model = _model(path, doc.get("radio"))
    given = doc.get("edges")
    if not isinstance(given, list) or not given:
        raise PlacementError(f"{path}: edges: expected a list of {{x, y, dsrc_range_m}}")
    if len(given) > MAX_EDGES:
        raise PlacementError(f"{path}: edges: {len(given)} edges, the demo runs at most {MAX_EDGES}")
    edges = []
    for n, e in enumerate(given, 1):
        where = f"{path}: edges[{n - 1}]"
        if not isinstance(e, dict):
            raise PlacementError(f"{where}: expected a mapping of {', '.join(sorted(EDGE_KEYS))}")
        for k in e:
            if k not in EDGE_KEYS:
                raise PlacementError(f"{where}: unknown key {k!r} (known: {', '.join(sorted(EDGE_KEYS))})")
        name = f"edge-{n}"
        if "id" in e and e["id"] != name:
            raise PlacementError(f"{where}.id: {e['id']!r}: the demo names its edges edge-1, "
                                 f"edge-2, ... in file order; this one is {name}")
        for k in ("x", "y", "dsrc_range_m"):
            if k not in e:
                raise PlacementError(f"{where}: no {k}")
            if not is_number(e[k]):
                raise PlacementError(f"{where}.{k}: {e[k]!r} is not a number")
        if e["dsrc_range_m"] <= 0:
            raise PlacementError(f"{where}.dsrc_range_m: {e['dsrc_range_m']!r} is not a positive number")
        capacity = e.get("capacity", DEFAULT_CAPACITY)
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise PlacementError(f"{where}.capacity: {capacity!r} is not a whole number >= 1")
        edges.append(Edge(name, float(e["x"]), float(e["y"]), float(e["dsrc_range_m"]), capacity))
    return Placement(path, edges, model)
