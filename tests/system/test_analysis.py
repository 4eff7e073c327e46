"""smigbed.analysis, smigbed.scenario's goals and smigbed.verdict on synthetic data (no
namespaces, no processes): loss and duplicates from the bytes, gaps, stalls and the
drive's gap percentiles from arrival times, the SMM's migrations, the decoder's and
recorder's logs, the scenarios' goals, and the verdict on summaries (absolute goals, the
session following the car, software CPU emulation). Unit test (label unit), beside the
system tests that use the same analysis and verdict on real runs.
"""
import glob
import json
import os
import subprocess
import sys
import tempfile
import unittest

from smigbed import analysis, scenario, verdict

HERE = os.path.dirname(os.path.abspath(__file__))
SCENARIOS = os.path.join(HERE, "..", "..", "scripts", "scenarios")

CHUNK = 1316


def chunks(*ids):
    """A stream of CHUNK-byte chunks, each filled with its id (ids < 256)."""
    return b"".join(bytes([i]) * CHUNK for i in ids)


class CompareStreamsTest(unittest.TestCase):
    def test_identical_streams_lose_nothing(self):
        s = chunks(1, 2, 3)
        self.assertEqual(analysis.compare_streams(s, s), (0, 0))

    def test_a_missing_chunk_is_lost_bytes(self):
        self.assertEqual(analysis.compare_streams(chunks(1, 2, 3, 4), chunks(1, 2, 4)), (CHUNK, 0))

    def test_a_chunk_delivered_twice_is_one_duplicate(self):
        self.assertEqual(analysis.compare_streams(chunks(1, 2, 3), chunks(1, 2, 2, 3)), (0, 1))

    def test_repeated_content_in_the_source_is_not_a_duplicate(self):
        # MPEG-TS stuffing: identical chunks in the source, all delivered once.
        s = chunks(1, 7, 7, 7, 2)
        self.assertEqual(analysis.compare_streams(s, s[:]), (0, 0))
        self.assertEqual(analysis.compare_streams(s, chunks(1, 7, 7, 2)), (CHUNK, 0))

    def test_a_replaced_chunk_counts_as_lost_and_extra(self):
        self.assertEqual(analysis.compare_streams(chunks(1, 2, 3), chunks(1, 9, 3)), (CHUNK, 1))

    def test_a_truncated_tail_counts_its_bytes(self):
        s = chunks(1, 2) + b"\x03" * 100
        self.assertEqual(analysis.compare_streams(s, chunks(1, 2)), (100, 0))

    def test_nothing_played(self):
        self.assertEqual(analysis.compare_streams(chunks(1, 2), b""), (2 * CHUNK, 0))


class GapsTest(unittest.TestCase):
    def test_gaps_pair_each_arrival_with_the_time_since_the_previous(self):
        got = analysis.gaps([10.0, 10.5, 10.75])
        self.assertEqual([t for t, _ in got], [10.5, 10.75])
        self.assertEqual([round(g, 9) for _, g in got], [0.5, 0.25])

    def test_fewer_than_two_arrivals_have_no_gaps(self):
        self.assertEqual(analysis.gaps([]), [])
        self.assertEqual(analysis.gaps([1.0]), [])

    def test_percentile(self):
        self.assertEqual(analysis.percentile([], 99), 0.0)
        values = list(range(1, 101))  # 1..100
        self.assertEqual(analysis.percentile(values, 99), 100)
        self.assertEqual(analysis.percentile(values, 50), 51)
        self.assertEqual(analysis.percentile([3, 1, 2], 0), 1)


def steady_arrivals(start, end, step):
    n = int(round((end - start) / step))
    return [start + k * step for k in range(n + 1)]


