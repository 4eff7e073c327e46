"""Mobility traces (smigbed.trace, smigbed.radio, smigbed.trace_drive): SUMO FCD files and
edges files read and checked, errors naming file, line and field; the radio model; one
vehicle's drive as a scenario, its goals and the vehicle the demo picks. Unit test (label
unit): cd tests/system && PYTHONPATH=../../scripts python3 -m unittest -v test_trace
"""
import os
import tempfile
import unittest

from smigbed import radio, scenario, trace, trace_drive

CITY = os.path.join(scenario.ROOT, "scripts", "scenarios", "city")

HEADER = '<?xml version="1.0" encoding="UTF-8"?>\n<fcd-export>\n'


def write(text, suffix):
    f = tempfile.NamedTemporaryFile("w", suffix=suffix, delete=False)
    f.write(text)
    f.close()
    return f.name


def fcd(steps):
    """An FCD file: steps = [(t, [(id, x, y), ...]), ...]."""
    body = "".join(
        f'    <timestep time="{t}">\n' + "".join(
            f'        <vehicle id="{v}" x="{x}" y="{y}" angle="90" speed="10.0" lane="a_0"/>\n'
            for v, x, y in vehicles) + "    </timestep>\n" for t, vehicles in steps)
    return HEADER + body + "</fcd-export>\n"


class FcdTest(unittest.TestCase):
    def load(self, text):
        path = write(text, ".fcd.xml")
        self.addCleanup(os.unlink, path)
        return path, trace.load_fcd

    def error(self, text):
        path, load = self.load(text)
        with self.assertRaises(trace.TraceError) as e:
            load(path)
        self.assertTrue(str(e.exception).startswith(path), e.exception)
        return str(e.exception)[len(path):]

    def test_reads_each_vehicles_samples_in_time_order(self):
        path, load = self.load(fcd([(0, [("a", 0, 0)]), (1, [("a", 10, 0), ("b", 5, 5)]),
                                    (2.5, [("b", 5, 20)])]))
        t = load(path)
        self.assertEqual(sorted(t.vehicles), ["a", "b"])
        self.assertEqual([(s.t, s.x, s.y) for s in t.vehicles["b"]], [(1, 5, 5), (2.5, 5, 20)])
        self.assertEqual((t.begin, t.end, t.steps), (0, 2.5, 3))
        self.assertEqual(t.span("b"), 1.5)

    def test_the_shipped_city_loads(self):
        t = trace.load_fcd(os.path.join(CITY, "city.fcd.xml"))
        self.assertGreaterEqual(len(t.vehicles), 20)
        self.assertGreaterEqual(t.end - t.begin, 110)

    def test_bad_input_names_the_line_and_the_field(self):
        good = fcd([(0, [("a", 0, 0)]), (1, [("a", 1, 0)])])
        self.assertEqual(self.error(good.replace('x="1"', 'x="east"')),
                         ':7: <vehicle id="a"> x: \'east\' is not a number')
        self.assertEqual(self.error(good.replace('y="0" angle="90" speed="10.0" lane="a_0"/>\n    </t',
                                                 'angle="90"/>\n    </t', 1)),
                         ':4: <vehicle id="a"> has no y')
        self.assertEqual(self.error(good.replace('time="1"', 'time="0"')),
                         ":6: <timestep> time: 0 is not after the previous step's 0")
        self.assertEqual(self.error(good.replace('x="1"', 'x="inf"')),
                         ':7: <vehicle id="a"> x: \'inf\' is not a number')
        self.assertEqual(self.error(good.replace('speed="10.0"', 'speed="-3"', 1)),
                         ':4: <vehicle id="a"> speed: \'-3\' is negative')
        self.assertEqual(self.error(good.replace(' id="a"', "", 1)), ":4: <vehicle> has no id")
        self.assertIn(":6: not well-formed XML", self.error(good.replace("</timestep>", "</timestep", 1)))
        self.assertEqual(self.error(fcd([(0, [("a", 0, 0), ("a", 1, 1)])])),
                         ':5: <vehicle id="a"> twice in the step at 0 s')
        self.assertIn("is not SUMO's FCD output", self.error("<routes></routes>"))
        self.assertIn("no <vehicle> in any <timestep>", self.error(fcd([(0, [])])))
        self.assertIn("not well-formed XML", self.error(""))
        self.assertEqual(self.error(HEADER + '<vehicle id="a" x="0" y="0"/></fcd-export>'),
                         ":3: <vehicle> outside a <timestep>")

    def test_a_missing_file_is_an_os_error(self):
        with self.assertRaises(OSError):
            trace.load_fcd("/nonexistent/city.fcd.xml")


