"""Checks a JUnit XML report with Python's own XML parser: the shape CI
systems read (Jenkins' and GitLab's JUnit schema), and counts that add up.
Prints the totals; exits 1 with the reason on the first problem."""
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


root = ET.parse(sys.argv[1]).getroot()
if root.tag != "testsuites":
    fail(f"root is <{root.tag}>, want <testsuites>")
totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
for suite in root:
    if suite.tag != "testsuite":
        fail(f"<testsuites> holds <{suite.tag}>")
    if not suite.get("name"):
        fail("a <testsuite> has no name")
    seconds(suite)
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
    if count(root, k) != v:
        fail(f"<testsuites> says {k}={root.get(k)}, its suites {v}")
print(" ".join(f"{k}={v}" for k, v in totals.items()))