class StallsTest(unittest.TestCase):
    # 10 ms apart from t=100 to t=110, with a 300 ms hole after t=105.
    ARRIVALS = steady_arrivals(100.0, 105.0, 0.01) + steady_arrivals(105.3, 110.0, 0.01)

    def test_migration_windows_add_100_ms_and_cover_a_running_one(self):
        ms = [{"started_unix": 5.0, "finished_unix": 6.0}, {"started_unix": 8.0, "finished_unix": None},
              {"started_unix": 9.0}]
        self.assertEqual(analysis.migration_windows(ms), [(5.0, 6.1), (8.0, 8.1), (9.0, 9.1)])

    def test_the_stall_is_the_largest_gap_that_began_in_the_window(self):
        self.assertAlmostEqual(analysis.window_stall(self.ARRIVALS, (104.905, 105.205)), 0.3, places=6)
        # The hole began before this window: not this migration's stall.
        self.assertAlmostEqual(analysis.window_stall(self.ARRIVALS, (105.105, 105.205)), 0.0)
        self.assertAlmostEqual(analysis.window_stall(self.ARRIVALS, (107.005, 107.505)), 0.01, places=6)

    def test_a_window_without_arrivals_stalls_zero(self):
        self.assertEqual(analysis.window_stall(self.ARRIVALS, (200.0, 201.0)), 0.0)
        self.assertEqual(analysis.window_stall([], (0.0, 1.0)), 0.0)

    def test_steady_gaps_leave_out_the_windows_and_the_first_second(self):
        steady = analysis.steady_gaps(self.ARRIVALS, [(104.905, 105.205)])
        self.assertTrue(steady)
        self.assertAlmostEqual(max(steady), 0.01, places=6)
        # Left out: the 100 gaps ending by 101.0 (the first second) and the 10 that began
        # at 104.91 .. 105.00 (the window).
        self.assertEqual(len(steady), len(self.ARRIVALS) - 1 - 100 - 10)
        # Without the window the hole is a steady-state gap.
        self.assertAlmostEqual(max(analysis.steady_gaps(self.ARRIVALS, [])), 0.3, places=6)

    def test_no_arrivals_no_steady_gaps(self):
        self.assertEqual(analysis.steady_gaps([], []), [])


class DriveGapsTest(unittest.TestCase):
    # 5 ms apart from t=100 for 20 s, one 80 ms hole at t=110 and a 400 ms one in the
    # stream's first second (left out).
    ARRIVALS = ([100.0, 100.4] + steady_arrivals(100.402, 109.997, 0.005)
                + steady_arrivals(110.077, 120.002, 0.005))

    def test_the_first_second_is_left_out_and_everything_else_counts(self):
        drive = analysis.drive_gaps(self.ARRIVALS)
        # Left out: the 400 ms gap and the 120 gaps ending by 101.0.
        self.assertEqual(len(drive), len(analysis.gaps(self.ARRIVALS)) - 121)
        self.assertAlmostEqual(max(drive), 0.08, places=6)

    def test_p99_p999_and_largest_in_ms(self):
        stats = analysis.gap_stats(self.ARRIVALS)
        self.assertEqual(stats["p99_gap_ms"], 5.0)
        self.assertEqual(stats["max_gap_ms"], 80.0)
        # About 3800 gaps: p99.9 is the 4th largest; with ten 30 ms gaps it is 30.
        holes = list(self.ARRIVALS)
        for k in range(10):
            at = 1000 + 300 * k
            holes[at:] = [t + 0.025 for t in holes[at:]]
        stats = analysis.gap_stats(holes)
        self.assertEqual(stats["p999_gap_ms"], 30.0)
        self.assertEqual(stats["max_gap_ms"], 80.0)

    def test_no_arrivals(self):
        self.assertEqual(analysis.gap_stats([]), {"p99_gap_ms": 0.0, "p999_gap_ms": 0.0,
                                                  "max_gap_ms": 0.0})
        self.assertEqual(analysis.drive_gaps([]), [])


def write_scenario(d, text):
    path = os.path.join(d, "drive.yaml")
    with open(path, "w") as f:
        f.write("name: t\nduration_s: 40\nedges: 2\n" + text)
    return path