class PlacementTest(unittest.TestCase):
    def error(self, text):
        path = write(text, ".edges.yaml")
        self.addCleanup(os.unlink, path)
        with self.assertRaises(radio.PlacementError) as e:
            radio.load_placement(path)
        self.assertTrue(str(e.exception).startswith(path), e.exception)
        return str(e.exception)[len(path):]

    def test_the_shipped_edges_load(self):
        p = radio.load_placement(os.path.join(CITY, "city.edges.yaml"))
        self.assertEqual([e.name for e in p.edges], ["edge-1", "edge-2", "edge-3", "edge-4"])
        self.assertEqual({e.capacity for e in p.edges}, {8})

    def test_a_file_that_is_not_utf8_is_a_placement_error(self):
        with tempfile.NamedTemporaryFile("wb", suffix=".edges.yaml", delete=False) as f:
            f.write(b"edges:\n  - {x: \xff}\n")
        self.addCleanup(os.unlink, f.name)
        with self.assertRaisesRegex(radio.PlacementError, "not UTF-8 text"):
            radio.load_placement(f.name)

    def test_bad_input_names_the_field(self):
        one = "edges:\n  - {x: 0, y: 0, dsrc_range_m: 200}\n"
        self.assertEqual(self.error(one.replace("x: 0", "x: left")), ": edges[0].x: 'left' is not a number")
        self.assertEqual(self.error(one.replace("x: 0, ", "")), ": edges[0]: no x")
        self.assertEqual(self.error(one.replace("200", "0")),
                         ": edges[0].dsrc_range_m: 0 is not a positive number")
        self.assertIn("edges[0].id: 'rsu-a': the demo names its edges edge-1",
                      self.error(one.replace("x: 0", "id: rsu-a, x: 0")))
        self.assertIn("edges[0].capacity: 0 is not a whole number",
                      self.error(one.replace("x: 0", "capacity: 0, x: 0")))
        self.assertIn("edges[0]: unknown key 'range'", self.error(one.replace("dsrc_range_m", "range")))
        self.assertIn("radio: unknown radio 'wifi'", self.error(one + "radio: {wifi: {}}\n"))
        self.assertIn("radio.dsrc: unknown key 'delay'", self.error(one + "radio: {dsrc: {delay: 3}}\n"))
        self.assertIn("radio.cell.far_delay_ms: -1 is not a non-negative number",
                      self.error(one + "radio: {cell: {far_delay_ms: -1}}\n"))
        self.assertIn("far_delay_ms (1) is below near_delay_ms (2)",
                      self.error(one + "radio: {dsrc: {far_delay_ms: 1}}\n"))
        self.assertIn("edges: expected a list", self.error("edges: []\n"))
        self.assertIn("unknown key 'servers'", self.error("servers: []\n"))
        self.assertIn("not YAML", self.error("edges: [\n"))
        self.assertIn("17 edges, the demo runs at most 16",
                      self.error("edges:\n" + "  - {x: 0, y: 0, dsrc_range_m: 1}\n" * 17))


class RadioModelTest(unittest.TestCase):
    m = radio.DEFAULT_MODEL

    def test_dsrc_fades_with_distance_and_ends_at_its_range(self):
        self.assertEqual(radio.dsrc_link(self.m["dsrc"], 0, 200),
                         {"up": True, "delay_ms": 2, "loss_pct": 0.0, "rate_mbit": 50.0})
        self.assertEqual(radio.dsrc_link(self.m["dsrc"], 140, 200)["loss_pct"], 0.0)  # 0.7 of range
        self.assertEqual(radio.dsrc_link(self.m["dsrc"], 170, 200)["loss_pct"], 0.5)
        self.assertEqual(radio.dsrc_link(self.m["dsrc"], 200, 200),
                         {"up": True, "delay_ms": 8, "loss_pct": 1.0, "rate_mbit": 50.0})
        self.assertEqual(radio.dsrc_link(self.m["dsrc"], 200.1, 200), {"up": False})

    def test_cell_is_always_up_and_slower_far_from_the_edge(self):
        self.assertEqual(radio.cell_link(self.m["cell"], 100)["delay_ms"], 10)
        self.assertEqual(radio.cell_link(self.m["cell"], 650)["delay_ms"], 18)  # half way: 17.5
        self.assertEqual(radio.cell_link(self.m["cell"], 5000),
                         {"up": True, "delay_ms": 25, "loss_pct": 0.0, "rate_mbit": 20.0})


