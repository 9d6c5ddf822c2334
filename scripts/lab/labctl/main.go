// Command labctl is the part of scripts/lab.sh that talks to etcd: it tells
// this lab's members from anything else on their ports, waits for health, prints status.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Exit statuses, which lab.sh tells apart.
const (
	exitOK      = 0
	exitFailed  = 1 // not healthy in time, or an error
	exitUsage   = 2
	exitForeign = 3 // something that is not this lab holds one of its ports
)

const usage = `usage: labctl probe  -dir LAB_DIR -addrs A1,A2,A3
       labctl wait   -dir LAB_DIR -addrs A1,A2,A3 [-timeout 30s]
       labctl status -dir LAB_DIR -addrs A1,A2,A3

Member N is named mN and serves clients on AN:2379, peers on AN:2380 and
metrics on AN:2381; its files are under LAB_DIR/members/mN.

probe   prints one line per member: "mN running PID" (its pidfile names a live
        etcd of this lab), "mN free" (nothing on its ports) or "mN answers"
        (this lab's cluster answers there, but no pidfile names the process).
        Anything else on a port is refused with what answered there (exit 3).
wait    waits until every member is healthy, in one cluster of exactly these
        members with a leader, and serves a linearizable read; records the
        cluster ID in LAB_DIR/cluster-id the first time, and checks it after.
status  prints each member's process, versions, role and health (exit 1
        unless all are healthy).
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	cmd := args[0]
	fs := flag.NewFlagSet("labctl "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	dir := fs.String("dir", "", "the lab's folder (absolute)")
	addrs := fs.String("addrs", "", "the members' addresses, comma-separated")
	timeout := fs.Duration("timeout", 30*time.Second, "wait: how long to wait for health")
	if err := fs.Parse(args[1:]); err != nil {
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "labctl: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	lab, err := newLab(*dir, *addrs)
	if err != nil {
		fmt.Fprintln(stderr, "labctl:", err)
		return exitUsage
	}
	switch cmd {
	case "probe":
		return lab.probe(ctx, stdout, stderr)
	case "wait":
		if *timeout <= 0 || *timeout > 10*time.Minute {
			fmt.Fprintf(stderr, "labctl: -timeout %s must be more than 0 and at most 10m\n", *timeout)
			return exitUsage
		}
		return lab.wait(ctx, *timeout, stdout, stderr)
	case "status":
		return lab.status(ctx, stdout, stderr)
	}
	fmt.Fprintf(stderr, "labctl: unknown command %q; want probe, wait or status\n", cmd)
	return exitUsage
}

// Ports every member uses on its own address.
const (
	clientPort  = 2379
	peerPort    = 2380
	metricsPort = 2381
)

// member is one member of the lab as the lab defines it.
type member struct {
	Name string // m1, m2...
	Addr string // 127.0.0.11...
	Dir  string // LAB_DIR/members/m1
}

func (m member) clientURL() string { return fmt.Sprintf("http://%s:%d", m.Addr, clientPort) }
func (m member) pidfile() string   { return filepath.Join(m.Dir, "etcd.pid") }
func (m member) dataDir() string   { return filepath.Join(m.Dir, "data") }

// lab is the lab's folder and its members.
type lab struct {
	dir     string
	members []member
}

func newLab(dir, addrs string) (*lab, error) {
	if dir == "" || !filepath.IsAbs(dir) {
		return nil, fmt.Errorf("-dir %q must be the lab's folder as an absolute path", dir)
	}
	l := &lab{dir: filepath.Clean(dir)}
	seen := map[string]bool{}
	for i, a := range strings.Split(addrs, ",") {
		a = strings.TrimSpace(a)
		if !strings.HasPrefix(a, "127.") || strings.Count(a, ".") != 3 {
			return nil, fmt.Errorf("-addrs: %q is not a loopback address like 127.0.0.11", a)
		}
		if seen[a] {
			return nil, fmt.Errorf("-addrs: %s is given twice; each member needs its own address", a)
		}
		seen[a] = true
		name := fmt.Sprintf("m%d", i+1)
		l.members = append(l.members, member{Name: name, Addr: a, Dir: filepath.Join(l.dir, "members", name)})
	}
	return l, nil
}

// clusterIDFile holds the cluster ID of the lab's cluster, in hex, once the
// cluster has been healthy.
func (l *lab) clusterIDFile() string { return filepath.Join(l.dir, "cluster-id") }

// recordedClusterID returns the recorded cluster ID, or 0 when there is none yet.
func (l *lab) recordedClusterID() (uint64, error) {
	data, err := os.ReadFile(l.clusterIDFile())
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var id uint64
	if _, err := fmt.Sscanf(strings.TrimSpace(string(data)), "%x", &id); err != nil || id == 0 {
		return 0, fmt.Errorf("%s holds %q, not a cluster ID in hex", l.clusterIDFile(), strings.TrimSpace(string(data)))
	}
	return id, nil
}

func (l *lab) recordClusterID(id uint64) error {
	tmp := l.clusterIDFile() + ".tmp"
	if err := os.WriteFile(tmp, []byte(fmt.Sprintf("%x\n", id)), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, l.clusterIDFile())
}