class ScenarioGoalsTest(unittest.TestCase):
    def load(self, text):
        with tempfile.TemporaryDirectory() as d:
            return scenario.load_scenario(write_scenario(d, text))

    def error(self, text):
        with tempfile.TemporaryDirectory() as d:
            path = write_scenario(d, text)
            with self.assertRaises(scenario.ScenarioError) as e:
                scenario.load_scenario(path)
            self.assertIn(path, str(e.exception))
            return str(e.exception)

    def test_defaults_without_goals(self):
        self.assertEqual(self.load("")["goals"], {"stall_ms": 20.0, "p99_gap_ms": 20.0,
                                                  "p999_gap_ms": None, "max_gap_ms": 50.0,
                                                  "min_failovers": 0})

    def test_given_goals_over_the_defaults(self):
        g = self.load("goals: {max_gap_ms: 150, p999_gap_ms: 66.5, min_failovers: 1}\n")["goals"]
        self.assertEqual(g, {"stall_ms": 20.0, "p99_gap_ms": 20.0, "p999_gap_ms": 66.5,
                             "max_gap_ms": 150.0, "min_failovers": 1})

    def test_bad_goals_name_the_field(self):
        self.assertIn("goals: unknown key 'max_stall_ms'", self.error("goals: {max_stall_ms: 5}\n"))
        self.assertIn("goals.p99_gap_ms: 0 is not a positive", self.error("goals: {p99_gap_ms: 0}\n"))
        self.assertIn("goals.stall_ms: 'fast'", self.error("goals: {stall_ms: fast}\n"))
        self.assertIn("goals.stall_ms: True", self.error("goals: {stall_ms: true}\n"))
        self.assertIn("goals.max_gap_ms: None", self.error("goals: {max_gap_ms: null}\n"))
        self.assertIn("goals.min_failovers: 1.5", self.error("goals: {min_failovers: 1.5}\n"))
        self.assertIn("goals: expected a mapping", self.error("goals: [20]\n"))
        self.assertIn("goals.p99_gap_ms (60 ms) is above goals.max_gap_ms (50 ms)",
                      self.error("goals: {p99_gap_ms: 60}\n"))

    def test_fuzzer_findings_are_scenario_errors(self):
        # What tests/fuzz/scenario_fuzz.py found (TypeError, ValueError), and their kin.
        for text, where in (("edges: null\n", "edges"), ("edges: 2.5\n", "edges"),
                            ("duration_s: ''\n", "duration_s"), ("duration_s: null\n", "duration_s"),
                            ("duration_s: .nan\n", "duration_s"),
                            ("duration_s: 30\nevents: [7]\n", "events[0]"),
                            ("duration_s: 30\nevents: 7\n", "events"),
                            ("duration_s: 30\nlinks: [cell]\n", "links"),
                            ("duration_s: 30\nlinks: {cell: {up: 1}}\n", "links.cell.up"),
                            ("duration_s: 30\nstart_edge: edge-9\n", "start_edge"),
                            ("duration_s: 30\npolicy: 3\n", "policy"),
                            ("duration_s: 30\nevents: [{at_s: 1, set: {7: {up: true}}}]\n",
                             "events[0]")):
            with self.subTest(text=text):
                with self.assertRaises(scenario.ScenarioError) as e:
                    self.load(text)
                self.assertIn(where, str(e.exception))

    def test_redundancy_policy(self):
        self.assertIsNone(self.load("").get("redundancy"))
        self.assertEqual(self.load("redundancy: always\n")["redundancy"], "always")
        self.assertIn("redundancy: 'twice' is not one of off, auto, always",
                      self.error("redundancy: twice\n"))

    def test_the_shipped_drives(self):
        names = {}
        for path in sorted(glob.glob(os.path.join(SCENARIOS, "*.yaml"))):
            s = scenario.load_scenario(path)
            names[os.path.basename(path)] = s
            with open(path) as f:
                self.assertTrue(f.readline().startswith("# "), f"{path}: a description comment first")
            self.assertIn("goals", s)
            self.assertGreaterEqual(float(s["duration_s"]), 40, path)
            self.assertTrue(s.get("description"), path)
            # Every drive makes the session migrate.
            self.assertGreater(len(scenario.nearest_changes(s)), 1, path)
        for want in ("default.yaml", "cellular-heavy.yaml", "lossy.yaml", "dsrc-flapping.yaml"):
            self.assertIn(want, names)
        # The default drive's dsrc outage kills the active path: its largest gap may be 150 ms.
        self.assertEqual(names["default.yaml"]["goals"]["max_gap_ms"], 150.0)

    def test_dsrc_flapping_flaps_every_2_to_5_s(self):
        s = scenario.load_scenario(os.path.join(SCENARIOS, "dsrc-flapping.yaml"))
        toggles = {}
        for ev in s["events"]:
            for target, link in ev["set"].items():
                if target.endswith("/dsrc") and "up" in link:
                    toggles.setdefault(target, []).append(ev["at_s"])
        for target, times in toggles.items():
            steps = [b - a for a, b in zip(times, times[1:])]
            self.assertTrue(all(2 <= d <= 5 for d in steps), f"{target}: {times}")
        self.assertGreaterEqual(sum(len(t) for t in toggles.values()), 15)


