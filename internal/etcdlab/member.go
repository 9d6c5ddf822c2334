package etcdlab

// PID is the member's process id while it runs, else 0: for tests that
// stop it the way a service manager does, by its pid.
func (m *Member) PID() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil || m.cmd.Process == nil {
		return 0
	}
	select {
	case <-m.done:
		return 0
	default:
		return m.cmd.Process.Pid
	}
}

// DataDir is the member's --data-dir.
func (m *Member) DataDir() string {
	for i, a := range m.args {
		if a == "--data-dir" && i+1 < len(m.args) {
			return m.args[i+1]
		}
	}
	return ""
}
