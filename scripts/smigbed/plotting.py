"""smigbed.plotting: timeline.png of an edge-demo run (matplotlib): the RTT the PMM saw to
each edge with the serving edge shaded, the player's throughput, and the gaps between
arrivals at the player against the drive's absolute goals (stall, largest gap), with every
migration marked.
"""
import os

from .analysis import gaps, read_arrivals


def draw(bed, samples, summary, path):
    """Draws the run into `path`. samples: [(t, {edge: srtt_ms or None}, serving edge)], t in
    seconds since the session started (edge_demo.Timeline)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arrivals = read_arrivals(os.path.join(bed.out, "arrivals.txt"))
    t0 = bed.t0
    fig, (ax_rtt, ax_tp, ax_gap) = plt.subplots(3, 1, figsize=(11, 8), sharex=True)
    for edge in bed.edges:
        xs = [t for t, r, _ in samples if r.get(edge) is not None]
        ys = [r[edge] for t, r, _ in samples if r.get(edge) is not None]
        ax_rtt.plot(xs, ys, label=f"{edge} srtt (PMM, from SCTP)")
    serving = [(t, s) for t, _, s in samples]
    colors = {e: c for e, c in zip(bed.edges, ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"])}
    for (ta, sa), (tb, _) in zip(serving, serving[1:]):
        if sa in colors:
            ax_rtt.axvspan(ta, tb, color=colors[sa], alpha=0.08, lw=0)
    ax_rtt.set_ylabel("RTT ms (shade: serving)")
    ax_rtt.legend(loc="upper right", fontsize=8)
    bins = {}
    sizes = [int(l.split()[1]) for l in open(os.path.join(bed.out, "arrivals.txt")) if l.strip()]
    for t, n in zip(arrivals, sizes):
        b = int((t - t0) * 2) / 2
        bins[b] = bins.get(b, 0) + n
    xs = sorted(bins)
    ax_tp.plot(xs, [bins[x] * 8 / 0.5 / 1e6 for x in xs], color="black")
    ax_tp.set_ylabel("player Mbit/s")
    gx = [t - t0 for t, _ in gaps(arrivals)]
    gy = [g * 1000 for _, g in gaps(arrivals)]
    ax_gap.plot(gx, gy, lw=0.6, color="gray", label="arrival gap")
    goals = summary["goals"]
    ax_gap.axhline(goals["stall_ms"], color="red", ls="--", lw=0.8,
                   label=f"migration stall goal {goals['stall_ms']:g} ms")
    ax_gap.axhline(goals["max_gap_ms"], color="darkred", ls=":", lw=0.8,
                   label=f"largest gap goal {goals['max_gap_ms']:g} ms")
    for m in summary["migrations"]:
        for ax in (ax_rtt, ax_tp, ax_gap):
            ax.axvline(m["started_at_s"], color="purple", lw=0.8)
        ax_gap.annotate(f"{m['from']}→{m['to']}\nstall {m['stall_ms']} ms",
                        (m["started_at_s"], max(gy or [1]) * 0.8), fontsize=7, color="purple")
    ax_gap.set_ylabel("gap ms")
    ax_gap.set_xlabel("seconds since the session started")
    ax_gap.legend(loc="upper right", fontsize=8)
    fig.suptitle(f"smig edge demo, {summary.get('scenario')} ({summary['sctp_stack']} SCTP): "
                 f"{len(summary['migrations'])} migrations, {summary['bytes_lost']} bytes lost, "
                 f"{summary['cc_errors']} CC errors; verdict {summary['verdict']['result']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
