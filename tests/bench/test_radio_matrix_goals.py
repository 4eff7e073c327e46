"""radio_matrix.goals on synthetic numbers (no namespaces, no processes): which RTT and
loss a cell is judged by, the issue's goals per class (lossless, lossy, flapping), and the
emulation rule. Unit test (label unit); the benchmark itself is bench/radio-matrix.
"""
import unittest

from radio_matrix import goals
from radio_matrix import radio_matrix


def cell(delay, loss, dsrc):
    return {"cell_delay_ms": delay, "cell_loss_pct": loss, "dsrc": dsrc}


def measured(p50=5.0, p99=8.0, p999=15.0, mx=20.0, **kw):
    m = {"bytes_lost": 0, "duplicates_delivered": 0, "cc_errors": 0, "frames_decoded": 750,
         "frames_sent": 750, "failovers": 0, "path_deaths": 0,
         "gap_ms": {"p50": p50, "p99": p99, "p99.9": p999, "max": mx}}
    m.update(kw)
    return m


class DataPathTest(unittest.TestCase):
    def test_dsrc_dead_puts_the_data_on_cell(self):
        self.assertEqual(goals.data_path(30, 0, "dead"), (60.0, 0))
        self.assertEqual(goals.data_path(75, 2, "dead"), (150.0, 2))

    def test_dsrc_alive_carries_the_data_whatever_the_cell(self):
        self.assertEqual(goals.data_path(75, 0, "alive"), (4.0, 0))
        # A lossy cell radio still makes the cell lossy, at dsrc's RTT.
        self.assertEqual(goals.data_path(75, 2, "alive"), (4.0, 2))

    def test_fading_dsrc_is_lossy_at_its_own_rtt(self):
        self.assertEqual(goals.data_path(10, 0, "fading"), (16.0, 1))
        self.assertEqual(goals.data_path(10, 2, "fading"), (16.0, 2))

    def test_flapping_is_judged_at_the_cells_rtt(self):
        self.assertEqual(goals.data_path(50, 0.5, "flapping"), (100.0, 0.5))

    def test_unknown_dsrc(self):
        with self.assertRaises(ValueError):
            goals.data_path(10, 0, "sometimes")


class LimitsTest(unittest.TestCase):
    def test_lossless(self):
        lim = goals.limits(75, 0, "dead")
        self.assertEqual((lim["p99"], lim["p99.9"], lim["max"], lim["class"]),
                         (20.0, None, 50.0, "lossless"))

    def test_lossy_up_to_half_a_percent_keeps_the_p99_goal(self):
        lim = goals.limits(30, 0.5, "dead")  # RTT 60
        self.assertEqual((lim["p99"], lim["p99.9"], lim["max"]), (20.0, 110.0, 220.0))

    def test_lossy_above_half_a_percent(self):
        lim = goals.limits(30, 1, "dead")
        self.assertEqual((lim["p99"], lim["p99.9"], lim["max"]), (90.0, 110.0, 220.0))
        lim = goals.limits(75, 1, "alive")  # RTT 4 (dsrc), lossy cell radio
        self.assertEqual((lim["p99"], lim["p99.9"], lim["max"]), (34.0, 54.0, 108.0))

    def test_flapping_max(self):
        self.assertEqual(goals.limits(10, 0, "flapping")["max"], 150.0)
        self.assertEqual(goals.limits(10, 1, "flapping")["max"], 150.0)   # 2*20+100 = 140
        self.assertEqual(goals.limits(75, 1, "flapping")["max"], 400.0)   # 2*150+100


    def test_always_judges_a_second_live_radio_by_the_lossless_goals(self):
        for dsrc in ("alive", "fading"):
            lim = goals.limits(75, 2, dsrc, "always")
            self.assertEqual((lim["p99"], lim["p99.9"], lim["max"], lim["class"]),
                             (20.0, None, 50.0, "two copies"))
        # A death costs 25 ms beyond the latency step to the cell copy.
        self.assertEqual(goals.limits(10, 2, "flapping", "always")["max"], 33.0)
        self.assertEqual(goals.limits(75, 0, "flapping", "always")["max"], 98.0)
        # No second radio: the single-path goals, whatever the policy.
        self.assertEqual(goals.limits(30, 1, "dead", "always"), goals.limits(30, 1, "dead"))
        self.assertEqual(goals.limits(75, 1, "fading", "off"), goals.limits(75, 1, "fading"))
        with self.assertRaises(ValueError):
            goals.limits(10, 0, "alive", "sometimes")


