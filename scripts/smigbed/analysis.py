"""smigbed.analysis: what a bed recorded, judged. The player's bytes against the sent
stream (bytes lost, chunks delivered twice), the recorder's arrival times (gaps, the
stall of each migration, the whole drive's gap percentiles, the steady-state p99 gap),
the decoder's log (frames,
continuity errors), and the SMM's migrations; analyse() gathers them into the
summary.json contract (see docs/architecture.md).

Everything but analyse(), count_frames() and migrations_from_smm() is a pure function of
its arguments (or of one file's text).
"""

import difflib
import os
from datetime import datetime

from .testbed import sh


# ------------------------------------------------------------------ the recorder's view
def read_arrivals(path):
    """Arrival times (unix seconds) from the recorder's ARRIVALS.txt ("time size" lines)."""
    with open(path) as f:
        return [float(line.split()[0]) for line in f if line.strip()]


def gaps(arrivals):
    """[(t, gap)] for each arrival after the first: its time and the time since the one before."""
    return [(arrivals[k], arrivals[k] - arrivals[k - 1]) for k in range(1, len(arrivals))]


def compare_streams(sent, played, chunk=1316):
    """Bytes lost and chunks delivered twice, from the bytes themselves: the played chunks
    are aligned with the sent ones (difflib), so identical-looking chunks (MPEG-TS stuffing)
    are not mistaken for duplicates."""
    if sent == played:
        return 0, 0
    a = [sent[k:k + chunk] for k in range(0, len(sent), chunk)]
    b = [played[k:k + chunk] for k in range(0, len(played), chunk)]
    lost = extra = 0
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op in ("delete", "replace"):
            lost += sum(len(c) for c in a[i1:i2])
        if op in ("insert", "replace"):
            extra += j2 - j1
    return lost, extra


def percentile(values, p):
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * p / 100))]


# ------------------------------------------------------------------ gaps and migrations
def migration_windows(migrations):
    """(start, end) in unix seconds of each migration, with 0.1 s after its end (a
    migration still running ends where it started)."""
    windows = []
    for m in migrations:
        start = m["started_unix"]
        end = (m.get("finished_unix") or start) + 0.1
        windows.append((start, end))
    return windows


def window_stall(arrivals, window):
    """The largest gap (s) that began inside `window`; 0.0 when none did. A gap belongs to
    a migration when it began inside the migration's window (one already running when the
    migration started was not caused by it)."""
    a, b = window
    return max([g for (t, g), t_prev in zip(gaps(arrivals), arrivals) if a <= t_prev <= b]
               or [0.0])


def drive_gaps(arrivals):
    """Every gap (s) of the drive after the stream's first second (the start of a stream is
    not the player's steady state), migrations and outages included."""
    return [g for t, g in gaps(arrivals) if t - arrivals[0] > 1.0]


def gap_stats(arrivals):
    """The drive's p99, p99.9 and largest gap in ms (drive_gaps), as summary.json has them."""
    drive = drive_gaps(arrivals)
    return {"p99_gap_ms": round(percentile(drive, 99) * 1000, 2),
            "p999_gap_ms": round(percentile(drive, 99.9) * 1000, 2),
            "max_gap_ms": round(max(drive or [0.0]) * 1000, 1)}


def steady_gaps(arrivals, windows):
    """The gaps (s) that began outside every window, after the stream's first second."""
    def in_window(t_prev):
        return any(a <= t_prev <= b for a, b in windows)
    return [g for (t, g), t_prev in zip(gaps(arrivals), arrivals) if not in_window(t_prev)
            and arrivals and t - arrivals[0] > 1.0]


# ------------------------------------------------------------------ logs
def decoder_counts(text):
    """(frames decoded, continuity errors) from ffmpeg's log text; frames -1 if not found."""
    frames = -1
    at = text.rfind("frame=")
    if at >= 0:
        digits = text[at + 6:].lstrip().split()[0]
        frames = int(digits) if digits.isdigit() else -1
    return frames, text.count("Continuity check failed")


