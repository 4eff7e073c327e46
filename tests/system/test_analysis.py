"""smigbed.analysis and smigbed.scenario's goals on synthetic data (no namespaces, no
processes): loss and duplicates from the bytes, gaps and stalls from arrival times, the
SMM's migrations, the decoder's and recorder's logs, and a scenario's goals. Unit test
(label unit), beside the system tests that use the same analysis on real runs.
"""
import os
import tempfile
import unittest

from smigbed import analysis, scenario


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
