package etcdctl

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

func TestCloseIfQuiet(t *testing.T) {
	tests := []struct {
		name   string
		speak  bool
		closed bool
	}{
		{"never written", false, true},
		{"written before the limit", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, server := net.Pipe()
			defer server.Close()
			c := closeIfQuiet(client, 20*time.Millisecond)
			defer c.Close()
			if tt.speak {
				go c.Write([]byte("GET"))
				if _, err := io.ReadFull(server, make([]byte, 3)); err != nil {
					t.Fatal(err)
				}
			}
			time.Sleep(100 * time.Millisecond)
			wrote := make(chan error, 1)
			go func() {
				_, err := c.Write([]byte("x"))
				wrote <- err
			}()
			server.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, rerr := io.ReadFull(server, make([]byte, 1))
			werr := <-wrote
			if tt.closed {
				if !errors.Is(werr, io.ErrClosedPipe) || rerr == nil {
					t.Errorf("after the limit: write %v, read %v; want the connection closed", werr, rerr)
				}
				return
			}
			if werr != nil || rerr != nil {
				t.Errorf("a connection that spoke was closed: write %v, read %v", werr, rerr)
			}
		})
	}
}

// closedQuiet reports whether the connection was closed for its silence.
func (q *quietConn) closedQuiet() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.closed
}
