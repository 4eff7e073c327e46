"""Fuzzing the edge demo's scenario loader (smigbed.scenario.load_scenario), the parser a
user's --scenario FILE meets. libFuzzer cannot drive Python and Debian has no atheris, so
this uses Hypothesis (python3-hypothesis): random YAML documents built from the format's
own keys, radios, edges and values of every type, and random bytes.

The property: load_scenario returns a checked scenario (a mapping with edge_names and
goals) or raises ScenarioError naming the file; the YAML parser's own YAMLError is
reported by the demo as it is. Any other exception (a TypeError, an AttributeError, ...) is
a crash the user would see as a traceback.

    SMIG_FUZZ_EXAMPLES=N (default 400) examples per property; no example database is kept.
    ctest: fuzz.scenario (preset fuzz). Alone: cd tests/fuzz && python3 -m unittest scenario_fuzz
"""
import os
import sys
import tempfile
import unittest

import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
from smigbed import scenario  # noqa: E402

try:
    from hypothesis import HealthCheck, given, settings, strategies as st
except ImportError:  # reported as skipped, never as passed
    given = None

EXAMPLES = int(os.environ.get("SMIG_FUZZ_EXAMPLES", "400"))
WORDS = sorted(scenario.SCENARIO_KEYS | scenario.LINK_KEYS | set(scenario.DEFAULT_GOALS)
               | set(scenario.RADIOS) | {"at_s", "set", "note", "edge-1/dsrc", "edge-2/cell",
                                         "edge-9/dsrc", "off", "auto", "always"})


def check(testcase, text):
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(text)
        path = f.name
    try:
        s = scenario.load_scenario(path)
        testcase.assertIsInstance(s, dict)
        testcase.assertIn("edge_names", s)
        testcase.assertIn("goals", s)
    except scenario.ScenarioError as e:
        testcase.assertTrue(str(e).startswith(path), str(e))
    except yaml.YAMLError:
        pass
    finally:
        os.unlink(path)


if given is not None:
    scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                        st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
                        st.sampled_from(WORDS))
    keys = st.one_of(st.sampled_from(WORDS), st.text(max_size=8), st.integers(-3, 3))
    values = st.recursive(scalars, lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=5)), max_leaves=20)
    documents = st.dictionaries(st.sampled_from(sorted(scenario.SCENARIO_KEYS)), values,
                                max_size=8)

    class ScenarioFuzzTest(unittest.TestCase):
        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow])
        @given(documents)
        def test_any_document_of_the_formats_keys_loads_or_is_a_scenario_error(self, doc):
            check(self, yaml.safe_dump(doc, allow_unicode=True))

        @settings(max_examples=EXAMPLES, deadline=None, database=None)
        @given(values)
        def test_any_yaml_value_loads_or_is_a_scenario_error(self, doc):
            check(self, yaml.safe_dump(doc, allow_unicode=True))

        @settings(max_examples=EXAMPLES, deadline=None, database=None)
        @given(st.text(max_size=200))
        def test_any_text_loads_or_is_a_scenario_or_yaml_error(self, text):
            check(self, text)

        def test_the_shipped_drives_load(self):
            d = os.path.join(scenario.ROOT, "scripts", "scenarios")
            for name in sorted(os.listdir(d)):
                if name.endswith(".yaml"):
                    with open(os.path.join(d, name)) as f:
                        check(self, f.read())
else:
    class ScenarioFuzzTest(unittest.TestCase):
        def test_needs_hypothesis(self):
            self.skipTest("needs python3-hypothesis (scripts/install-deps installs it)")


if __name__ == "__main__":
    unittest.main()
