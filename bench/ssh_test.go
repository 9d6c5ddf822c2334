package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/runbookhq/runbook/internal/conn"
	"github.com/runbookhq/runbook/internal/conn/local"
	rssh "github.com/runbookhq/runbook/internal/conn/ssh"
	"github.com/runbookhq/runbook/internal/plan"
	"github.com/runbookhq/runbook/internal/spec"
	"github.com/runbookhq/runbook/internal/sshtest"
	"github.com/runbookhq/runbook/inventory"
	"github.com/runbookhq/runbook/modules"
	_ "github.com/runbookhq/runbook/modules/command"
	"github.com/runbookhq/runbook/runner"
)

// What one configuration runs: Steps trivial commands on each of the hosts,
// Forks hosts at a time, in one batch.
const (
	Steps = 10
	Forks = 50
)

// childEnv names the file that tells a child process what to run.
const childEnv = "RUNBOOK_BENCH_CHILD"

// profileEnv, when set, makes each child write a CPU profile to
// $RUNBOOK_BENCH_CPUPROFILE.<mode>.<hosts>.
const profileEnv = "RUNBOOK_BENCH_CPUPROFILE"

// childTimeout bounds one measured run.
const childTimeout = 10 * time.Minute

// farm is the hosts of one configuration, each on its own loopback
// address: in-process SSH servers (inproc) or OpenSSH's sshd (openssh).
type farm struct {
	Mode       string   `json:"mode"` // tool, conn or floor
	Addrs      []string `json:"addrs"`
	KnownHosts string   `json:"known_hosts"`
	Key        string   `json:"key"`
	Dir        string   `json:"dir"`
	User       string   `json:"user"`
	// sshds are the listening sshd processes of an openssh farm, whose
	// CPU (their connections' included) the parent reads.
	sshds []int
}

// The kinds of server a configuration runs against.
const (
	inproc  = "inproc"
	openssh = "openssh"
)

// configs are BenchmarkSSH's configurations. OpenSSH's sshd forks a process
// per connection and a shell per command, which on a small machine takes far
// more CPU than the client: 1000 of them would measure the machine.
var configs = []struct {
	kind  string
	hosts []int
}{
	{inproc, []int{10, 100, 1000}},
	{openssh, []int{10, 100}},
}

// result is what a child reports of its run.
type result struct {
	WallNS  int64  `json:"wall_ns"`
	PeakKB  int64  `json:"peak_kb"`
	PeakSrc string `json:"peak_src"` // VmHWM, or Go's MemStats.Sys where /proc is missing
	Err     string `json:"err,omitempty"`
}

// modes are what BenchmarkSSH compares: runbook (plan + engine + SSH
// dialer), the SSH transport alone, and raw x/crypto/ssh.
var modes = []string{"tool", "conn", "floor"}

// BenchmarkSSH runs the tool, the transport alone (conn) and the floor over
// 10, 100 and 1000 in-process hosts and over 10 and 100 hosts served by
// OpenSSH. Each run is a fresh child process, so that its peak RSS is its
// own; the servers stay in this process (or are sshd processes it started). An iteration runs the
// three one after the other, in a rotating order, so that a change in the
// machine's load hits all three alike. The metrics are each mode's mean
// seconds per run (measured in the child: plan, dial, commands, close,
// without process start-up), the median over iterations of tool/floor, and
// each mode's peak RSS.
func BenchmarkSSH(b *testing.B) {
	for _, c := range configs {
		b.Run(c.kind, func(b *testing.B) {
			for _, n := range c.hosts {
				b.Run(fmt.Sprintf("hosts=%d", n), func(b *testing.B) {
					if c.kind == openssh {
						benchHosts(b, startSSHDFarm(b, n))
					} else {
						benchHosts(b, startFarm(b, n))
					}
				})
			}
		})
	}
}

