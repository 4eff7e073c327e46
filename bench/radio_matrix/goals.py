"""radio_matrix.goals: the radio matrix's cells and the issue's absolute goals.

A cell is one edge and a car with two radios: `cell` (one-way delay and loss from the
matrix, 20 Mbit/s) and `dsrc` in one of four behaviours (DSRC). judge() holds every goal
rule in one place and is a pure function of the cell's settings and its measured numbers
(tests/bench/test_radio_matrix_goals.py checks it on synthetic numbers).

The goals (issue 13), per cell:
  - 0 bytes lost, 0 duplicates delivered, 0 continuity errors, every frame decoded;
  - no failover while the active path is alive: failovers <= real path deaths;
  - lossless paths (cell loss 0 and dsrc not fading): p99 gap <= 20 ms, max <= 50 ms;
  - lossy: p99 <= 20 ms up to 0.5 % loss and <= RTT + 30 ms above it,
    p99.9 <= RTT + 50 ms, max <= 2 RTT + 100 ms;
  - flapping dsrc (abrupt death of the active path): max gap <= 150 ms.

Which RTT and which loss (data_path()):
  - RTT is that of the path carrying the data. dsrc is the vehicle's first address, so
    SCTP's primary: with dsrc alive (or fading) the data goes over dsrc, and the RTT is
    dsrc's (4 ms alive, 16 ms fading), however slow the cell. With dsrc dead the data
    goes over cell (RTT = 2 x cell delay). With dsrc flapping the data is on cell while
    dsrc is down: the cell's RTT, the longer of the two, is the one a loss can cost.
  - The loss that makes a cell lossy, and that the 0.5 % threshold compares, is the
    highest loss on either radio (the cell's, or dsrc's 1 % when fading): a lossy cell
    radio is lossy even while it carries only heartbeats, as the issue classifies it.
  - Flapping: the max gap goal is 150 ms; on a lossy cell radio it is the lossy rule's
    2 RTT + 100 ms where that is larger (a loss on cell after the failover costs a
    retransmission on the cell's RTT, which 150 ms cannot hold at 75 ms one way).

Under the redundancy policy `always` (--redundancy always) the edge sends every frame on
both radios while both are up, and the issue's redundancy goals apply to the cells with
dsrc up at all (alive, fading, flapping):
  - a second live radio: the lossless goals, p99 <= 20 ms and max <= 50 ms, whatever the
    loss (a copy lost on one radio is on its way on the other);
  - flapping: a death of dsrc costs the player no gap beyond the latency step to the
    surviving copy: max <= 25 ms + (cell one-way delay - dsrc one-way delay). The cell copy
    of each frame arrives that much later than the dsrc copy did; the issue's 25 ms
    assumes two radios of about the same delay, which a 75 ms cell is not.
With dsrc dead there is no second radio and the goals are those above. Under `off` and
`auto` (the default) every cell is judged as above.

Under software CPU emulation (the kernel stack in the project's VM under TCG) a missed
timing goal (p99, p99.9, max) is reported as not judged, with its numbers, never as
passed; everything else is judged as usual (the project's rule for emulated timing).
"""

CELL_RATE_MBIT = 20
CELL_DELAYS_MS = (10, 30, 50, 75)
CELL_LOSSES_PCT = (0, 0.5, 1, 2)
DSRC_RATE_MBIT = 50  # as in the edge demo's scenario; the matrix does not vary it
# dsrc behaviours: the dsrc link's one-way delay and loss while up; "dead" is never up.
DSRC = {
    "dead": None,
    "alive": {"delay_ms": 2, "loss_pct": 0},
    "fading": {"delay_ms": 8, "loss_pct": 1},
    "flapping": {"delay_ms": 2, "loss_pct": 0},  # up/down at random intervals (FLAP_S)
}
DSRC_MODES = tuple(DSRC)
FLAP_S = (2.0, 5.0)  # flapping: each up or down period lasts uniformly 2..5 s (seeded)

LOSSLESS_P99_MS = 20.0
LOSSLESS_MAX_MS = 50.0
LOW_LOSS_PCT = 0.5      # lossy cells up to this loss keep the lossless p99 goal
FLAPPING_MAX_MS = 150.0
REDUNDANT_DEATH_MS = 25.0  # under `always`: a death's gap beyond the latency step
REDUNDANCY_POLICIES = ("off", "auto", "always")
TIMING_GOALS = ("p99", "p99.9", "max")


def cell_id(cell_delay_ms, cell_loss_pct, dsrc):
    return f"cell{cell_delay_ms:g}ms-loss{cell_loss_pct:g}-dsrc-{dsrc}"


