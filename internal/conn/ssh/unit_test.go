package ssh

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"github.com/rs/zerolog"

	"github.com/runbookhq/runbook/internal/conn"
)

func TestCommandLine(t *testing.T) {
	p := pgidPrefix
	tests := []struct {
		cmd  conn.Cmd
		want string
	}{
		{conn.Cmd{Argv: []string{"echo", "hi"}}, p + "exec 'echo' hi"},
		{conn.Cmd{Argv: []string{"echo", "a b", "$(x)", "it's"}}, p + `exec 'echo' 'a b' '$(x)' 'it'\''s'`},
		{conn.Cmd{Argv: []string{"A=B"}}, p + "exec 'A=B'"},
		{conn.Cmd{Shell: "echo $HOME | wc"}, p + `exec '/bin/sh' -c 'echo $HOME | wc'`},
		{conn.Cmd{Argv: []string{"pwd"}, Dir: "/srv/my app"}, p + "cd -- '/srv/my app' && exec 'pwd'"},
		{conn.Cmd{Argv: []string{"id"}, Become: true}, p + "exec sudo -n -- 'id'"},
		{conn.Cmd{Argv: []string{"id"}, Become: true, BecomeUser: "etcd"}, p + "exec sudo -n -u etcd -- 'id'"},
		{conn.Cmd{Argv: []string{"env"}, Env: map[string]string{"B": "2 3", "A": "1"}}, p + "exec /usr/bin/env A=1 'B=2 3' 'env'"},
		{conn.Cmd{Argv: []string{"x"}, Env: map[string]string{"A": "1"}, Dir: "/d", Become: true, BecomeUser: "u"},
			p + "cd -- /d && exec sudo -n -u u -- /usr/bin/env A=1 'x'"},
	}
	for _, tt := range tests {
		got, err := commandLine(tt.cmd)
		if err != nil || got != tt.want {
			t.Errorf("%#v:\n got %s (%v)\nwant %s", tt.cmd, got, err, tt.want)
		}
	}
	for _, bad := range []conn.Cmd{
		{}, {Argv: []string{""}}, {Argv: []string{"a"}, Shell: "b"}, {Argv: []string{"a\x00"}},
		{Argv: []string{"a"}, Env: map[string]string{"": "x"}}, {Argv: []string{"a"}, Env: map[string]string{"K": "\x00"}},
		{Argv: []string{"a=b"}, Env: map[string]string{"K": "v"}}, {Argv: []string{"a"}, Dir: "/\x00"},
	} {
		if _, err := commandLine(bad); err == nil {
			t.Errorf("%#v: no error", bad)
		}
	}
}

// The command line is read back by a POSIX shell as exactly the words given.
func FuzzCommandLine(f *testing.F) {
	for _, s := range []string{"plain", "a b", "it's", `"$(rm -rf /)"`, "`x`", "\n", "\\", "-n", "", "*", "~root"} {
		f.Add(s, "ok")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if strings.ContainsRune(a, 0) || strings.ContainsRune(b, 0) {
			t.Skip()
		}
		line, err := commandLine(conn.Cmd{Argv: []string{"printf", `%s\0`, a, b}})
		if err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("/bin/sh", "-c", line).Output()
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		if want := a + "\x00" + b + "\x00"; string(out) != want {
			t.Fatalf("%s printed %q, want %q", line, out, want)
		}
	})
}

func TestPgidFilter(t *testing.T) {
	tests := []struct {
		writes   []string
		pgid     int
		stderr   string
		unflushd bool
	}{
		{[]string{"runbook-pgid=4242\n", "real stderr\n"}, 4242, "real stderr\n", false},
		{[]string{"runbook-pg", "id=17\nrest"}, 17, "rest", false},
		{[]string{"no marker here\nmore"}, 0, "no marker here\nmore", false},
		{[]string{"bashrc says hi\n", "runbook-pgid=9\nout"}, 9, "bashrc says hi\nout", false},
		{[]string{"short"}, 0, "short", true},
		{[]string{"runbook-pgid=x\n"}, 0, "runbook-pgid=x\n", false},
		{[]string{strings.Repeat("y", 100)}, 0, strings.Repeat("y", 100), false},
		{[]string{strings.Repeat("y\n", 3000), "runbook-pgid=5\n"}, 0, strings.Repeat("y\n", 3000) + "runbook-pgid=5\n", false},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		f := &pgidFilter{w: &buf}
		for _, w := range tt.writes {
			if n, err := f.Write([]byte(w)); err != nil || n != len(w) {
				t.Fatalf("Write(%q) = %d, %v", w, n, err)
			}
		}
		f.flush()
		if f.get() != tt.pgid || buf.String() != tt.stderr {
			t.Errorf("%q: pgid %d, stderr %q; want %d, %q", tt.writes, f.get(), buf.String(), tt.pgid, tt.stderr)
		}
	}
}

