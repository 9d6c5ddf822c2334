package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// probeTimeout bounds each look at a port: loopback answers at once or not at all.
var probeTimeout = 2 * time.Second

// runningPID returns the pid in m's pidfile when it names a live etcd of this
// member (its command line has the member's data dir), else 0. A pid that a
// stale pidfile shares with an unrelated process is not ours.
func runningPID(m member) int {
	data, err := os.ReadFile(m.pidfile())
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return 0
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return 0
	}
	args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
	for i, a := range args {
		if a == "--data-dir="+m.dataDir() || a == "--data-dir" && i+1 < len(args) && args[i+1] == m.dataDir() {
			if zombie(pid) {
				return 0
			}
			return pid
		}
	}
	return 0
}

// zombie reports whether pid has exited and waits for its parent to reap it.
func zombie(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name, which may itself hold ") ".
	s := string(stat)
	i := strings.LastIndex(s, ") ")
	return i >= 0 && i+2 < len(s) && (s[i+2] == 'Z' || s[i+2] == 'X')
}

// portState is what a connection to a port found.
type portState struct {
	Port int
	Open bool   // something accepts connections
	Note string // when not open and not refused: what happened instead
}

func dialPort(ctx context.Context, addr string, port int) portState {
	d := net.Dialer{Timeout: probeTimeout}
	c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(addr, strconv.Itoa(port)))
	if err == nil {
		c.Close()
		return portState{Port: port, Open: true}
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return portState{Port: port}
	}
	// A timeout or an odd error: not known to be free, so not free.
	return portState{Port: port, Open: true, Note: err.Error()}
}

// identity is who answered as etcd on a client port.
type identity struct {
	ClusterID  uint64
	MemberID   uint64
	Name       string // of the member that answered, from its member list
	Version    string
	ClientURLs []string
	Members    []string // names of every member
}

// identify asks the etcd on url who it is, through etcd's own client.
func identify(ctx context.Context, url string) (*identity, error) {
	c, err := clientv3.New(clientv3.Config{
		Endpoints: []string{url}, DialTimeout: probeTimeout, Logger: zap.NewNop(),
		// A port that is not etcd must fail fast, not be retried.
		MaxUnaryRetries: 1,
	})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	st, err := c.Status(ctx, url)
	if err != nil {
		return nil, err
	}
	id := &identity{ClusterID: st.Header.ClusterId, MemberID: st.Header.MemberId, Version: st.Version}
	ml, err := c.MemberList(ctx, clientv3.WithSerializable())
	if err != nil {
		return nil, err
	}
	for _, m := range ml.Members {
		id.Members = append(id.Members, m.Name)
		if m.ID == id.MemberID {
			id.Name, id.ClientURLs = m.Name, m.ClientURLs
		}
	}
	return id, nil
}

// describeHTTP says what answers GET path on addr:port, for a refusal.
func describeHTTP(ctx context.Context, addr string, port int, path string) string {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	url := fmt.Sprintf("http://%s%s", net.JoinHostPort(addr, strconv.Itoa(port)), path)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err.Error()
	}
	resp, err := http.DefaultClient.Do(req)
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Sprintf("something accepts connections but does not answer GET %s within %s", path, probeTimeout)
	}
	if err != nil {
		return fmt.Sprintf("something accepts connections but does not answer HTTP (%s)", shortErr(err))
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	s := fmt.Sprintf("an HTTP server answers GET %s with %q", path, resp.Status)
	if srv := resp.Header.Get("Server"); srv != "" {
		s += fmt.Sprintf(", Server %q", srv)
	}
	if cid := resp.Header.Get("X-Etcd-Cluster-Id"); cid != "" {
		s += ", etcd cluster " + cid
	}
	if b := printable(body); b != "" {
		s += fmt.Sprintf(": %q", b)
	}
	return s
}

