// Package etcdlab starts real etcd clusters on loopback addresses for tests,
// from the server binaries that scripts/etcd-build.sh builds and caches.
package etcdlab

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// SkipEnv names the variable that, set to 1, makes tests that need etcd
// binaries skip instead of building them. By default they build and run.
const SkipEnv = "RUNBOOK_SKIP_ETCD"

// FirstAddr is the address of a lab's first member; the next members take the
// addresses after it. It stays clear of the demo lab (127.0.0.11-13). Ports
// are picked free at start, each lab has its own --initial-cluster-token, and
// a lab is only ready once every member answers with the same cluster ID and
// this lab's member names, so a test never talks to another cluster by mistake.
const FirstAddr = "127.0.0.21"

// Time limits: building a version for the first time takes minutes; starting,
// stopping and restarting a member on loopback takes seconds.
const (
	buildTimeout = 15 * time.Minute
	readyTimeout = 45 * time.Second
	stopTimeout  = 20 * time.Second
	startTries   = 3
)

// Binary returns the path of the etcd server binary of version, building it on
// a cache miss. It skips t when RUNBOOK_SKIP_ETCD=1 and fails it on any error.
func Binary(t testing.TB, version string) string {
	t.Helper()
	if os.Getenv(SkipEnv) == "1" {
		t.Skipf("%s=1: skipping a test that runs a real etcd %s", SkipEnv, version)
	}
	bin, err := BinaryPath(version)
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

var (
	buildMu sync.Mutex
	built   = map[string]string{}
)

// BinaryPath runs scripts/etcd-build.sh for version (found by walking up from
// the working directory to go.mod) and returns the path it prints.
func BinaryPath(version string) (string, error) {
	buildMu.Lock()
	defer buildMu.Unlock()
	if bin, ok := built[version]; ok {
		return bin, nil
	}
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(root, "scripts", "etcd-build.sh"), version)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("etcdlab: scripts/etcd-build.sh %s: %v: %s (set %s=1 to skip the tests that need etcd)",
			version, err, strings.TrimSpace(stderr.String()), SkipEnv)
	}
	bin := strings.TrimSpace(string(out))
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("etcdlab: scripts/etcd-build.sh %s printed %q, which is not a file: %w", version, bin, err)
	}
	built[version] = bin
	return bin, nil
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("etcdlab: no go.mod above the working directory; run the tests from the module")
		}
		dir = parent
	}
}

// Options says what lab to start.
type Options struct {
	// Version of etcd to run, such as "3.6.16".
	Version string
	// Members is the number of members; 3 when zero.
	Members int
	// Dir holds the members' data and logs; a new temporary folder when empty
	// (removed by Close).
	Dir string
	// TLS, when set, makes the client URLs https with these server files.
	TLS *ServerTLS
}

// ServerTLS is what a member serves its client URL with, and what the lab's
// own readiness checks trust.
type ServerTLS struct {
	CertFile, KeyFile string
	// TrustedCAFile, when set, turns on --client-cert-auth: clients must show
	// a certificate signed by this CA.
	TrustedCAFile string
	// Client is the TLS configuration the lab's readiness checks use.
	Client *tls.Config
}

// Cluster is a running lab.
type Cluster struct {
	Members []*Member
	// Token is the lab's --initial-cluster-token.
	Token string
	// ClusterID is the ID every member reported when the lab became ready.
	ClusterID uint64

	bin     string
	dir     string
	ownsDir bool
	tls     *ServerTLS
}

// Member is one etcd process of a lab.
type Member struct {
	Name      string
	Addr      string
	ClientURL string
	PeerURL   string
	// ID is the member ID it reported when the lab became ready.
	ID uint64

	args    []string
	logPath string
	bin     string // its etcd binary, when Upgrade changed it

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
}

// New starts a lab for t and stops it when t ends; it skips t when
// RUNBOOK_SKIP_ETCD=1.
func New(t testing.TB, opts Options) *Cluster {
	t.Helper()
	bin := Binary(t, opts.Version)
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTries*readyTimeout)
	defer cancel()
	c, err := start(ctx, bin, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	})
	return c
}