func TestTail(t *testing.T) {
	tl := conn.NewTail(10)
	for i := 0; i < 100; i++ {
		tl.Write([]byte("0123456789"[i%10 : i%10+1]))
	}
	if got := string(tl.Bytes()); got != "[runbook: output truncated, 90 earlier bytes dropped]\n0123456789" {
		t.Errorf("got %q", got)
	}
	small := conn.NewTail(10)
	small.Write([]byte("abc"))
	if got := string(small.Bytes()); got != "abc" {
		t.Errorf("got %q", got)
	}
}

func TestLogProgress(t *testing.T) {
	var buf bytes.Buffer
	p := LogProgress(zerolog.New(&buf), "h1", "/usr/local/bin/etcd")
	for sent := int64(0); sent <= 1000; sent += 7 {
		p(sent, 1000)
	}
	p(1000, 1000)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 10 || !strings.Contains(lines[0], "ssh: put 10%") || !strings.Contains(lines[9], "ssh: put 100%") {
		t.Errorf("%d lines:\n%s", len(lines), buf.String())
	}
	buf.Reset()
	p = LogProgress(zerolog.New(&buf), "h1", "x")
	p(5, -1)
	if buf.Len() != 0 {
		t.Errorf("logged an unknown total: %s", buf.String())
	}
}

// The scripts a become Put runs, run here by the same /bin/sh.
func TestPutScripts(t *testing.T) {
	dir := t.TempDir()
	dest := filepath.Join(dir, "it's a file")
	if err := os.WriteFile(dest, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	stage := exec.Command("/bin/sh", "-c", stageScript, "sh", dest)
	stage.Stdin = strings.NewReader("new content")
	out, err := stage.Output()
	if err != nil {
		t.Fatal(err)
	}
	tmp := strings.TrimSuffix(string(out), "\n")
	if !strings.HasPrefix(tmp, filepath.Join(dir, ".it's a file.runbook-")) {
		t.Fatalf("staged at %q", tmp)
	}
	// A wrong digest leaves dest as it was and removes the staged file.
	finish := exec.Command("/bin/sh", "-c", finishScript, "sh", tmp, dest, "640", strings.Repeat("0", 64))
	if msg, err := finish.CombinedOutput(); err == nil || !strings.Contains(string(msg), "not what was sent") {
		t.Errorf("wrong digest: %v: %s", err, msg)
	}
	if got, _ := os.ReadFile(dest); string(got) != "old" {
		t.Errorf("dest = %q", got)
	}
	if _, err := os.Stat(tmp); err == nil {
		t.Error("the staged file was left behind")
	}
	if err := exec.Command("/bin/sh", "-c", stageScript, "sh", dir).Run(); err == nil {
		t.Error("staging over a directory worked")
	}
}

func TestMeterStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	m := &meter{ctx: ctx, r: strings.NewReader("abc"), h: sha256.New()}
	if n, err := m.Read(make([]byte, 1)); n != 1 || err != nil {
		t.Fatalf("read %d, %v", n, err)
	}
	cancel()
	if _, err := m.Read(make([]byte, 1)); err != context.Canceled {
		t.Errorf("read after cancel: %v", err)
	}
}