// shortErr drops the request that net/http repeats in its errors.
func shortErr(err error) string {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) && ue.Unwrap() != nil {
		return ue.Unwrap().Error()
	}
	return err.Error()
}

// printable keeps the start of a body fit for a one-line message.
func printable(b []byte) string {
	s := strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return ' '
	}, string(b))
	s = strings.TrimSpace(s)
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return s
}

// verdict is what probe decides for one member.
type verdict struct {
	State string // "running", "free", "answers" or "foreign"
	PID   int
	Why   string // for foreign: what holds which port
}

// decide is probe's rule for member m: its own live process wins; a member
// with nothing on its ports is free; the lab's own cluster answering as m
// is this lab's; anything else is foreign. ident is nil when the client
// port did not answer as etcd (identErr says why).
func decide(m member, pid int, ports []portState, recorded uint64, ident *identity, identErr error, describe func(portState) string) verdict {
	if pid > 0 {
		return verdict{State: "running", PID: pid}
	}
	var open []portState
	for _, p := range ports {
		if p.Open {
			open = append(open, p)
		}
	}
	if len(open) == 0 {
		return verdict{State: "free"}
	}
	where := func(p portState) string { return fmt.Sprintf("%s:%d", m.Addr, p.Port) }
	if ident != nil {
		who := fmt.Sprintf("etcd %s member %q of cluster %x", ident.Version, ident.Name, ident.ClusterID)
		switch {
		case recorded == 0:
			return verdict{State: "foreign", Why: fmt.Sprintf("%s is taken by %s, and this lab has no cluster yet", where(ports[0]), who)}
		case ident.ClusterID != recorded:
			return verdict{State: "foreign", Why: fmt.Sprintf("%s is taken by %s, not this lab's cluster %x", where(ports[0]), who, recorded)}
		case ident.Name != m.Name || !contains(ident.ClientURLs, m.clientURL()):
			return verdict{State: "foreign", Why: fmt.Sprintf("%s is taken by %s (client URLs %s) of this lab's cluster, where %s should be",
				where(ports[0]), who, strings.Join(ident.ClientURLs, ","), m.Name)}
		}
		return verdict{State: "answers"}
	}
	p := open[0]
	what := describe(p)
	if p.Port == clientPort && identErr != nil {
		what += fmt.Sprintf("; it does not answer as etcd (%s)", shortErr(identErr))
	}
	if p.Note != "" {
		what = fmt.Sprintf("a connection neither opens nor is refused (%s)", p.Note)
	}
	return verdict{State: "foreign", Why: fmt.Sprintf("%s is taken: %s", where(p), what)}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// probePaths are asked on each port to say what answers there.
var probePaths = map[int]string{clientPort: "/version", peerPort: "/members", metricsPort: "/health"}

func (l *lab) probe(ctx context.Context, stdout, stderr io.Writer) int {
	recorded, err := l.recordedClusterID()
	if err != nil {
		fmt.Fprintln(stderr, "labctl:", err)
		return exitFailed
	}
	code := exitOK
	for _, m := range l.members {
		pid := runningPID(m)
		var (
			ports    []portState
			ident    *identity
			identErr error
		)
		if pid == 0 {
			for _, port := range []int{clientPort, peerPort, metricsPort} {
				ports = append(ports, dialPort(ctx, m.Addr, port))
			}
			if ports[0].Open && ports[0].Note == "" {
				ident, identErr = identify(ctx, m.clientURL())
			}
		}
		v := decide(m, pid, ports, recorded, ident, identErr, func(p portState) string {
			return describeHTTP(ctx, m.Addr, p.Port, probePaths[p.Port])
		})
		switch v.State {
		case "running":
			fmt.Fprintf(stdout, "%s running %d\n", m.Name, v.PID)
		case "foreign":
			fmt.Fprintf(stderr, "%s: %s\n", m.Name, v.Why)
			code = exitForeign
		default:
			fmt.Fprintf(stdout, "%s %s\n", m.Name, v.State)
		}
	}
	return code
}