// Start starts a lab outside a test (a TestMain's shared cluster); the caller
// must Close it.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	bin, err := BinaryPath(opts.Version)
	if err != nil {
		return nil, err
	}
	return start(ctx, bin, opts)
}

func start(ctx context.Context, bin string, opts Options) (*Cluster, error) {
	if opts.Members == 0 {
		opts.Members = 3
	}
	if opts.Members < 1 || opts.Members > 9 {
		return nil, fmt.Errorf("etcdlab: %d members; a lab has 1 to 9", opts.Members)
	}
	ownsDir := opts.Dir == ""
	if ownsDir {
		d, err := os.MkdirTemp("", "etcdlab-")
		if err != nil {
			return nil, err
		}
		opts.Dir = d
	}
	var lastErr error
	for try := range startTries {
		c, err := startOnce(ctx, bin, opts, try)
		if err == nil {
			c.ownsDir = ownsDir
			return c, nil
		}
		lastErr = err
		// Ports are picked free but not held until etcd binds them, so another
		// process may take one in between: start over on new ports.
		if !errors.Is(err, errPortTaken) || ctx.Err() != nil {
			break
		}
	}
	if ownsDir {
		os.RemoveAll(opts.Dir)
	}
	return nil, lastErr
}

var errPortTaken = errors.New("a port was taken before etcd could bind it")

func startOnce(ctx context.Context, bin string, opts Options, try int) (*Cluster, error) {
	c := &Cluster{
		bin:   bin,
		dir:   filepath.Join(opts.Dir, fmt.Sprintf("try%d", try)),
		tls:   opts.TLS,
		Token: fmt.Sprintf("runbook-etcdlab-%d-%d-%d", os.Getpid(), time.Now().UnixNano(), try),
	}
	base := net.ParseIP(FirstAddr).To4()
	scheme := "http"
	if opts.TLS != nil {
		scheme = "https"
	}
	var initial []string
	for i := range opts.Members {
		ip := net.IPv4(base[0], base[1], base[2], base[3]+byte(i)).String()
		ports, err := freePorts(ip, 2)
		if err != nil {
			return nil, err
		}
		m := &Member{
			Name:      fmt.Sprintf("m%d", i+1),
			Addr:      ip,
			ClientURL: fmt.Sprintf("%s://%s:%d", scheme, ip, ports[0]),
			PeerURL:   fmt.Sprintf("http://%s:%d", ip, ports[1]),
		}
		c.Members = append(c.Members, m)
		initial = append(initial, m.Name+"="+m.PeerURL)
	}
	for _, m := range c.Members {
		dataDir := filepath.Join(c.dir, m.Name)
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			return nil, err
		}
		m.logPath = filepath.Join(c.dir, m.Name+".log")
		m.args = []string{
			"--name", m.Name,
			"--data-dir", dataDir,
			"--listen-client-urls", m.ClientURL, "--advertise-client-urls", m.ClientURL,
			"--listen-peer-urls", m.PeerURL, "--initial-advertise-peer-urls", m.PeerURL,
			"--initial-cluster", strings.Join(initial, ","),
			"--initial-cluster-token", c.Token,
			"--initial-cluster-state", "new",
			// Tests check behaviour, not durability; fsync on a shared CI disk
			// only makes them slow.
			"--unsafe-no-fsync",
		}
		if t := opts.TLS; t != nil {
			m.args = append(m.args, "--cert-file", t.CertFile, "--key-file", t.KeyFile)
			if t.TrustedCAFile != "" {
				m.args = append(m.args, "--trusted-ca-file", t.TrustedCAFile, "--client-cert-auth")
			}
		}
	}
	for _, m := range c.Members {
		if err := c.launch(m); err != nil {
			c.Close()
			return nil, err
		}
	}
	if err := c.WaitReady(ctx); err != nil {
		if c.portTaken() {
			err = fmt.Errorf("%w: %v", errPortTaken, err)
		}
		c.Close()
		return nil, err
	}
	return c, nil
}