func TestResolve(t *testing.T) {
	home := t.TempDir()
	cfgPath := filepath.Join(home, "config")
	err := os.WriteFile(cfgPath, []byte(`
Host web
  HostName 10.0.0.5
  Port 2222
  User deploy
  IdentityFile ~/.ssh/web_%r
  UserKnownHostsFile ~/kh_%h
  ConnectTimeout 3
  ProxyJump bastion,ops@10.0.0.2:2200
Host bastion
  HostName 10.0.0.1
  User jump
Host *
  HashKnownHosts yes
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := loadSSHConfig(cfgPath, true)
	if err != nil {
		t.Fatal(err)
	}
	global := "/etc/ssh/ssh_known_hosts"
	tests := []struct {
		name  string
		opts  Options
		t     conn.Target
		want  endpoint
		jumps []string
	}{
		{
			name: "the config fills in what the inventory leaves open",
			t:    conn.Target{Name: "web", Addr: "web", Port: 22},
			want: endpoint{alias: "web", host: "10.0.0.5", port: 2222, user: "deploy",
				keys:       []identity{{path: filepath.Join(home, ".ssh/web_deploy")}},
				knownHosts: []string{filepath.Join(home, "kh_10.0.0.5"), global}, hashKnownHosts: true, timeout: 3 * time.Second},
			jumps: []string{"jump@10.0.0.1:22", "ops@10.0.0.2:2200"},
		},
		{
			name: "inventory variables win",
			opts: Options{ConnectTimeout: time.Second, KnownHostsFiles: []string{"/kh"}, IdentityFiles: []string{"~/flag_key"}},
			t: conn.Target{Name: "web", Addr: "web", Port: 22, User: "root", KeyFile: "/inv_key",
				Vars: map[string]any{"ansible_port": 22, JumpVar: "none"}},
			want: endpoint{alias: "web", host: "10.0.0.5", port: 22, user: "root",
				keys: []identity{{path: "/inv_key", required: true}, {path: filepath.Join(home, "flag_key"), required: true},
					{path: filepath.Join(home, ".ssh/web_root")}},
				knownHosts: []string{"/kh", global}, hashKnownHosts: true, timeout: time.Second},
		},
		{
			name: "ansible_host is not renamed by the config, and is what it matches",
			t:    conn.Target{Name: "web", Addr: "10.9.9.9", Port: 2200, Vars: map[string]any{"ansible_host": "10.9.9.9"}},
			want: endpoint{alias: "10.9.9.9", host: "10.9.9.9", port: 2200, user: "me",
				keys:       []identity{{path: filepath.Join(home, ".ssh/id_ed25519")}, {path: filepath.Join(home, ".ssh/id_ecdsa")}, {path: filepath.Join(home, ".ssh/id_rsa")}},
				knownHosts: []string{filepath.Join(home, ".ssh/known_hosts"), global}, hashKnownHosts: true, timeout: DefaultConnectTimeout},
		},
	}
	for _, tt := range tests {
		o := tt.opts
		o.Home = home
		r := newResolver(cfg, &o)
		r.localUser = "me"
		got, jumps, err := r.target(tt.t)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", tt.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tt.name, got, tt.want)
		}
		var js []string
		for _, j := range jumps {
			js = append(js, j.user+"@"+j.addr())
		}
		if strings.Join(js, ",") != strings.Join(tt.jumps, ",") {
			t.Errorf("%s: jumps %v, want %v", tt.name, js, tt.jumps)
		}
	}
}

func TestJumpSpecs(t *testing.T) {
	r := newResolver(nil, &Options{Home: t.TempDir()})
	r.localUser = "me"
	for spec, want := range map[string]string{
		"b":                  "me@b:22",
		"u@b:2200":           "u@b:2200",
		"ssh://u@b:2200,c":   "u@b:2200,me@c:22",
		"[::1]:2222":         "me@[::1]:2222",
		"none":               "",
		"  u@host  ,  h2 ":   "u@host:22,me@h2:22",
		"user@with@at@h:100": "user@with@at@h:100",
	} {
		jumps, err := r.jumps(spec)
		var got []string
		for _, j := range jumps {
			got = append(got, j.user+"@"+j.addr())
		}
		if err != nil || strings.Join(got, ",") != want {
			t.Errorf("%q: %v, %v; want %s", spec, got, err, want)
		}
	}
	for _, bad := range []string{"a,,b", "u@", "h:0", "h:x", "h/x"} {
		if _, err := r.jumps(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// sftpFile records what writeSynced sends: the data, and how much of it had
// been written at each fsync.
type sftpFile struct {
	bytes.Buffer
	syncedAt []int
	syncErr  error
}

func (f *sftpFile) ReadFromWithConcurrency(r io.Reader, _ int) (int64, error) {
	return io.Copy(&f.Buffer, r)
}

func (f *sftpFile) Sync() error {
	if f.syncErr != nil {
		return f.syncErr
	}
	f.syncedAt = append(f.syncedAt, f.Len())
	return nil
}

func TestWriteSynced(t *testing.T) {
	const slice = 1 << 10
	unsupported := &sftp.StatusError{Code: uint32(sftp.ErrSSHFxOpUnsupported)}
	tests := []struct {
		name          string
		size          int
		syncErr       error
		want          []int // written at each fsync
		wantByCommand bool
		wantErr       string
	}{
		{"empty", 0, nil, []int{0}, false, ""},
		{"under a slice: one fsync, at the end", slice - 1, nil, []int{slice - 1}, false, ""},
		{"one slice exactly", slice, nil, []int{slice}, false, ""},
		{"one byte over", slice + 1, nil, []int{slice, slice + 1}, false, ""},
		{"slices exactly", 3 * slice, nil, []int{slice, 2 * slice, 3 * slice}, false, ""},
		{"slices and a part", 2*slice + 5, nil, []int{slice, 2 * slice, 2*slice + 5}, false, ""},
		{"server without fsync", 3*slice + 5, unsupported, nil, true, ""},
		{"fsync fails", 3 * slice, errors.New("EIO"), nil, false, "fsync /d/.f.tmp: EIO"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := make([]byte, tt.size)
			for i := range data {
				data[i] = byte(i * 7 / 3)
			}
			f := &sftpFile{syncErr: tt.syncErr}
			byCommand, err := writeSynced(context.Background(), f, bytes.NewReader(data), "/d/.f.tmp", slice)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(f.Bytes(), data) {
				t.Errorf("sent %d bytes that differ from the %d given", f.Len(), len(data))
			}
			if byCommand != tt.wantByCommand || fmt.Sprint(f.syncedAt) != fmt.Sprint(tt.want) {
				t.Errorf("synced at %v (by command %t), want %v (%t)", f.syncedAt, byCommand, tt.want, tt.wantByCommand)
			}
		})
	}
}

func TestParseMarker(t *testing.T) {
	const boot = "5d1b3c1e-8a2f-4b7e-9c3d-0e1f2a3b4c5d"
	stat := "4242 (ba sh)) S 1 4242 4242 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 987654 1000 200"
	tests := []struct {
		in   string
		want conn.Proc
		ok   bool
	}{
		{"4242", conn.Proc{PGID: 4242}, true},
		{"4242  ", conn.Proc{PGID: 4242}, true},
		{"4242  " + boot, conn.Proc{PGID: 4242, Boot: boot}, true},
		{"4242 " + stat + " " + boot, conn.Proc{PGID: 4242, Start: 987654, Boot: boot}, true},
		{"4242 " + stat + " ", conn.Proc{PGID: 4242, Start: 987654}, true},
		{"x 1 2", conn.Proc{}, false},
		{"1", conn.Proc{}, false},
	}
	for _, tt := range tests {
		got, ok := parseMarker(tt.in)
		if ok != tt.ok || got != tt.want {
			t.Errorf("parseMarker(%q) = %+v, %v; want %+v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestExpandProxyCommand(t *testing.T) {
	e := endpoint{alias: "web", host: "10.0.0.5", port: 2222, user: "deploy"}
	tests := []struct {
		cmd, want, err string
	}{
		{cmd: "nc %h %p", want: "nc 10.0.0.5 2222"},
		{cmd: "ssh -W %h:%p %r@bastion # %n 100%%", want: "ssh -W 10.0.0.5:2222 deploy@bastion # web 100%"},
		{cmd: "echo %%h", want: "echo %h"},
		{cmd: "nc %h %p %", err: "ends with a lone %"},
		{cmd: "nc %C", err: "%C is not supported"},
	}
	for _, tt := range tests {
		got, err := expandProxyCommand(tt.cmd, e)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: err = %v, want %q", tt.cmd, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%q = %q, %v; want %q", tt.cmd, got, err, tt.want)
		}
	}
	for _, bad := range []endpoint{{host: "a;b", port: 22, user: "u"}, {host: "h", port: 22, user: "$(id)"}, {host: "-oX", port: 22, user: "u"}} {
		if _, err := expandProxyCommand("nc %h %p %r", bad); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}

// TestProxyPrecedence: ProxyJump and ProxyCommand compete, the first
// written wins; the inventory's jump host var wins over both.
func TestProxyPrecedence(t *testing.T) {
	cfgPath := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(cfgPath, []byte(`
Host cmd-first
  ProxyCommand nc %h %p
  ProxyJump bastion
Host jump-first
  ProxyJump bastion
  ProxyCommand nc %h %p
Host cmd-none
  ProxyCommand none
Host *
  ProxyCommand nc -x proxy %h %p
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadSSHConfig(cfgPath, true)
	if err != nil {
		t.Fatal(err)
	}
	r := newResolver(cfg, &Options{Home: t.TempDir()})
	r.localUser = "me"
	tests := []struct {
		name, cmd string
		jumps     int
		vars      map[string]any
	}{
		{"cmd-first", "nc cmd-first 22", 0, nil},
		{"jump-first", "", 1, nil},
		{"cmd-none", "", 0, nil},
		{"other", "nc -x proxy other 22", 0, nil},
		{"other", "", 1, map[string]any{JumpVar: "bastion2"}},
	}
	for _, tt := range tests {
		ep, jumps, err := r.target(conn.Target{Name: tt.name, Addr: tt.name, Port: 22, Vars: tt.vars})
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if ep.proxyCommand != tt.cmd || len(jumps) != tt.jumps {
			t.Errorf("%s (%v): ProxyCommand %q, %d jumps; want %q, %d", tt.name, tt.vars, ep.proxyCommand, len(jumps), tt.cmd, tt.jumps)
		}
	}
}
