"""smigbed.city_plot: fleet.png of a --trace run (matplotlib), next to timeline.png.

The map: the roads (the SUMO network beside the trace, FILE.net.xml, when there is one),
the edges with their dsrc ranges, every vehicle's track in the trace (light), the driven
vehicle's track coloured by the edge serving it, and each migration marked where the car
was when it started. Below: each edge over time, the trace's vehicles within its dsrc
range, and the sessions smig served from it.
"""
import xml.etree.ElementTree as ET

COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
          "#7f7f7f", "#bcbd22", "#17becf"]


def road_shapes(net_path):
    """[[(x, y), ...]] per lane of the SUMO network (internal junction lanes left out), or
    [] when the file cannot be read: the map is then drawn without roads."""
    shapes = []
    try:
        for _, el in ET.iterparse(net_path):
            if el.tag == "edge" and el.get("function") != "internal":
                for lane in el.iter("lane"):
                    pts = [tuple(float(v) for v in p.split(",")[:2])
                           for p in (lane.get("shape") or "").split()]
                    if len(pts) > 1:
                        shapes.append(pts)
    except (OSError, ET.ParseError, ValueError):
        return []
    return shapes


def position_at(samples, t):
    """The trace sample nearest to trace time t."""
    return min(samples, key=lambda s: abs(s.t - t))


def draw_city(trace, placement, vehicle, net_path, summary, timeline, path):
    """timeline: [(t, {edge: srtt}, serving)] since the session opened (edge_demo.Timeline)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Circle

    color = {e.name: COLORS[i % len(COLORS)] for i, e in enumerate(placement.edges)}
    fig = plt.figure(figsize=(10, 12))
    ax_map = fig.add_axes([0.08, 0.36, 0.84, 0.58])
    ax_load = fig.add_axes([0.08, 0.05, 0.84, 0.24])
    for shape in road_shapes(net_path):
        ax_map.plot(*zip(*shape), color="#cccccc", lw=2, zorder=1)
    for samples in trace.vehicles.values():
        ax_map.plot([s.x for s in samples], [s.y for s in samples], color="#999999", lw=0.5,
                    alpha=0.5, zorder=2)
    for e in placement.edges:
        ax_map.add_patch(Circle((e.x, e.y), e.dsrc_range_m, color=color[e.name], alpha=0.07, zorder=0))
        ax_map.add_patch(Circle((e.x, e.y), e.dsrc_range_m, fill=False, color=color[e.name],
                                lw=0.8, ls="--", zorder=3))
        ax_map.plot(e.x, e.y, marker="s", ms=10, color=color[e.name], zorder=5)
        ax_map.annotate(f"{e.name} (cap {e.capacity})", (e.x, e.y), xytext=(6, 6),
                        textcoords="offset points", fontsize=9, color=color[e.name], zorder=6)
    car = trace.vehicles[vehicle]
    t0 = car[0].t
    serving = [(t, s) for t, _, s in timeline if s]
    for a, b in zip(car, car[1:]):
        now = [s for t, s in serving if t <= a.t - t0]
        ax_map.plot([a.x, b.x], [a.y, b.y], lw=3, zorder=4,
                    color=color.get(now[-1] if now else None, "black"))
    ax_map.plot(car[0].x, car[0].y, marker="o", ms=8, color="black", zorder=6)
    ax_map.annotate(f"vehicle {vehicle} starts", (car[0].x, car[0].y), xytext=(6, -12),
                    textcoords="offset points", fontsize=8)
    middle = sum(e.x for e in placement.edges) / len(placement.edges)
    for n, m in enumerate(summary["migrations"], 1):
        p = position_at(car, t0 + m["started_at_s"])
        ax_map.plot(p.x, p.y, marker="X", ms=12, color="purple", zorder=7)
        right = p.x > middle  # the label towards the middle, inside the map
        ax_map.annotate(f"{n}: {m['from']}→{m['to']} at {m['started_at_s']:.1f} s, "
                        f"stall {m['stall_ms']} ms, {m['result']}", (p.x, p.y),
                        xytext=(-8 if right else 8, 4), ha="right" if right else "left",
                        textcoords="offset points", fontsize=8, color="purple", zorder=8)
    ax_map.set_aspect("equal")
    ax_map.set_xlabel("x m")
    ax_map.set_ylabel("y m")
    ax_map.set_title(f"{summary.get('scenario')}: the car's track coloured by its serving edge, "
                     "migrations as X", fontsize=10)

    at = {}  # trace time -> the samples of that step
    for samples in trace.vehicles.values():
        for s in samples:
            at.setdefault(s.t, []).append(s)
    steps = sorted(at)
    for e in placement.edges:
        in_range = [sum(1 for s in at[t] if e.distance(s.x, s.y) <= e.dsrc_range_m) for t in steps]
        ax_load.plot([t - t0 for t in steps], in_range, color=color[e.name], ls="--", lw=0.8,
                     label=f"{e.name}: vehicles in dsrc range (trace)")
        served = [1 if s == e.name else 0 for _, s in serving]
        ax_load.step([t for t, _ in serving], served, where="post", color=color[e.name], lw=2,
                     label=f"{e.name}: sessions served (smig)")
    ax_load.set_xlabel(f"seconds since vehicle {vehicle}'s session opened (trace time - {t0:g} s)")
    ax_load.set_ylabel("vehicles / sessions")
    ax_load.legend(fontsize=7, ncol=2, loc="upper right")
    fig.suptitle(f"smig fleet view: {summary['bytes_lost']} bytes lost, "
                 f"{len(summary['migrations'])} migrations; verdict {summary['verdict']['result']}")
    fig.savefig(path, dpi=100)