def summary(**over):
    """A passing summary of the default drive: two automatic migrations that followed the car."""
    s = {
        "migrations": [
            {"session": 1, "from": "edge-1", "to": "edge-2", "trigger": "auto", "started_at_s": 18.8,
             "duration_ms": 40.0, "stall_ms": 6.5, "result": "done", "reason": "", "rollback_reason": ""},
            {"session": 1, "from": "edge-2", "to": "edge-3", "trigger": "auto", "started_at_s": 40.5,
             "duration_ms": 40.0, "stall_ms": 7.0, "result": "done", "reason": "", "rollback_reason": ""}],
        "bytes_sent": 1000, "bytes_delivered": 1000, "bytes_lost": 0, "duplicates_delivered": 0,
        "frames_sent": 1500, "frames_decoded": 1500, "cc_errors": 0, "failovers": 1,
        "p99_gap_ms": 8.0, "p999_gap_ms": 22.0, "max_gap_ms": 104.0, "steady_p99_gap_ms": 8.0,
        "sctp_stack": "userland", "reordered_by_loopback": 0, "scenario": "default",
        "nearest_changes": [[0.0, "edge-1"], [15.1, "edge-2"], [37.1, "edge-3"]],
        "event_lateness_max_s": 0.01, "dwell_s": 3.0, "duration_s": 60.0, "start_edge": "edge-1",
        "goals": {"stall_ms": 20.0, "p99_gap_ms": 20.0, "p999_gap_ms": None, "max_gap_ms": 150.0,
                  "min_failovers": 1},
        "exit_codes": {"vehicle": 0, "edge-1": 0, "linkemu-edge-1": -15, "decoder": 1},
        "emulated_cpu": False,
    }
    s.update(over)
    return s


def statuses(v, needle):
    return [st for st, what in v.checks if needle in what]


