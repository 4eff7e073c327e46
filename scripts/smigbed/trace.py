"""smigbed.trace: SUMO mobility traces, the edge demo's --trace FILE.xml.

Reads SUMO's floating car data (`sumo --fcd-output FILE.xml`): one <timestep time=".."> per
simulation step, holding one <vehicle id=".." x=".." y=".." speed=".."/> per vehicle on the
road then. Other attributes (angle, lane, pos, type, ...) and other elements (SUMO's
<person>, <container>) are ignored. Every error names the file, the line and the field:

    city.fcd.xml:42: <vehicle id="7"> x: 'abc' is not a number

    trace = load_fcd("scripts/scenarios/city/city.fcd.xml")
    trace.vehicles["7"]      # [Sample(t, x, y, speed), ...] in time order
    trace.begin, trace.end   # the first and last timestep's time, s
"""
import math
import xml.parsers.expat
from collections import namedtuple

Sample = namedtuple("Sample", "t x y speed")


class TraceError(Exception):
    pass


class Trace:
    def __init__(self, path):
        self.path = path
        self.vehicles = {}  # id -> [Sample] in time order
        self.steps = 0
        self.begin = None
        self.end = None

    def span(self, vehicle):
        samples = self.vehicles[vehicle]
        return samples[-1].t - samples[0].t


class _FcdReader:
    """expat callbacks: checks each element as it comes, so the error has its line."""

    def __init__(self, path, parser):
        self.trace = Trace(path)
        self.parser = parser
        self.root = None
        self.time = None       # the open <timestep>'s time, or None outside one
        self.in_step = set()   # vehicles already seen in the open timestep

    def fail(self, what):
        raise TraceError(f"{self.trace.path}:{self.parser.CurrentLineNumber}: {what}")

    def number(self, element, attrs, key, required=True):
        if key not in attrs:
            if required:
                self.fail(f"{element} has no {key}")
            return None
        try:
            v = float(attrs[key])
        except ValueError:
            v = math.nan
        if not math.isfinite(v):
            self.fail(f"{element} {key}: {attrs[key]!r} is not a number")
        return v

    def start(self, name, attrs):
        if self.root is None:
            if name != "fcd-export":
                self.fail(f"<{name}> is not SUMO's FCD output (<fcd-export>, from sumo --fcd-output)")
            self.root = name
            return
        if name == "timestep":
            if self.time is not None:
                self.fail("<timestep> inside a <timestep>")
            t = self.number("<timestep>", attrs, "time")
            if self.trace.end is not None and t <= self.trace.end:
                self.fail(f"<timestep> time: {t:g} is not after the previous step's {self.trace.end:g}")
            self.time = t
            self.in_step = set()
            self.trace.steps += 1
            if self.trace.begin is None:
                self.trace.begin = t
            self.trace.end = t
        elif name == "vehicle":
            if self.time is None:
                self.fail("<vehicle> outside a <timestep>")
            vid = attrs.get("id")
            if not vid:
                self.fail("<vehicle> has no id")
            element = f'<vehicle id="{vid}">'
            if vid in self.in_step:
                self.fail(f"{element} twice in the step at {self.time:g} s")
            self.in_step.add(vid)
            x = self.number(element, attrs, "x")
            y = self.number(element, attrs, "y")
            speed = self.number(element, attrs, "speed", required=False)
            if speed is not None and speed < 0:
                self.fail(f"{element} speed: {attrs['speed']!r} is negative")
            self.trace.vehicles.setdefault(vid, []).append(Sample(self.time, x, y, speed or 0.0))

    def end_element(self, name):
        if name == "timestep":
            self.time = None


def load_fcd(path):
    """The trace in `path`, checked (TraceError names the file, line and field)."""
    parser = xml.parsers.expat.ParserCreate()
    reader = _FcdReader(path, parser)
    parser.StartElementHandler = reader.start
    parser.EndElementHandler = reader.end_element
    try:
        with open(path, "rb") as f:
            parser.ParseFile(f)
    except xml.parsers.expat.ExpatError as e:
        raise TraceError(f"{path}:{e.lineno}: not well-formed XML: "
                         f"{xml.parsers.expat.ErrorString(e.code)}") from None
    trace = reader.trace
    if reader.root is None:
        raise TraceError(f"{path}: empty: no <fcd-export>")
    if not trace.vehicles:
        raise TraceError(f"{path}: no <vehicle> in any <timestep>: nothing to drive")
    return trace
