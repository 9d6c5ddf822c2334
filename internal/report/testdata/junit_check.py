"""Checks a JUnit XML report with Python's own XML parser against the rules
of Jenkins' JUnit schema (junit-10.xsd, which GitLab and GitHub readers
follow): which elements go where, which attributes each may carry and
which it must, whole numbers and times in seconds; and that the counts add
up. Prints the totals; exits 1 with the reason on the first problem."""
import re
import sys
import xml.etree.ElementTree as ET


def fail(msg):
    print(msg)
    sys.exit(1)


def count(el, name):
    v = el.get(name)
    if v is None or not v.isdigit():
        fail(f"<{el.tag} name={el.get('name')!r}> has no whole number {name}")
    return int(v)


def seconds(el):
    try:
        return float(el.get("time"))
    except (TypeError, ValueError):
        fail(f"<{el.tag} name={el.get('name')!r}> has no time in seconds")


# junit-10.xsd's attributes, per element: (allowed, required).
ATTRS = {
    "testsuites": ({"name", "time", "tests", "failures", "disabled", "errors"}, set()),
    "testsuite": ({"name", "tests", "failures", "errors", "time", "disabled", "skipped", "timestamp",
                   "hostname", "id", "package", "file", "log", "url", "version"}, {"name", "tests"}),
    "properties": (set(), set()),
    "property": ({"name", "value"}, {"name", "value"}),
    "testcase": ({"name", "assertions", "time", "classname", "status"}, {"name"}),
    "failure": ({"message", "type"}, set()),
    "error": ({"message", "type"}, set()),
    "skipped": ({"message"}, set()),
}
TIMESTAMP = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}$")


def attrs(el):
    allowed, required = ATTRS[el.tag]
    extra = set(el.attrib) - allowed
    if extra:
        fail(f"<{el.tag} name={el.get('name')!r}> has attributes the schema does not allow: {sorted(extra)}")
    missing = required - set(el.attrib)
    if missing:
        fail(f"<{el.tag}> lacks {sorted(missing)}")
    for child in el:
        if child.tag not in ATTRS:
            fail(f"<{el.tag}> holds <{child.tag}>")
        attrs(child)


root = ET.parse(sys.argv[1]).getroot()
if root.tag != "testsuites":
    fail(f"root is <{root.tag}>, want <testsuites>")
attrs(root)
totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
for suite in root:
    if suite.tag != "testsuite":
        fail(f"<testsuites> holds <{suite.tag}>")
    if not suite.get("name"):
        fail("a <testsuite> has no name")
    seconds(suite)
    if suite.get("timestamp") is not None and not TIMESTAMP.match(suite.get("timestamp")):
        fail(f"suite {suite.get('name')!r} has timestamp {suite.get('timestamp')!r}, not ISO 8601 without a zone")
    seen = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for case in suite:
        if case.tag == "properties":
            for p in case:
                if p.tag != "property" or p.get("name") is None or p.get("value") is None:
                    fail("a <property> needs name and value")
            continue
        if case.tag != "testcase":
            fail(f"<testsuite> holds <{case.tag}>")
        if not case.get("name") or not case.get("classname"):
            fail("a <testcase> needs name and classname")
        seconds(case)
        seen["tests"] += 1
        inner = [c.tag for c in case]
        if len(inner) > 1 or any(t not in ("failure", "error", "skipped") for t in inner):
            fail(f"<testcase name={case.get('name')!r}> holds {inner}")
        for c in case:
            if c.tag in ("failure", "error") and not c.get("message"):
                fail(f"<{c.tag}> of {case.get('name')!r} has no message")
            seen[{"failure": "failures", "error": "errors", "skipped": "skipped"}[c.tag]] += 1
    for k, v in seen.items():
        if count(suite, k) != v:
            fail(f"suite {suite.get('name')!r} says {k}={suite.get(k)}, its cases {v}")
        totals[k] += v
for k, v in totals.items():
    if k != "skipped" and count(root, k) != v:
        fail(f"<testsuites> says {k}={root.get(k)}, its suites {v}")
print(" ".join(f"{k}={v}" for k, v in totals.items()))
