//go:build !linux

package etcdlab

import "syscall"

// sysProcAttr has no parent-death signal outside Linux; Close stops members.
func sysProcAttr() *syscall.SysProcAttr { return nil }