func benchHosts(b *testing.B, f farm) {
	cfgs := map[string]string{}
	for _, mode := range modes {
		f.Mode = mode
		cfgs[mode] = filepath.Join(b.TempDir(), "farm-"+mode+".json")
		data, _ := json.Marshal(f)
		if err := os.WriteFile(cfgs[mode], data, 0o600); err != nil {
			b.Fatal(err)
		}
	}
	wall := map[string]int64{}
	peakKB := map[string]int64{}
	cpu := map[string]time.Duration{}
	var ratios, connRatios []float64
	src := ""
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		this := map[string]int64{}
		for j := range modes {
			mode := modes[(i+j)%len(modes)]
			before := serverCPU(b, f)
			r, clientCPU := runChild(b, cfgs[mode])
			cpu[mode] += clientCPU + serverCPU(b, f) - before
			this[mode] = r.WallNS
			wall[mode] += r.WallNS
			peakKB[mode] = max(peakKB[mode], r.PeakKB)
			src = r.PeakSrc
		}
		b.Logf("run %d: tool %.3fs, conn %.3fs, floor %.3fs: tool/floor %.2f", i+1,
			float64(this["tool"])/1e9, float64(this["conn"])/1e9, float64(this["floor"])/1e9, float64(this["tool"])/float64(this["floor"]))
		ratios = append(ratios, float64(this["tool"])/float64(this["floor"]))
		connRatios = append(connRatios, float64(this["conn"])/float64(this["floor"]))
	}
	sort.Float64s(ratios)
	sort.Float64s(connRatios)
	for _, mode := range modes {
		b.ReportMetric(float64(wall[mode])/float64(b.N)/1e9, mode+"-s/run")
		b.ReportMetric(float64(peakKB[mode])/1024, mode+"-MB-"+src)
		b.ReportMetric(cpu[mode].Seconds()/float64(b.N), mode+"-cpu-s/run")
	}
	b.ReportMetric(ratios[len(ratios)/2], "tool/floor")
	b.ReportMetric(connRatios[len(connRatios)/2], "conn/floor")
}

// runChild runs one measured child and returns its result and the CPU
// time it used.
func runChild(b *testing.B, cfg string) (result, time.Duration) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), childTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestBenchChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+cfg)
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.Fatalf("child: %v\n%s", err, out)
	}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "BENCH-RESULT "); ok {
			var r result
			if err := json.Unmarshal([]byte(rest), &r); err != nil {
				b.Fatal(err)
			}
			if r.Err != "" {
				b.Fatalf("child: %s", r.Err)
			}
			st := cmd.ProcessState
			return r, st.UserTime() + st.SystemTime()
		}
	}
	b.Fatalf("child printed no result:\n%s", out)
	return result{}, 0
}

