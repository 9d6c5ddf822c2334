package etcdlab

import "syscall"

// sysProcAttr kills a member when the test process dies without closing its
// lab (a panic, a timeout kill), so no etcd outlives the test run.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