class JudgeTest(unittest.TestCase):
    def test_the_policy_picks_the_goals(self):
        m = measured(p99=30, p999=60, mx=90)  # a repair on the fading dsrc's own path
        self.assertEqual(goals.judge(cell(30, 0, "fading"), m)["verdict"], "PASS")
        self.assertEqual(goals.judge(cell(30, 0, "fading"), m, redundancy="always")["failed"],
                         ["p99 gap 30.0 > 20 ms", "max gap 90.0 > 50 ms"])


    def test_a_clean_lossless_cell_passes(self):
        j = goals.judge(cell(30, 0, "dead"), measured())
        self.assertEqual((j["verdict"], j["failed"], j["not_judged"]), ("PASS", [], []))

    def test_every_delivery_goal_is_named(self):
        j = goals.judge(cell(30, 0, "alive"), measured(
            bytes_lost=1316, duplicates_delivered=2, cc_errors=3, frames_decoded=749))
        self.assertEqual(j["verdict"], "FAIL")
        self.assertEqual(j["failed"], ["lost 1316 B", "duplicates 2", "cc errors 3", "frames 749/750"])

    def test_an_unfinished_stream_says_so(self):
        j = goals.judge(cell(30, 1, "dead"), measured(bytes_lost=159236, complete=False))
        self.assertEqual(j["failed"], ["lost 159236 B (stream unfinished at the deadline)"])

    def test_nothing_sent_is_not_every_frame_decoded(self):
        j = goals.judge(cell(30, 0, "dead"), measured(frames_sent=0, frames_decoded=0))
        self.assertEqual(j["failed"], ["frames 0/0"])
        j = goals.judge(cell(30, 0, "dead"), measured(frames_decoded=-1))
        self.assertEqual(j["failed"], ["frames: the decoder reported none (decoder.err)"])

    def test_failovers_against_real_deaths(self):
        self.assertEqual(goals.judge(cell(30, 0, "dead"), measured(failovers=1))["failed"],
                         ["failovers 1 > path deaths 0"])
        self.assertEqual(goals.judge(cell(10, 0, "flapping"), measured(failovers=3, path_deaths=3))
                         ["verdict"], "PASS")
        self.assertEqual(goals.judge(cell(10, 0, "flapping"), measured(failovers=2, path_deaths=3))
                         ["verdict"], "PASS")
        self.assertEqual(goals.judge(cell(10, 0, "dead"), measured(failovers=None))["failed"],
                         ["failovers unknown"])

    def test_lossless_timing(self):
        self.assertEqual(goals.judge(cell(10, 0, "dead"), measured(p99=20.0, mx=50.0))["verdict"], "PASS")
        j = goals.judge(cell(10, 0, "dead"), measured(p99=20.5, p999=400.0, mx=50.1))
        # No p99.9 goal on a lossless path.
        self.assertEqual(j["failed"], ["p99 gap 20.5 > 20 ms", "max gap 50.1 > 50 ms"])

    def test_fading_dsrc_is_lossy(self):
        # RTT 16 at 1 % loss: p99 <= 46, p99.9 <= 66, max <= 132.
        self.assertEqual(goals.judge(cell(75, 0, "fading"), measured(p99=46, p999=66, mx=132))
                         ["verdict"], "PASS")
        j = goals.judge(cell(75, 0, "fading"), measured(p99=47, p999=67, mx=133))
        self.assertEqual(j["failed"], ["p99 gap 47.0 > 46 ms", "p99.9 gap 67.0 > 66 ms",
                                       "max gap 133.0 > 132 ms"])

    def test_lossy_cell_with_dsrc_dead(self):
        # RTT 100 at 2 %: p99 <= 130, p99.9 <= 150, max <= 300.
        self.assertEqual(goals.judge(cell(50, 2, "dead"), measured(p99=120, p999=150, mx=300))
                         ["verdict"], "PASS")
        # At 0.5 % the p99 goal stays 20 ms.
        self.assertEqual(goals.judge(cell(50, 0.5, "dead"), measured(p99=25, p999=150, mx=300))
                         ["failed"], ["p99 gap 25.0 > 20 ms"])

    def test_flapping_max_gap(self):
        self.assertEqual(goals.judge(cell(30, 0, "flapping"), measured(mx=150, failovers=2,
                                                                       path_deaths=2))["verdict"], "PASS")
        self.assertEqual(goals.judge(cell(30, 0, "flapping"), measured(mx=151))["failed"],
                         ["max gap 151.0 > 150 ms"])

    def test_nothing_delivered_fails_the_timing_goals(self):
        m = measured()
        m["gap_ms"] = {"p50": None, "p99": None, "p99.9": None, "max": None}
        self.assertEqual(goals.judge(cell(10, 0, "dead"), m)["failed"],
                         ["p99 gap: nothing delivered", "max gap: nothing delivered"])

    def test_emulation_leaves_missed_timing_unjudged_but_judges_the_rest(self):
        j = goals.judge(cell(10, 0, "dead"), measured(p99=30, mx=80), emulated=True)
        self.assertEqual((j["verdict"], j["failed"]), ("NOT JUDGED", []))
        self.assertEqual(j["not_judged"], ["p99 gap 30.0 > 20 ms", "max gap 80.0 > 50 ms"])
        j = goals.judge(cell(10, 0, "dead"), measured(p99=30, bytes_lost=5), emulated=True)
        self.assertEqual((j["verdict"], j["failed"], j["not_judged"]),
                         ("FAIL", ["lost 5 B"], ["p99 gap 30.0 > 20 ms"]))
        # Timing met under emulation is a pass.
        self.assertEqual(goals.judge(cell(10, 0, "dead"), measured(), emulated=True)["verdict"], "PASS")