def data_path(cell_delay_ms, cell_loss_pct, dsrc):
    """(RTT in ms of the path carrying the data, the loss in % that classes the cell)."""
    if dsrc not in DSRC:
        raise ValueError(f"unknown dsrc behaviour '{dsrc}' (known: {', '.join(DSRC_MODES)})")
    d = DSRC[dsrc]
    loss = max(cell_loss_pct, d["loss_pct"] if d else 0)
    if dsrc in ("alive", "fading"):
        return 2.0 * d["delay_ms"], loss
    return 2.0 * cell_delay_ms, loss  # dead: all on cell; flapping: on cell while dsrc is down


def limits(cell_delay_ms, cell_loss_pct, dsrc, redundancy="auto"):
    """The timing goals of a cell under a redundancy policy: {"p99": ms, "p99.9": ms or
    None, "max": ms}, and its RTT, loss and class."""
    if redundancy not in REDUNDANCY_POLICIES:
        raise ValueError(f"unknown redundancy policy '{redundancy}' "
                         f"(known: {', '.join(REDUNDANCY_POLICIES)})")
    rtt, loss = data_path(cell_delay_ms, cell_loss_pct, dsrc)
    if redundancy == "always" and DSRC[dsrc] is not None:
        out = {"p99": LOSSLESS_P99_MS, "p99.9": None, "max": LOSSLESS_MAX_MS}
        if dsrc == "flapping":
            out["max"] = REDUNDANT_DEATH_MS + max(0.0, cell_delay_ms - DSRC[dsrc]["delay_ms"])
        out.update({"rtt_ms": rtt, "loss_pct": loss, "class": "two copies"})
        return out
    lossy = loss > 0
    if not lossy:
        out = {"p99": LOSSLESS_P99_MS, "p99.9": None, "max": LOSSLESS_MAX_MS}
    else:
        out = {"p99": LOSSLESS_P99_MS if loss <= LOW_LOSS_PCT else rtt + 30.0,
               "p99.9": rtt + 50.0, "max": 2.0 * rtt + 100.0}
    if dsrc == "flapping":
        out["max"] = max(FLAPPING_MAX_MS, out["max"]) if lossy else FLAPPING_MAX_MS
    out.update({"rtt_ms": rtt, "loss_pct": loss, "class": "lossy" if lossy else "lossless"})
    return out


def judge(cell, m, emulated=False, redundancy="auto"):
    """Every goal of the issue for one cell.

    cell: {"cell_delay_ms", "cell_loss_pct", "dsrc"}.
    m: the measured numbers: bytes_lost (complete: False when the stream had not all
       arrived by the run's deadline, so the lost bytes include its tail), duplicates_delivered, cc_errors, frames_decoded,
       frames_sent, failovers (None: unknown), path_deaths, gap_ms {"p50", "p99", "p99.9", "max"} (ms;
       None when there were no gaps to measure).
    emulated: timing measured under software CPU emulation (missed timing goals are then
       not judged).
    redundancy: the session's policy, "off", "auto" or "always" (see limits()).

    Returns {"verdict": "PASS" | "FAIL" | "NOT JUDGED", "failed": [...], "not_judged":
    [...], "limits": limits(...)}; each failed goal is a short text naming the goal, what
    was measured and the limit. FAIL when any judged goal failed; NOT JUDGED when all
    judged goals passed but a timing goal was missed under emulation.
    """
    lim = limits(cell["cell_delay_ms"], cell["cell_loss_pct"], cell["dsrc"], redundancy)
    failed, not_judged = [], []

    def expect(ok, what, timing=False):
        if ok:
            return
        (not_judged if timing and emulated else failed).append(what)

    expect(m["bytes_lost"] == 0, f"lost {m['bytes_lost']} B"
           + (" (stream unfinished at the deadline)" if m.get("complete") is False else ""))
    expect(m["duplicates_delivered"] == 0, f"duplicates {m['duplicates_delivered']}")
    expect(m["cc_errors"] == 0, f"cc errors {m['cc_errors']}")
    expect(m["frames_sent"] > 0 and m["frames_decoded"] == m["frames_sent"],
           f"frames {m['frames_decoded']}/{m['frames_sent']}" if m["frames_decoded"] >= 0
           else "frames: the decoder reported none (decoder.err)")
    if m["failovers"] is None:  # the vehicle's /metrics never answered
        expect(False, "failovers unknown")
    else:
        expect(m["failovers"] <= m["path_deaths"],
               f"failovers {m['failovers']} > path deaths {m['path_deaths']}")
    gap = m.get("gap_ms") or {}
    for name in TIMING_GOALS:
        limit = lim[name]
        if limit is None:
            continue
        value = gap.get(name)
        if value is None:
            expect(False, f"{name} gap: nothing delivered", timing=True)
        else:
            expect(value <= limit, f"{name} gap {value:.1f} > {limit:g} ms", timing=True)
    verdict = "FAIL" if failed else ("NOT JUDGED" if not_judged else "PASS")
    return {"verdict": verdict, "failed": failed, "not_judged": not_judged, "limits": lim}