class VerdictTest(unittest.TestCase):
    def test_the_default_drive_followed_passes(self):
        v = verdict.judge(summary())
        self.assertEqual(v.failures, [])
        self.assertEqual((v.exit_code, v.word()), (0, "PASS"))
        self.assertEqual(statuses(v, "edge-2 nearest at 15.1 s"), ["PASS"])
        self.assertEqual(statuses(v, "edge-1 nearest at 0 s: the session is already there"), ["PASS"])
        self.assertTrue(v.lines()[-1].startswith("verdict: PASS"))

    def test_with_tls_every_server_must_enforce_it(self):
        ok = {"proximity": True, "smm-0": True, "edge-1": True, "vehicle": True}
        self.assertEqual(verdict.judge(summary(tls=True, tls_enforced=ok)).failures, [])
        v = verdict.judge(summary(tls=True, tls_enforced=dict(ok, vehicle=False)))
        self.assertEqual(v.exit_code, 1)
        self.assertTrue(any("vehicle: False" in f for f in v.failures), v.failures)
        # Not checked at all is a failure too, and so is it under emulation.
        self.assertEqual(verdict.judge(summary(tls=True)).exit_code, 1)
        self.assertEqual(verdict.judge(summary(tls=True, emulated_cpu=True)).exit_code, 1)
        self.assertEqual(verdict.judge(summary(tls=False)).failures, [])

    def test_a_drive_without_migrations_fails(self):
        v = verdict.judge(summary(migrations=[]))
        self.assertEqual(v.exit_code, 1)
        self.assertEqual(len(v.failures), 2)
        self.assertTrue(all("no DONE migration to it followed; the session stayed on edge-1" in f
                            for f in v.failures))
        self.assertTrue(v.lines()[-1].startswith("verdict: FAIL"))
        # Emulation does not excuse it: nothing happened, late or not.
        self.assertEqual(verdict.judge(summary(migrations=[], emulated_cpu=True)).exit_code, 1)

    def test_a_change_skipped_under_emulation_is_not_judged_if_the_car_was_followed_later(self):
        # The CI's VM run: edge-2's window passed with no migration (the emulator's delay
        # in every srtt hid the margin), then the session went straight to edge-3.
        straight = [{"session": 1, "from": "edge-1", "to": "edge-3", "trigger": "auto",
                     "started_at_s": 40.9, "duration_ms": 723.0, "stall_ms": 31.6,
                     "result": "done", "reason": "", "rollback_reason": ""}]
        v = verdict.judge(summary(migrations=straight))
        self.assertEqual(statuses(v, "edge-2 nearest at 15.1 s"), ["FAIL"])
        v = verdict.judge(summary(migrations=straight, emulated_cpu=True))
        self.assertEqual(statuses(v, "edge-2 nearest at 15.1 s"), ["SKIP"])
        self.assertIn("it followed later (edge-1 -> edge-3 at 40.9 s)", v.skipped[0])
        self.assertEqual(v.exit_code, 77)
        # Not when nothing followed it: the last change missed fails even so.
        only_first = [dict(summary()["migrations"][0])]
        v = verdict.judge(summary(migrations=only_first, emulated_cpu=True))
        self.assertEqual(statuses(v, "edge-3 nearest at 37.1 s"), ["FAIL"])
        self.assertEqual(v.exit_code, 1)

    def test_the_car_is_followed_by_the_margin_and_targets_judged_without_it(self):
        # A trace: edge-2's round trip is best from 15.1 s but 30 % better only from 16 s.
        s = summary(margin_changes=[[0.0, "edge-1"], [16.0, "edge-2"], [37.1, "edge-3"]])
        v = verdict.judge(s)
        self.assertEqual(v.failures, [])
        self.assertEqual(statuses(v, "edge-2 nearest at 16 s: followed by a DONE migration"), ["PASS"])
        # The dwell counts from the smallest round trip: 18.8 s is after 15.1 + 3.
        self.assertEqual(statuses(v, "migration 1 started 18.8 s, edge-2 nearest since 15.1 s"),
                         ["PASS"])
        # A lasting change by the margin that nothing followed fails.
        s = summary(margin_changes=[[0.0, "edge-1"], [16.0, "edge-2"], [30.0, "edge-4"],
                                    [37.1, "edge-3"]])
        self.assertIn("edge-4 nearest at 30 s (for 7.1 s): no DONE migration to it followed; "
                      "the session stayed on edge-2", verdict.judge(s).failures)

    def test_a_rolled_back_migration_does_not_follow_the_car(self):
        s = summary()
        s["migrations"][0].update(result="rolled_back", rollback_reason="edge-2 gone")
        v = verdict.judge(s)
        self.assertIn("migration 1 result rolled_back (edge-2 gone)", v.failures)
        self.assertTrue(any("edge-2 nearest at 15.1 s" in f for f in v.failures))

    def test_following_later_than_dwell_plus_slack_is_a_timing_failure(self):
        s = summary()
        s["migrations"][0]["started_at_s"] = 15.1 + 3.0 + verdict.FOLLOW_SLACK_S + 0.5
        v = verdict.judge(s)
        self.assertEqual(statuses(v, "edge-2 nearest at 15.1 s: followed by a DONE migration 7.5 s"),
                         ["FAIL"])
        self.assertEqual(v.exit_code, 1)
        # Under software CPU emulation it is reported, not judged: skipped, never passed.
        v = verdict.judge(dict(s, emulated_cpu=True))
        self.assertEqual(statuses(v, "edge-2 nearest at 15.1 s"), ["SKIP"])
        self.assertEqual((v.failures, v.exit_code), ([], 77))
        self.assertTrue(v.word().startswith("PASS (timing not judged"))

    def test_the_migration_time_counts_until_done(self):
        s = summary()
        s["migrations"][0].update(started_at_s=21.9, duration_ms=300.0)  # done at 22.2 > 22.1
        self.assertEqual(statuses(verdict.judge(s), "edge-2 nearest at 15.1 s"), ["FAIL"])

    def test_a_short_change_of_nearest_edge_requires_nothing(self):
        # edge-2 nearest for 5 s only (< dwell 3 + slack 4): staying on edge-1 is right.
        s = summary(nearest_changes=[[0.0, "edge-1"], [15.0, "edge-2"], [20.0, "edge-1"]],
                    migrations=[])
        v = verdict.judge(s)
        self.assertEqual(statuses(v, "edge-2 nearest at 15 s"), ["INFO"])
        self.assertEqual(statuses(v, "edge-1 nearest at 20 s"), ["PASS"])
        self.assertEqual(v.exit_code, 0)
        # The last change lasts until the drive's end.
        v = verdict.judge(dict(s, nearest_changes=[[0.0, "edge-1"], [55.0, "edge-2"]]))
        self.assertEqual(statuses(v, "edge-2 nearest at 55 s"), ["INFO"])
        self.assertEqual(v.exit_code, 0)

    def test_a_migration_elsewhere_is_not_following(self):
        s = summary()
        s["migrations"][0]["to"] = "edge-3"
        s["migrations"][1]["from"] = "edge-3"
        v = verdict.judge(s)
        self.assertTrue(any("edge-2 nearest at 15.1 s" in f for f in v.failures))
        self.assertIn("migration 1 at 18.8 s went to edge-3, the nearest then is edge-2", v.failures)

    def test_a_session_opened_elsewhere_must_move_to_the_nearest(self):
        v = verdict.judge(summary(start_edge="edge-3"))
        self.assertTrue(any(f.startswith("edge-1 nearest at 0 s") for f in v.failures))

    def test_a_migration_before_the_dwell_fails(self):
        s = summary()
        s["migrations"][0]["started_at_s"] = 16.0
        v = verdict.judge(s)
        self.assertIn("migration 1 started 16.0 s, edge-2 nearest since 15.1 s, dwell 3.0 s",
                      v.failures)

    def test_the_stall_goal_is_absolute(self):
        # Not derived from the run: a quiet run (steady p99 2 ms) may stall 19 ms...
        s = summary(steady_p99_gap_ms=2.0, p99_gap_ms=2.0)
        s["migrations"][0]["stall_ms"] = 19.0
        self.assertEqual(verdict.judge(s).exit_code, 0)
        # ...and a noisy one (steady p99 30 ms) may not stall 25 ms.
        s = summary(steady_p99_gap_ms=30.0)
        s["migrations"][0]["stall_ms"] = 25.0
        self.assertIn("migration 1 stall 25.0 ms <= goal 20 ms", verdict.judge(s).failures)
        # The scenario's own goal.
        s["goals"] = dict(s["goals"], stall_ms=30.0)
        self.assertEqual(statuses(verdict.judge(s), "migration 1 stall"), ["PASS"])

    def test_gap_goals(self):
        v = verdict.judge(summary(p99_gap_ms=21.0, max_gap_ms=151.0))
        self.assertIn("p99 player gap 21.0 ms <= goal 20 ms", v.failures)
        self.assertIn("largest player gap 151.0 ms <= goal 150 ms", v.failures)
        # No p99.9 goal: reported, not judged.
        self.assertEqual(statuses(v, "p99.9 player gap 22.0 ms (no goal)"), ["INFO"])
        s = summary(p999_gap_ms=70.0)
        s["goals"] = dict(s["goals"], p999_gap_ms=66.0)
        self.assertIn("p99.9 player gap 70.0 ms <= goal 66 ms", verdict.judge(s).failures)

    def test_timing_misses_under_emulation_are_skipped_never_passed(self):
        s = summary(p99_gap_ms=40.0, max_gap_ms=300.0, emulated_cpu=True)
        s["migrations"][1]["stall_ms"] = 45.0
        v = verdict.judge(s)
        self.assertEqual(v.failures, [])
        self.assertEqual(len(v.skipped), 3)
        self.assertEqual(v.exit_code, 77)
        # Anything else that fails still fails.
        v = verdict.judge(dict(s, bytes_lost=1316))
        self.assertEqual((v.exit_code, v.failures), (1, ["bytes_lost 1316"]))

    def test_failovers_as_the_scenario_asks(self):
        self.assertIn("0 path failovers (>= 1: the active path's death must move traffic to the "
                      "other radio)", verdict.judge(summary(failovers=0)).failures)
        s = summary(failovers=0)
        s["goals"] = dict(s["goals"], min_failovers=0)
        self.assertEqual(verdict.judge(s).exit_code, 0)

    def test_stream_and_processes(self):
        v = verdict.judge(summary(bytes_delivered=900, duplicates_delivered=2, cc_errors=3,
                                  frames_decoded=1400, exit_codes={"vehicle": 134, "decoder": 1}))
        self.assertEqual(v.failures, ["duplicates_delivered 2", "bytes 900 of 1000", "cc_errors 3",
                                      "frames 1400 of 1500", "processes exited cleanly {'vehicle': 134}"])

    def test_an_old_summary_gets_the_default_goals(self):
        s = summary()
        del s["goals"], s["start_edge"], s["duration_s"]
        v = verdict.judge(s)
        self.assertIn("largest player gap 104.0 ms <= goal 50 ms", v.failures)
        self.assertEqual(len(v.failures), 1)

    def test_min_migrations(self):
        self.assertEqual(verdict.judge(summary(), min_migrations=2).exit_code, 0)
        self.assertIn("2 automatic migrations (>= 3)", verdict.judge(summary(), min_migrations=3).failures)


