package runner_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/runbookhq/runbook/internal/event"
)

// TestEtcdPasswordRedacted: the inventory's etcd_password never reaches the
// journal or the events, even from a step that prints it.
func TestEtcdPasswordRedacted(t *testing.T) {
	t.Parallel()
	const secret = "etcd-r00t-Passw0rd"
	e := newEnv(t, `
runbook: etcdpw
hosts: h1
steps:
  - name: a careless step
    shell: { cmd: 'echo "password is {{ etcd_password }}"; echo "{{ etcd_password }}" >&2; exit 1' }
`, `
all:
  vars:
    ansible_connection: local
    etcd_user: root
    etcd_password: `+secret+`
  hosts:
    h1: {}
`)
	var seen []event.Event
	rec := event.SinkFunc(func(ev event.Event) error { seen = append(seen, ev); return nil })
	r := e.run(runOpts{sinks: []event.Sink{rec}})
	checkExit(t, r, 1)
	if bytes.Contains(r.raw, []byte(secret)) {
		t.Errorf("the journal holds the password:\n%s", r.raw)
	}
	for _, ev := range seen {
		if strings.Contains(ev.Error, secret) || strings.Contains(ev.Step, secret) || strings.Contains(fmt.Sprint(ev.Result, ev.Data), secret) {
			t.Errorf("an event holds the password: %+v", ev)
		}
	}
	if h := r.out.Hosts["h1"]; h.Err == nil || strings.Contains(h.Err.Error(), secret) {
		t.Errorf("outcome error: %v", h.Err)
	}
}
