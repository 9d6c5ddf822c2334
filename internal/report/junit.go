package report

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"
)

// The JUnit XML shape CI systems read (Jenkins, GitLab, GitHub actions):
// testsuites > testsuite (one per host, and one for the controller's
// preflight, gates and post) > testcase (one per step), with failure, error
// or skipped inside.
type junitSuites struct {
	XMLName  xml.Name `xml:"testsuites"`
	Name     string   `xml:"name,attr"`
	Tests    int      `xml:"tests,attr"`
	Failures int      `xml:"failures,attr"`
	Errors   int      `xml:"errors,attr"`
	// No skipped here: Jenkins' schema (junit-10.xsd) has it only on each
	// testsuite.
	Time   string       `xml:"time,attr"`
	Suites []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr,omitempty"`
	Properties *junitProps     `xml:"properties,omitempty"`
	Cases      []junitTestCase `xml:"testcase"`
}

type junitProps struct {
	Props []junitProp `xml:"property"`
}

type junitProp struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitTestCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitProblem `xml:"failure,omitempty"`
	Error     *junitProblem `xml:"error,omitempty"`
	Skipped   *junitSkipped `xml:"skipped,omitempty"`
}

type junitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

type junitSkipped struct {
	Message string `xml:"message,attr,omitempty"`
}

// WriteJUnit writes the report as JUnit XML: a test case per host-step (its
// rollback steps too), failed and rollback_failed steps as failures,
// unreachable and never-ended ones as errors, skipped ones as skipped, and
// a host that never started as one skipped case.
func (r *Report) WriteJUnit(w io.Writer) error {
	all := junitSuites{Name: r.Runbook + " " + r.RunID, Time: seconds(r.span[1].Sub(r.span[0]).Milliseconds())}
	if len(r.Controller) > 0 {
		s := junitSuite{Name: r.Runbook + ".controller"}
		for _, st := range r.Controller {
			s.add(r.Runbook+".controller", caseName(st), st)
		}
		all.add(s)
	}
	for _, h := range r.Hosts {
		s := junitSuite{Name: r.Runbook + "." + h.Name}
		if h.Started != nil {
			s.Timestamp = h.Started.Format("2006-01-02T15:04:05")
		}
		s.Properties = &junitProps{Props: []junitProp{{"host", h.Name}, {"status", h.Status}, {"batch", fmt.Sprint(h.Batch)}}}
		class := r.Runbook + "." + h.Name
		for _, st := range h.Steps {
			s.add(class, caseName(st), st)
		}
		for _, st := range h.Rollback {
			s.add(class, "rollback: "+caseName(st), st)
		}
		if h.Started == nil && len(h.Steps) == 0 {
			s.Tests++
			s.Skipped++
			s.Cases = append(s.Cases, junitTestCase{Name: "host not started", Classname: class, Time: "0.000",
				Skipped: &junitSkipped{Message: "the run ended before this host's batch"}})
		}
		all.add(s)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(all); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func (all *junitSuites) add(s junitSuite) {
	var ms int64
	for _, c := range s.Cases {
		var v float64
		fmt.Sscan(c.Time, &v)
		ms += int64(v * 1000)
	}
	s.Time = seconds(ms)
	all.Suites = append(all.Suites, s)
	all.Tests += s.Tests
	all.Failures += s.Failures
	all.Errors += s.Errors
}

func (s *junitSuite) add(class, name string, st Step) {
	c := junitTestCase{Name: name, Classname: class, Time: seconds(st.DurationMS)}
	s.Tests++
	switch st.Status {
	case "failed", "rollback_failed":
		s.Failures++
		c.Failure = &junitProblem{Message: orStatus(firstLine(st.Error), st.Status), Type: st.Status, Text: st.Error}
	case "unreachable":
		s.Errors++
		c.Error = &junitProblem{Message: orStatus(firstLine(st.Error), st.Status), Type: st.Status, Text: st.Error}
	case NeverEnded:
		s.Errors++
		c.Error = &junitProblem{Message: "the step started and never ended: the process stopped while it ran", Type: NeverEnded}
	case "skipped":
		s.Skipped++
		c.Skipped = &junitSkipped{Message: "skipped"}
	}
	s.Cases = append(s.Cases, c)
}

func caseName(st Step) string {
	name := fmt.Sprintf("%d. %s", st.Index+1, st.Name)
	switch {
	case st.Undo:
		name = "undo: " + name
	case st.Phase == "preflight", st.Phase == "post":
		name = st.Phase + ": " + name
	case st.Phase == "between_batches":
		name = fmt.Sprintf("gate after batch %d: %s", st.Batch, name)
	}
	return name
}

// orStatus is msg, or the status when there is no message: some JUnit
// readers require one.
func orStatus(msg, status string) string {
	if msg == "" {
		return status
	}
	return msg
}

func seconds(ms int64) string { return fmt.Sprintf("%.3f", float64(ms)/1000) }

func firstLine(s string) string {
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		return s[:i] + " …"
	}
	return s
}