class CheckDemoTest(unittest.TestCase):
    """tests/system/check_demo.py is the verdict on a summary.json, with its exit code."""

    def run_check(self, s):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "summary.json")
            with open(path, "w") as f:
                json.dump(s, f)
            env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
            return subprocess.run([sys.executable, os.path.join(HERE, "check_demo.py"), path],
                                  capture_output=True, text=True, env=env)

    def test_exit_codes(self):
        r = self.run_check(summary())
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("verdict: PASS", r.stdout)
        r = self.run_check(summary(migrations=[]))
        self.assertEqual(r.returncode, 1)
        self.assertIn("FAIL edge-2 nearest at 15.1 s", r.stdout)
        r = self.run_check(summary(max_gap_ms=400.0, emulated_cpu=True))
        self.assertEqual(r.returncode, 77)
        self.assertIn("SKIP largest player gap 400.0 ms", r.stdout)


SMM_LISTING = {"migrations": [
    {"id": "m-1", "session_id": "1", "from_server_id": "edge-1", "to_server_id": "edge-2",
     "trigger": "TRIGGER_AUTO", "started_at": "2024-01-01T00:00:10Z",
     "finished_at": "2024-01-01T00:00:10.250Z", "duration": "0.250s", "phase": "PHASE_DONE",
     "reason": "nearer"},
    {"id": "m-2", "session_id": "1", "from_server_id": "edge-2", "to_server_id": "edge-3",
     "trigger": "TRIGGER_MANUAL", "started_at": "2024-01-01T00:00:20Z", "phase": "PHASE_OVERLAPPING"},
    {"id": "m-3", "session_id": "2", "from_server_id": "edge-1", "to_server_id": "edge-3",
     "started_at": "2024-01-01T00:00:30Z", "finished_at": "2024-01-01T00:00:31Z",
     "duration": "1s", "phase": "PHASE_ROLLED_BACK", "rollback_reason": "edge-3 gone"},
]}
T0 = 1704067200.0  # 2024-01-01T00:00:00Z