// startFarm starts n in-process servers on 127.0.1.1, 127.0.1.2, ... and
// writes the known_hosts and client key a child needs.
func startFarm(b testing.TB, n int) farm {
	b.Helper()
	dir := b.TempDir()
	key := sshtest.ClientKey(b)
	f := farm{Dir: dir, Key: key.Write(b, dir, "id_client"), User: "bench"}
	var lines []string
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, n)
	servers := make([]*sshtest.Server, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			addr := fmt.Sprintf("127.0.%d.%d:0", 1+i/250, 1+i%250)
			s, err := sshtest.NewServer(b, sshtest.ServerOptions{Addr: addr})
			if err != nil {
				errs <- err
				return
			}
			mu.Lock()
			servers[i] = s
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(errs)
	b.Cleanup(func() {
		for _, s := range servers {
			if s != nil {
				s.Close()
			}
		}
	})
	for err := range errs {
		b.Fatal(err)
	}
	for _, s := range servers {
		f.Addrs = append(f.Addrs, s.Addr)
		lines = append(lines, knownhosts.Line([]string{s.Addr}, s.HostKey.Public()))
	}
	f.KnownHosts = filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(f.KnownHosts, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	return f
}

// sshdListenMax is how many addresses one sshd listens on: OpenSSH takes at
// most 16 ListenAddress sockets (MAX_LISTEN_SOCKS).
const sshdListenMax = 16

// startSSHDFarm starts OpenSSH's sshd listening on n loopback addresses,
// 127.0.2.1, 127.0.2.2, ..., as many sshd processes as that takes, all with
// one ed25519 host key (what the floor and the tool then both use) and the
// settings of sshtest.StartSSHD, whose MaxStartups lets far more than Forks
// logins be under way at once. Each stops when the benchmark ends, or after
// its bounded lifetime. known_hosts lists every address with that key.
func startSSHDFarm(b *testing.B, n int) farm {
	b.Helper()
	// Long enough for every child of the benchmark to time out in turn.
	life := time.Duration(b.N*len(modes)+1) * childTimeout
	if n > 250 {
		b.Fatalf("startSSHDFarm: %d hosts: at most 250 addresses in 127.0.2.0/24", n)
	}
	dir := b.TempDir()
	hostKey := sshtest.NewEd25519(b)
	f := farm{Dir: dir}
	var lines []string
	for first := 0; first < n; first += sshdListenMax {
		var addrs []string
		for i := first; i < min(n, first+sshdListenMax); i++ {
			addrs = append(addrs, fmt.Sprintf("127.0.2.%d", 1+i))
		}
		s := sshtest.StartSSHD(b, sshtest.SSHDOptions{Addrs: addrs, HostKeys: []*sshtest.Key{hostKey}, Lifetime: life})
		for i := range s.Addrs {
			f.Addrs = append(f.Addrs, s.Addr(i))
		}
		lines = append(lines, s.KnownHostsLines()...)
		f.Key, f.User = s.ClientKeyFile, s.User
		f.sshds = append(f.sshds, s.Pid())
	}
	f.KnownHosts = filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(f.KnownHosts, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	return f
}

// TestBenchChild is the child process of BenchmarkSSH; without its
// environment variable it does nothing.
func TestBenchChild(t *testing.T) {
	cfg := os.Getenv(childEnv)
	if cfg == "" {
		t.Skip("run by BenchmarkSSH")
	}
	var f farm
	data, err := os.ReadFile(cfg)
	if err == nil {
		err = json.Unmarshal(data, &f)
	}
	var r result
	if prof := os.Getenv(profileEnv); prof != "" && err == nil {
		pf, perr := os.Create(fmt.Sprintf("%s.%s.%d", prof, f.Mode, len(f.Addrs)))
		if perr != nil {
			t.Fatal(perr)
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			t.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	if err == nil {
		start := time.Now()
		if f.Mode == "tool" {
			err = runTool(t, f)
		} else if f.Mode == "conn" {
			err = runConn(t, f)
		} else {
			err = runFloor(f)
		}
		r.WallNS = time.Since(start).Nanoseconds()
	}
	if err != nil {
		r.Err = err.Error()
	}
	r.PeakKB, r.PeakSrc = peak()
	out, _ := json.Marshal(r)
	fmt.Printf("BENCH-RESULT %s\n", out)
}

// runTool runs a runbook of Steps `true` commands over the hosts with the
// planner, the engine and the SSH dialer, as `runbook exec` does (less the
// journal and the terminal).
func runTool(t *testing.T, f farm) error {
	var inv strings.Builder
	fmt.Fprintf(&inv, "all:\n  vars: { ansible_connection: ssh, ansible_user: %s }\n  hosts:\n", f.User)
	for i, a := range f.Addrs {
		host, port, _ := net.SplitHostPort(a)
		fmt.Fprintf(&inv, "    h%d: { ansible_host: %s, ansible_port: %s }\n", i, host, port)
	}
	invPath := filepath.Join(f.Dir, fmt.Sprintf("inventory-%d.yml", os.Getpid()))
	if err := os.WriteFile(invPath, []byte(inv.String()), 0o600); err != nil {
		return err
	}
	defer os.Remove(invPath)
	var rb strings.Builder
	rb.WriteString("runbook: bench\nhosts: all\nserial: 100%\nsteps:\n")
	for i := 0; i < Steps; i++ {
		fmt.Fprintf(&rb, "  - { name: step %d, command: ['true'] }\n", i)
	}

	in, ds := inventory.Load(invPath)
	if ds.HasErrors() {
		return ds.Err()
	}
	book, ds := spec.LoadBytes(filepath.Join(f.Dir, "bench.yml"), []byte(rb.String()), modules.Default,
		spec.LoadOptions{Vars: plan.MergeVars(in.AllVarNames(), nil)})
	if ds.HasErrors() {
		return ds.Err()
	}
	p, ds := plan.Build(book, in, plan.Options{})
	if ds.HasErrors() {
		return ds.Err()
	}
	d, err := rssh.NewDialer(rssh.Options{
		KnownHostsFiles: []string{f.KnownHosts}, IdentityFiles: []string{f.Key},
		ConfigFile: os.DevNull, DisableAgent: true, Home: t.TempDir(),
	})
	if err != nil {
		return err
	}
	dialer := conn.DialerFunc(func(ctx context.Context, tg conn.Target) (conn.Conn, error) {
		if tg.Connection == "local" {
			return local.Dialer{}.Dial(ctx, tg)
		}
		return d.Dial(ctx, tg)
	})
	ctx, cancel := context.WithTimeout(context.Background(), childTimeout)
	defer cancel()
	out, err := runner.Run(ctx, p, modules.Default, runner.Options{Dialer: dialer, Forks: Forks, RunID: "bench", StateDir: t.TempDir()})
	if out == nil {
		return err
	}
	for name, h := range out.Hosts {
		if h.Status != runner.StatusOK || h.Ok != Steps {
			return fmt.Errorf("%s: %s, %d ok: %v", name, h.Status, h.Ok, h.Err)
		}
	}
	return err
}

// floorCommand is what the floor asks the host to run: the program true,
// as the tool's `command: [true]` does. A bare "true" would not be the same
// command: OpenSSH hands it to the login shell, for which true is a builtin
// and no program runs at all.
const floorCommand = "exec true"

// runFloor is what any tool must do at least: per host one connection with
// the same key and host key check, one session per command, Forks hosts at
// a time.
func runFloor(f farm) error {
	keyPEM, err := os.ReadFile(f.Key)
	if err != nil {
		return err
	}
	signer, err := ssh.ParsePrivateKey(keyPEM)
	if err != nil {
		return err
	}
	hostKeys, err := knownhosts.New(f.KnownHosts)
	if err != nil {
		return err
	}
	cfg := &ssh.ClientConfig{User: f.User, Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)}, HostKeyCallback: hostKeys, Timeout: time.Minute}
	sem := make(chan struct{}, Forks)
	errs := make(chan error, len(f.Addrs))
	var wg sync.WaitGroup
	for _, a := range f.Addrs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs <- floorHost(cfg, a)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func floorHost(cfg *ssh.ClientConfig, addr string) error {
	c, err := ssh.Dial("tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	for i := 0; i < Steps; i++ {
		s, err := c.NewSession()
		if err != nil {
			return err
		}
		err = s.Run(floorCommand)
		s.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", addr, err)
		}
	}
	return nil
}

// peak is the process's peak resident set: VmHWM from /proc, or, where
// there is no /proc, what Go got from the OS (a different measure, named so).
func peak() (int64, string) {
	if data, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
				f := strings.Fields(rest)
				if n, err := strconv.ParseInt(f[0], 10, 64); err == nil {
					return n, "VmHWM"
				}
			}
		}
	}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.Sys / 1024), "GoSys"
}

// runConn is the SSH transport alone, without plan and engine: the same
// dials and commands as the floor, through conn/ssh.
func runConn(t *testing.T, f farm) error {
	d, err := rssh.NewDialer(rssh.Options{
		KnownHostsFiles: []string{f.KnownHosts}, IdentityFiles: []string{f.Key},
		ConfigFile: os.DevNull, DisableAgent: true, Home: t.TempDir(),
	})
	if err != nil {
		return err
	}
	sem := make(chan struct{}, Forks)
	errs := make(chan error, len(f.Addrs))
	var wg sync.WaitGroup
	for _, a := range f.Addrs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			host, port, _ := net.SplitHostPort(a)
			p, _ := strconv.Atoi(port)
			c, err := d.Dial(context.Background(), conn.Target{Name: a, Addr: host, Port: p, User: f.User, Connection: "ssh", Vars: map[string]any{"ansible_host": host, "ansible_port": p, "ansible_user": f.User}})
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			for i := 0; i < Steps; i++ {
				if _, err := c.Run(context.Background(), conn.Cmd{Argv: []string{"true"}}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