// freePorts returns n ports on ip that nothing listens on right now.
func freePorts(ip string, n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			return nil, fmt.Errorf("etcdlab: no free port on %s (Linux routes all of 127.0.0.0/8 to loopback; other systems need an alias): %w", ip, err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func (c *Cluster) portTaken() bool {
	for _, m := range c.Members {
		if b, err := os.ReadFile(m.logPath); err == nil && bytes.Contains(b, []byte("address already in use")) {
			return true
		}
	}
	return false
}

func (c *Cluster) launch(m *Member) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil {
		select {
		case <-m.done:
		default:
			return fmt.Errorf("etcdlab: member %s is already running", m.Name)
		}
	}
	log, err := os.OpenFile(m.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	bin := c.bin
	if m.bin != "" {
		bin = m.bin
	}
	cmd := exec.Command(bin, m.args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("etcdlab: starting member %s: %w", m.Name, err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		log.Close()
		close(done)
	}()
	m.cmd, m.done = cmd, done
	return nil
}

// Running reports whether the member's process is running.
func (m *Member) Running() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return false
	}
	select {
	case <-m.done:
		return false
	default:
		return true
	}
}

// Log returns the end of the member's log, for a failure message.
func (m *Member) Log() string {
	b, err := os.ReadFile(m.logPath)
	if err != nil {
		return err.Error()
	}
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

// Endpoints returns the members' client URLs.
func (c *Cluster) Endpoints() []string {
	out := make([]string, len(c.Members))
	for i, m := range c.Members {
		out[i] = m.ClientURL
	}
	return out
}

// Member returns the member called name, or nil.
func (c *Cluster) Member(name string) *Member {
	for _, m := range c.Members {
		if m.Name == name {
			return m
		}
	}
	return nil
}

// Stop stops member name with SIGTERM (as a service manager would: a leader
// hands its leadership over) and waits for the process to exit; it kills it
// if it has not exited in time.
func (c *Cluster) Stop(name string) error {
	m := c.Member(name)
	if m == nil {
		return fmt.Errorf("etcdlab: no member %q", name)
	}
	return m.stop()
}

func (m *Member) stop() error { return m.end(syscall.SIGTERM, "SIGTERM") }

// kill ends the member's process at once and waits for it to be reaped.
func (m *Member) kill() error { return m.end(syscall.SIGKILL, "SIGKILL") }

// end sends sig to the member's process and waits for it to exit; it kills
// the process if it has not exited in time.
func (m *Member) end(sig syscall.Signal, name string) error {
	m.mu.Lock()
	cmd, done := m.cmd, m.done
	m.mu.Unlock()
	if cmd == nil {
		return nil
	}
	// Forget the process once it is gone, so that WaitReady tells a member
	// stopped on purpose from one that died.
	defer func() {
		m.mu.Lock()
		m.cmd = nil
		m.mu.Unlock()
	}()
	cmd.Process.Signal(sig)
	select {
	case <-done:
		return nil
	case <-time.After(stopTimeout):
		cmd.Process.Kill()
		<-done
		return fmt.Errorf("etcdlab: member %s did not exit within %s of %s and was killed", m.Name, stopTimeout, name)
	}
}

// Restart starts a stopped member again on its data dir, with the same
// command line, and waits until the whole lab is ready.
func (c *Cluster) Restart(ctx context.Context, name string) error {
	m := c.Member(name)
	if m == nil {
		return fmt.Errorf("etcdlab: no member %q", name)
	}
	if err := c.launch(m); err != nil {
		return err
	}
	return c.WaitReady(ctx)
}

// Upgrade stops member name, starts it again on the same data dir with the
// etcd of version (an upgrade, or a rollback), and waits until the lab is
// ready.
func (c *Cluster) Upgrade(ctx context.Context, name, version string) error {
	m := c.Member(name)
	if m == nil {
		return fmt.Errorf("etcdlab: no member %q", name)
	}
	bin, err := BinaryPath(version)
	if err != nil {
		return err
	}
	if err := m.stop(); err != nil {
		return err
	}
	m.mu.Lock()
	m.bin = bin
	m.mu.Unlock()
	if err := c.launch(m); err != nil {
		return err
	}
	return c.WaitReady(ctx)
}

// Close stops every member and removes the lab's folder when the lab made it.
// A lab whose data goes with it is killed: nothing of it is read again, and
// members stopped together hand leadership to each other and wait seconds for
// transfers that cannot finish. A lab on a caller's folder stops gracefully,
// followers first, so that its leader has no stopping peer to wait for.
func (c *Cluster) Close() error {
	if c.ownsDir {
		var errs []error
		for _, m := range c.Members {
			errs = append(errs, m.kill())
		}
		return errors.Join(append(errs, os.RemoveAll(filepath.Dir(c.dir)))...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	leader, _ := c.Leader(ctx)
	cancel()
	var errs []error
	var mu sync.Mutex
	stopAll := func(leaders bool) {
		var wg sync.WaitGroup
		for _, m := range c.Members {
			if (m.Name == leader) == leaders {
				wg.Go(func() {
					err := m.stop()
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				})
			}
		}
		wg.Wait()
	}
	stopAll(false)
	stopAll(true)
	return errors.Join(errs...)
}

// Client returns a client of the lab pinned to the endpoint of member name (or
// balanced over every member when name is empty), with the lab's TLS.
func (c *Cluster) Client(name string) (*clientv3.Client, error) {
	eps := c.Endpoints()
	if name != "" {
		m := c.Member(name)
		if m == nil {
			return nil, fmt.Errorf("etcdlab: no member %q", name)
		}
		eps = []string{m.ClientURL}
	}
	cfg := clientv3.Config{Endpoints: eps, DialTimeout: 2 * time.Second, Logger: zap.NewNop()}
	if c.tls != nil {
		cfg.TLS = c.tls.Client
	}
	return clientv3.New(cfg)
}

// WaitReady waits until every running member answers Status with this lab's
// cluster ID and one leader, and the member list holds exactly this lab's
// names; it fails early when a member's process exits.
func (c *Cluster) WaitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	var last error
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		for _, m := range c.Members {
			m.mu.Lock()
			started, done := m.cmd != nil, m.done
			m.mu.Unlock()
			if !started {
				continue
			}
			select {
			case <-done:
				return fmt.Errorf("etcdlab: member %s exited while the lab was starting; its log ends with:\n%s", m.Name, m.Log())
			default:
			}
		}
		if last = c.ready(ctx); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("etcdlab: lab not ready within %s: %v", readyTimeout, last)
		case <-tick.C:
		}
	}
}

func (c *Cluster) ready(ctx context.Context) error {
	var clusterID, leader uint64
	for _, m := range c.Members {
		if !m.Running() {
			continue
		}
		cli, err := c.Client(m.Name)
		if err != nil {
			return err
		}
		err = func() error {
			defer cli.Close()
			rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			st, err := cli.Status(rctx, m.ClientURL)
			if err != nil {
				return fmt.Errorf("%s: status: %w", m.Name, err)
			}
			switch {
			case st.Leader == 0:
				return fmt.Errorf("%s has no leader yet", m.Name)
			case clusterID == 0:
				clusterID, leader = st.Header.ClusterId, st.Leader
			case st.Header.ClusterId != clusterID:
				return fmt.Errorf("%s answers for cluster %x, another member for %x: another lab holds an address", m.Name, st.Header.ClusterId, clusterID)
			case st.Leader != leader:
				return fmt.Errorf("members disagree on the leader (%x, %x)", leader, st.Leader)
			}
			ml, err := cli.MemberList(rctx, clientv3.WithSerializable())
			if err != nil {
				return fmt.Errorf("%s: member list: %w", m.Name, err)
			}
			var names []string
			for _, mm := range ml.Members {
				names = append(names, mm.Name)
				if mm.Name == m.Name {
					m.ID = mm.ID
				}
			}
			slices.Sort(names)
			if want := c.names(); !slices.Equal(names, want) {
				return fmt.Errorf("%s lists members %v, want %v", m.Name, names, want)
			}
			if m.ID != st.Header.MemberId {
				return fmt.Errorf("%s at %s answers as member %x, which is not its own", m.Name, m.ClientURL, st.Header.MemberId)
			}
			// A linearizable read proves the member serves requests, not only status.
			if _, err := cli.Get(rctx, "etcdlab-ready"); err != nil {
				return fmt.Errorf("%s: read: %w", m.Name, err)
			}
			// A new cluster decides its version and migrates its storage a few
			// seconds after it has a leader: a test must not see it halfway.
			cv, err := c.clusterVersion(rctx, m)
			if err != nil {
				return fmt.Errorf("%s: %w", m.Name, err)
			}
			if st.StorageVersion != "" && st.StorageVersion != cv {
				return fmt.Errorf("%s: storage version %s, cluster version %s", m.Name, st.StorageVersion, cv)
			}
			return nil
		}()
		if err != nil {
			return err
		}
	}
	c.ClusterID = clusterID
	return nil
}

// clusterVersion reads the member's GET /version etcdcluster, once decided.
func (c *Cluster) clusterVersion(ctx context.Context, m *Member) (string, error) {
	tr := &http.Transport{DisableKeepAlives: true}
	if c.tls != nil {
		tr.TLSClientConfig = c.tls.Client
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.ClientURL+"/version", nil)
	if err != nil {
		return "", err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var v struct {
		Cluster string `json:"etcdcluster"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return "", fmt.Errorf("GET /version: %w", err)
	}
	if v.Cluster == "" || v.Cluster == "not_decided" {
		return "", errors.New("cluster version not decided yet")
	}
	return v.Cluster, nil
}

func (c *Cluster) names() []string {
	var out []string
	for _, m := range c.Members {
		out = append(out, m.Name)
	}
	slices.Sort(out)
	return out
}

// Leader returns the name of the member the running members report as leader.
func (c *Cluster) Leader(ctx context.Context) (string, error) {
	for _, m := range c.Members {
		if !m.Running() {
			continue
		}
		cli, err := c.Client(m.Name)
		if err != nil {
			return "", err
		}
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		st, err := cli.Status(rctx, m.ClientURL)
		cancel()
		cli.Close()
		if err != nil {
			continue
		}
		for _, mm := range c.Members {
			if mm.ID == st.Leader {
				return mm.Name, nil
			}
		}
		return "", fmt.Errorf("etcdlab: leader %x is not a member of the lab", st.Leader)
	}
	return "", errors.New("etcdlab: no member answers")
}

// String names the lab in messages: its members and their client URLs.
func (c *Cluster) String() string {
	parts := make([]string, len(c.Members))
	for i, m := range c.Members {
		parts[i] = m.Name + "=" + m.ClientURL
	}
	return "etcd lab " + strings.Join(parts, ",") + " token " + strconv.Quote(c.Token)
}

// Shared is one lab for a whole test binary, started by the first test that
// asks for it: a package's tests share it instead of each paying for a start.
// TestMain must Close it after m.Run.
type Shared struct {
	Options Options

	once sync.Once
	c    *Cluster
	err  error
}

// Get returns the lab, starting it on first use; it skips t when
// RUNBOOK_SKIP_ETCD=1. A test that stops a member must restart it.
func (s *Shared) Get(t testing.TB) *Cluster {
	t.Helper()
	if os.Getenv(SkipEnv) == "1" {
		t.Skipf("%s=1: skipping a test that runs a real etcd", SkipEnv)
	}
	s.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), buildTimeout+startTries*readyTimeout)
		defer cancel()
		s.c, s.err = Start(ctx, s.Options)
	})
	if s.err != nil {
		t.Fatal(s.err)
	}
	return s.c
}

// KeyPrefix returns a key prefix under root for this run of test t alone:
// a shared lab outlives one test, and go test -count=N runs each test on it
// again, so a prefix named after the test would meet an earlier run's keys.
func KeyPrefix(t testing.TB, root string) string {
	return root + t.Name() + "/" + time.Now().Format("150405.000000") + "/"
}

// Close stops the lab if it was started.
func (s *Shared) Close() error {
	if s.c == nil {
		return nil
	}
	return s.c.Close()
}