class ParseMigrationsTest(unittest.TestCase):
    def test_smm_listing(self):
        m1, m2, m3 = analysis.parse_migrations(SMM_LISTING)
        self.assertEqual((m1["id"], m1["session"], m1["from"], m1["to"], m1["trigger"], m1["result"]),
                         ("m-1", 1, "edge-1", "edge-2", "auto", "done"))
        self.assertEqual(m1["started_unix"], T0 + 10)
        self.assertAlmostEqual(m1["finished_unix"], T0 + 10.25)
        self.assertAlmostEqual(m1["duration_ms"], 250.0)
        self.assertEqual(m1["reason"], "nearer")
        self.assertEqual((m2["trigger"], m2["result"], m2["finished_unix"], m2["duration_ms"]),
                         ("manual", "running", None, 0.0))
        self.assertEqual((m3["result"], m3["rollback_reason"], m3["duration_ms"]),
                         ("rolled_back", "edge-3 gone", 1000.0))

    def test_nothing_listed(self):
        self.assertEqual(analysis.parse_migrations({}), [])
        self.assertEqual(analysis.parse_migrations([]), [])  # smigctl printed no single object

    def test_from_the_bed(self):
        class FakeBed:
            def smigctl(self, *args):
                self.args = args
                return SMM_LISTING
        bed = FakeBed()
        self.assertEqual(len(analysis.migrations_from_smm(bed)), 3)
        self.assertEqual(bed.args, ("migrations",))


