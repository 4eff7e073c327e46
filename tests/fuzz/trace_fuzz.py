"""Fuzzing the edge demo's trace loaders: the SUMO FCD reader (smigbed.trace.load_fcd), the
edges file (smigbed.radio.load_placement) and a vehicle's drive made from them
(smigbed.trace_drive.drive_for), what a user's --trace FILE.xml --edges FILE meets. Like
scenario_fuzz.py, Hypothesis (python3-hypothesis) and not libFuzzer: the loaders are
Python. Documents are built from the formats' own elements, attributes and keys with values
of every kind, plus random text.

The property: each returns its result or raises its own error (TraceError,
PlacementError) naming the file; nothing else escapes. A drive from a trace that loaded is
a scenario with checked goals, or a TraceError.

    SMIG_FUZZ_EXAMPLES=N (default 400) examples per property; no example database is kept.
    ctest: fuzz.trace (preset fuzz). Alone: cd tests/fuzz && python3 -m unittest trace_fuzz
"""
import os
import sys
import tempfile
import unittest
from xml.sax.saxutils import quoteattr

import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
from smigbed import radio, trace, trace_drive  # noqa: E402

try:
    from hypothesis import HealthCheck, given, settings, strategies as st
except ImportError:  # reported as skipped, never as passed
    given = None

EXAMPLES = int(os.environ.get("SMIG_FUZZ_EXAMPLES", "400"))
PLACEMENT = radio.Placement("fuzz.edges.yaml", [radio.Edge("edge-1", 0, 0, 150, 4),
                                                radio.Edge("edge-2", 300, 0, 150, 4)],
                            radio.DEFAULT_MODEL)


def temp(text, suffix):
    with tempfile.NamedTemporaryFile("w", suffix=suffix, delete=False) as f:
        f.write(text)
        return f.name


def check_fcd(testcase, text):
    path = temp(text, ".fcd.xml")
    try:
        t = trace.load_fcd(path)
        testcase.assertTrue(t.vehicles)
        for vehicle in t.vehicles:
            try:
                s = trace_drive.drive_for(t, PLACEMENT, vehicle, margin=0.3)
                testcase.assertIn("goals", s)
            except trace.TraceError as e:
                testcase.assertTrue(str(e).startswith(path), str(e))
    except trace.TraceError as e:
        testcase.assertTrue(str(e).startswith(path), str(e))
    finally:
        os.unlink(path)


def check_edges(testcase, text):
    path = temp(text, ".edges.yaml")
    try:
        p = radio.load_placement(path)
        testcase.assertTrue(p.edges)
        p.links(0.0, 0.0)
    except radio.PlacementError as e:
        testcase.assertTrue(str(e).startswith(path), str(e))
    finally:
        os.unlink(path)


if given is not None:
    numbers = st.one_of(st.integers(-10**4, 10**4).map(str),
                        st.floats(allow_nan=True, allow_infinity=True).map(repr),
                        st.sampled_from(["", "-0", "1e999", "nan", "0x10", " 3", "12.5.1"]),
                        st.text(max_size=6))
    attributes = st.dictionaries(st.sampled_from(["id", "x", "y", "speed", "angle", "lane", "time"]),
                                 numbers, max_size=6)
    elements = st.recursive(
        st.tuples(st.sampled_from(["vehicle", "person", "timestep"]), attributes, st.just([])),
        lambda inner: st.tuples(st.sampled_from(["timestep", "vehicle", "fcd-export"]), attributes,
                                st.lists(inner, max_size=5)), max_leaves=25)

    def render(element):
        name, attrs, children = element
        a = "".join(f" {k}={quoteattr(v)}" for k, v in attrs.items())
        return f"<{name}{a}>" + "".join(render(c) for c in children) + f"</{name}>\n"

    documents = st.lists(elements, max_size=6).map(
        lambda body: '<?xml version="1.0"?>\n<fcd-export>\n' + "".join(map(render, body))
        + "</fcd-export>\n")
    # Well-formed steps of one or two vehicles, so that drives get made and judged too.
    steps = st.lists(st.tuples(st.sampled_from(["a", "b"]),
                               st.floats(-500, 800, allow_nan=False),
                               st.floats(-500, 500, allow_nan=False)), min_size=1, max_size=2,
                     unique_by=lambda v: v[0])
    drives = st.lists(steps, min_size=1, max_size=40).map(
        lambda ss: '<fcd-export>\n' + "".join(
            f'<timestep time="{t}">' + "".join(f'<vehicle id="{v}" x="{x}" y="{y}"/>' for v, x, y in s)
            + "</timestep>\n" for t, s in enumerate(ss)) + "</fcd-export>\n")

    scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**4, 10**4),
                        st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8))
    keys = st.one_of(st.sampled_from(sorted(radio.EDGE_KEYS | {"edges", "radio", "dsrc", "cell"}
                                            | set(radio.DEFAULT_MODEL["dsrc"])
                                            | set(radio.DEFAULT_MODEL["cell"]))),
                     st.text(max_size=6))
    values = st.recursive(scalars, lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=5)), max_leaves=20)
    edge_docs = st.fixed_dictionaries({}, optional={
        "edges": st.lists(st.dictionaries(st.sampled_from(sorted(radio.EDGE_KEYS)), scalars,
                                          max_size=5), max_size=4) | values,
        "radio": st.dictionaries(st.sampled_from(["dsrc", "cell", "wifi"]),
                                 st.dictionaries(keys, scalars, max_size=4) | values, max_size=2)})

    class TraceFuzzTest(unittest.TestCase):
        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow])
        @given(documents)
        def test_any_document_of_the_fcd_elements_loads_or_is_a_trace_error(self, text):
            check_fcd(self, text)

        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow])
        @given(drives)
        def test_any_drive_becomes_a_scenario_or_a_trace_error(self, text):
            check_fcd(self, text)

        @settings(max_examples=EXAMPLES, deadline=None, database=None)
        @given(st.text(max_size=300))
        def test_any_text_is_a_trace_or_a_trace_error(self, text):
            check_fcd(self, text)

        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow])
        @given(edge_docs)
        def test_any_edges_document_loads_or_is_a_placement_error(self, doc):
            check_edges(self, yaml.safe_dump(doc, allow_unicode=True))

        @settings(max_examples=EXAMPLES, deadline=None, database=None)
        @given(st.text(max_size=200))
        def test_any_text_is_edges_or_a_placement_error(self, text):
            check_edges(self, text)

        def test_the_shipped_city_loads(self):
            city = os.path.join(radio.__file__.rsplit("/scripts/", 1)[0], "scripts", "scenarios", "city")
            with open(os.path.join(city, "city.edges.yaml")) as f:
                check_edges(self, f.read())
            with open(os.path.join(city, "city.fcd.xml")) as f:
                check_fcd(self, f.read())
else:
    class TraceFuzzTest(unittest.TestCase):
        def test_needs_hypothesis(self):
            self.skipTest("needs python3-hypothesis (scripts/install-deps installs it)")


if __name__ == "__main__":
    unittest.main()
