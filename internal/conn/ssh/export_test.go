package ssh

import (
	"net"

	"golang.org/x/crypto/ssh"
)

// CheckHostKey checks key as the host at addr against the known_hosts file
// kh, as a handshake would, for tests of rules a real sshd cannot show.
func CheckHostKey(kh, addr string, key ssh.PublicKey) error {
	remote, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return err
	}
	return (&hostKeys{}).check([]string{kh}, false)(addr, remote, key)
}