class LogsTest(unittest.TestCase):
    def test_decoder_counts(self):
        text = ("[mpegts] Continuity check failed for pid 256\nframe=  100 fps=25\n"
                "[mpegts] Continuity check failed for pid 256\nframe=  400 fps=25 q=-0.0 Lsize=N/A\n")
        self.assertEqual(analysis.decoder_counts(text), (400, 2))
        self.assertEqual(analysis.decoder_counts("nothing decoded"), (-1, 0))
        self.assertEqual(analysis.decoder_counts("frame=N/A"), (-1, 0))

    def test_logs_from_files(self):
        with tempfile.TemporaryDirectory() as d:
            dec = os.path.join(d, "decoder.err")
            with open(dec, "w") as f:
                f.write("frame= 25 fps=0.0\n")
            self.assertEqual(analysis.decoder_result(dec), (25, 0))
            rec = os.path.join(d, "recorder.log")
            with open(rec, "w") as f:
                f.write("ready\nreordered 3\n")
            self.assertEqual(analysis.recorder_reordered(rec), 3)
            with open(rec, "w") as f:
                f.write("ready\n")
            self.assertIsNone(analysis.recorder_reordered(rec))
            self.assertIsNone(analysis.recorder_reordered(os.path.join(d, "missing.log")))
            arr = os.path.join(d, "arrivals.txt")
            with open(arr, "w") as f:
                f.write("100.5 1316\n\n100.75 1316\n")
            self.assertEqual(analysis.read_arrivals(arr), [100.5, 100.75])


if __name__ == "__main__":
    unittest.main(verbosity=2)