class TraceDriveTest(unittest.TestCase):
    def setUp(self):
        self.placement = radio.Placement("two.edges.yaml", [
            radio.Edge("edge-1", 0, 0, 200, 4), radio.Edge("edge-2", 400, 0, 200, 4)],
            radio.DEFAULT_MODEL)
        # A car from edge-1 to edge-2 at 10 m/s: 0..400 m in 40 s, then parked 20 s.
        steps = [(t, [("car", min(400, 10 * t), 0)]) for t in range(61)]
        path = write(fcd(steps), ".fcd.xml")
        self.addCleanup(os.unlink, path)
        self.trace = trace.load_fcd(path)

    def test_a_drive_is_a_scenario_of_link_changes(self):
        s = trace_drive.drive_for(self.trace, self.placement, "car", margin=0.3)
        self.assertEqual((s["duration_s"], s["edge_names"]), (60, ["edge-1", "edge-2"]))
        first = s["events"][0]
        self.assertEqual((first["at_s"], len(first["set"])), (0, 4))  # every link at the start
        self.assertEqual(first["set"]["edge-2/dsrc"], {"up": False})
        # Later events carry only what changed, and the parked car changes nothing.
        self.assertTrue(all(0 < len(ev["set"]) < 4 for ev in s["events"][1:]))
        self.assertLessEqual(s["events"][-1]["at_s"], 40)
        notes = [(ev["at_s"], ev["note"]) for ev in s["events"] if ev["note"]]
        self.assertEqual(notes[1:], [(20, "trace: at (200, 0) m: edge-2 dsrc in range"),
                                     (21, "trace: at (210, 0) m: edge-1 dsrc out of range")])
        # The MDM's margin: edge-2 is nearest only once its round trip is 30 % better.
        changes = scenario.nearest_changes(s, 0.3)
        self.assertEqual([e for _, e in changes], ["edge-1", "edge-2"])
        # At 21 s edge-1's dsrc is gone and its cell takes 20 ms; edge-2's dsrc, 14 ms, is
        # exactly 30 % better, not more: the change comes at 25 s, at 12 ms.
        self.assertEqual(changes[1][0], 25.0)
        without_margin = scenario.nearest_changes(s)
        self.assertEqual(without_margin, [(0.0, "edge-1"), (21.0, "edge-2")])

    def test_goals_follow_issue_13s_rules_for_the_links_ridden(self):
        s = trace_drive.drive_for(self.trace, self.placement, "car", margin=0.3)
        # Lossy (1 % at the range's end), the largest round trip edge-1's cell at 20 ms,
        # and the car leaves the serving dsrc's range: an abrupt death.
        self.assertEqual(s["goals"], {"stall_ms": 70.0, "p99_gap_ms": 50.0, "p999_gap_ms": 70.0,
                                      "max_gap_ms": 150.0, "min_failovers": 0})
        lossless = radio.Placement("p", self.placement.edges, {
            "dsrc": dict(radio.DEFAULT_MODEL["dsrc"], edge_loss_pct=0.0),
            "cell": radio.DEFAULT_MODEL["cell"]})
        s = trace_drive.drive_for(self.trace, lossless, "car", margin=0.3)
        self.assertEqual(s["goals"], {"stall_ms": 20.0, "p99_gap_ms": 20.0, "p999_gap_ms": None,
                                      "max_gap_ms": 150.0, "min_failovers": 0})

    def test_unknown_and_short_vehicles_are_errors(self):
        with self.assertRaisesRegex(trace.TraceError, "no vehicle 'bus' \\(it has 1: car\\)"):
            trace_drive.drive_for(self.trace, self.placement, "bus", margin=0.3)
        path = write(fcd([(t, [("v", t, 0)]) for t in range(5)]), ".fcd.xml")
        self.addCleanup(os.unlink, path)
        short = trace.load_fcd(path)
        with self.assertRaisesRegex(trace.TraceError, "on the road for 4 s only"):
            trace_drive.drive_for(short, self.placement, "v", margin=0.3)
        with self.assertRaisesRegex(trace.TraceError, "no vehicle is on the road for 10 s"):
            trace_drive.choose_vehicle(short, self.placement, 0.3, 3)

    def test_the_demo_picks_the_vehicle_that_changes_edge_most(self):
        t = trace.load_fcd(os.path.join(CITY, "city.fcd.xml"))
        p = radio.load_placement(os.path.join(CITY, "city.edges.yaml"))
        chosen = trace_drive.choose_vehicle(t, p, 0.3, 3)
        counts = {v: len(trace_drive.lasting_changes(trace_drive.drive_for(t, p, v, 0.3), 0.3, 3))
                  for v in t.vehicles if t.span(v) >= trace_drive.MIN_DRIVE_S}
        self.assertEqual(counts[chosen], max(counts.values()))
        self.assertGreaterEqual(counts[chosen], 3)  # the start edge and two moves


if __name__ == "__main__":
    unittest.main()
