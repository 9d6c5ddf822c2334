package nginxlab

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
)

// TestStartReload: three instances serve their version; a reload by signal
// through the pid file serves the new config; the cleanup stops them.
func TestStartReload(t *testing.T) {
	ins := Start(t, 3, "1")
	for _, in := range ins {
		if status, body, err := in.Get("/healthz"); err != nil || status != 200 || body != "ok\n" {
			t.Fatalf("%s /healthz = %d %q, %v", in.Name, status, body, err)
		}
	}
	in := ins[1]
	if err := os.WriteFile(in.Conf, []byte(Config(in.Dir, in.Addr, "2")), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command(Binary(t), "-t", "-q", "-c", in.Conf).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, b)
	}
	pid, err := in.MasterPID()
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	in.WaitBody(t, "/", "version 2\n")
	ins[0].WaitBody(t, "/", "version 1\n")
}
