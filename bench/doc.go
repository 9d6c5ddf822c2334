// Package bench measures runbook over SSH against the least any tool could
// do: the same hosts, connections and commands with raw x/crypto/ssh.
package bench