def decoder_result(log_path):
    with open(log_path, errors="replace") as f:
        return decoder_counts(f.read())


def recorder_reordered(log_path):
    """The recorder's "reordered N" at exit; None if it never said."""
    try:
        with open(log_path) as f:
            for line in f:
                if line.startswith("reordered "):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def count_frames(path):
    """Video frames in a media file (ffprobe)."""
    out = sh("ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
             "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", path)
    first = out.replace(",", " ").split()
    return int(first[0]) if first else -1


# ------------------------------------------------------------------ the SMM's migrations
def parse_migrations(listed):
    """`smigctl migrations` JSON as analyse() wants it: one dict per migration, unix times."""
    items = listed.get("migrations", []) if isinstance(listed, dict) else []
    out = []
    for m in items:
        def ts(field):
            v = m.get(field)
            if not v:
                return None
            return datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp()
        dur = m.get("duration") or "0s"
        out.append({
            "id": m["id"], "session": int(m["session_id"]), "from": m["from_server_id"],
            "to": m["to_server_id"], "trigger": "auto" if m.get("trigger") == "TRIGGER_AUTO" else "manual",
            "started_unix": ts("started_at"), "finished_unix": ts("finished_at"),
            "duration_ms": float(dur.rstrip("s")) * 1000,
            "result": {"PHASE_DONE": "done", "PHASE_ROLLED_BACK": "rolled_back"}.get(m.get("phase"), "running"),
            "phase": m.get("phase"), "reason": m.get("reason", ""),
            "rollback_reason": m.get("rollback_reason", "")})
    return out


def migrations_from_smm(bed):
    """Every migration the bed's SMM knows, with unix times, as analyse() wants them."""
    return parse_migrations(bed.smigctl("migrations"))


# ------------------------------------------------------------------ the summary
def analyse(bed, migrations, failovers):
    """The summary.json contract (see docs/architecture.md) from what the bed recorded."""
    with open(bed.media, "rb") as f:
        sent = f.read()
    with open(os.path.join(bed.out, "played.ts"), "rb") as f:
        played = f.read()
    arrivals = read_arrivals(os.path.join(bed.out, "arrivals.txt"))
    lost, dups = compare_streams(sent, played)
    frames_decoded, cc_errors = decoder_result(os.path.join(bed.logs, "decoder.err"))
    windows = migration_windows(migrations)
    p99 = percentile(steady_gaps(arrivals, windows), 99) * 1000
    out_migrations = []
    for m, window in zip(migrations, windows):
        stall = window_stall(arrivals, window) * 1000
        out_migrations.append({
            "session": m["session"], "from": m["from"], "to": m["to"], "trigger": m["trigger"],
            "started_at_s": round(m["started_unix"] - bed.t0, 3),
            "duration_ms": round(m["duration_ms"], 1), "stall_ms": round(stall, 1),
            "result": m["result"], "reason": m.get("reason", ""),
            "rollback_reason": m.get("rollback_reason", "")})
    return {
        "migrations": out_migrations,
        "bytes_sent": len(sent),
        "bytes_delivered": len(played),
        "bytes_lost": lost,
        "duplicates_delivered": dups,
        "frames_sent": count_frames(bed.media),
        "frames_decoded": frames_decoded,
        "cc_errors": cc_errors,
        "failovers": failovers,
        **gap_stats(arrivals),
        # Informational, never a goal: the p99 gap outside every migration's window.
        "steady_p99_gap_ms": round(p99, 2),
        "sctp_stack": bed.stack,
        # Datagrams the loopback handed to the player's socket out of the vehicle's send
        # order; the recorder put them back in order (udp_recorder.py).
        "reordered_by_loopback": recorder_reordered(os.path.join(bed.logs, "recorder.log")),
    }