class MatrixTest(unittest.TestCase):
    def test_the_full_matrix_has_64_cells(self):
        cells = radio_matrix.cells(goals.CELL_DELAYS_MS, goals.CELL_LOSSES_PCT, goals.DSRC_MODES)
        self.assertEqual(len(cells), 64)
        self.assertEqual(len({c["id"] for c in cells}), 64)
        self.assertEqual(cells[0]["id"], "cell10ms-loss0-dsrc-dead")

    def test_the_flapping_schedule_is_seeded(self):
        a = radio_matrix.flap_schedule(7, 60)
        self.assertEqual(a, radio_matrix.flap_schedule(7, 60))
        self.assertNotEqual(a, radio_matrix.flap_schedule(8, 60))
        self.assertEqual([up for _, up in a[:4]], [False, True, False, True])  # up at 0
        times = [0.0] + [t for t, _ in a]
        for prev, t in zip(times, times[1:]):
            self.assertTrue(2.0 - 1e-3 <= t - prev <= 5.0 + 1e-3, (prev, t))
        self.assertLessEqual(a[-1][0], 60)

    def test_air_counts_both_directions_with_drops(self):
        def stats(out_pkts, out_bytes, in_pkts, in_bytes):
            d = lambda p, b: {"packets": p, "bytes": b, "passed": p, "passed_bytes": b, "dropped": 0}
            return [{"link": "cell", "out": d(out_pkts, out_bytes), "in": d(in_pkts, in_bytes)}]
        got = radio_matrix.air(stats(10, 1000, 5, 100), stats(30, 4000, 15, 600))
        self.assertEqual((got["cell"]["packets"], got["cell"]["bytes"]), (30, 3500))
        self.assertEqual(got["cell"]["edge_to_car"]["bytes"], 3000)

    def test_path_counts_from_metrics(self):
        scrape = {'smig_path_failovers_total{role="vehicle"}': 3.0,
                  'smig_path_events_total{kind="unreachable"}': 4.0,
                  'smig_path_events_total{kind="available"}': 2.0, "smig_sessions_active": 1.0}
        got = radio_matrix.path_counts(scrape)
        self.assertEqual(got, {"failovers": 3, "path_events": {"unreachable": 4, "available": 2}})


class ReportTest(unittest.TestCase):
    def doc(self, emulated=False):
        c = dict(cell(30, 1, "dead"), id="x", cell_rate_mbit=20, wall_s=41.0, failovers=1,
                 path_deaths=0, goodput_mbit=2.0,
                 air={"cell": {"bytes": 8_200_000}, "dsrc": {"bytes": 35_000}},
                 **{k: v for k, v in measured(p99=95.0).items() if k not in ("failovers",
                                                                                "path_deaths")})
        c["judged"] = goals.judge(c, c, emulated=emulated)
        c["complete"] = True
        return {"sctp_stack": "kernel" if emulated else "userland", "emulated": emulated,
                "command": "bench/radio-matrix --cell-delay 30", "seconds": 30, "seed": 1,
                "commit": "abc", "started": "today", "machine": "2 CPUs", "not_a_benchmark": False,
                "redundancy": None, "complete": True, "cells_planned": 2,
                "cells": [c, dict(cell(10, 0, "alive"), error="bed failed")]}

    def test_one_row_per_cell_with_the_failed_goals(self):
        md = radio_matrix.markdown(self.doc())
        rows = [l for l in md.splitlines() if l.startswith("| 30 ms") or l.startswith("| 10 ms")]
        self.assertEqual(len(rows), 2)
        self.assertIn("FAIL: failovers 1 > path deaths 0; p99 gap 95.0 > 90 ms", rows[0])
        self.assertIn("8.20 / 0.04", rows[0])
        self.assertIn("ERROR: bed failed", rows[1])
        self.assertIn("`bench/radio-matrix --cell-delay 30`", md)
        self.assertEqual(len({l.count("|") for l in md.splitlines() if l.startswith("|")}), 1)

    def test_the_kernel_stack_is_marked_emulated(self):
        md = radio_matrix.markdown(self.doc(emulated=True))
        self.assertIn("kernel (**emulated**", md)
        self.assertIn("p99 gap 95.0 > 90 ms (emulated, not judged)", md)
        line = radio_matrix.cell_line(1, 2, self.doc(emulated=True)["cells"][0])
        self.assertTrue(line.startswith("[1/2] cell 30 ms loss 1 % dsrc dead: FAIL"), line)


if __name__ == "__main__":
    unittest.main(verbosity=2)
