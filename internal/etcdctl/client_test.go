package etcdctl

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTimeout: a member that accepts connections and never answers costs
// the configured timeout, not more, and the error says so.
func TestTimeout(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		var held []net.Conn // open and silent until the listener closes
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	cfg := Config{Timeout: 300 * time.Millisecond, DialTimeout: time.Second}
	c, err := cfg.Dial("http://" + l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	_, err = c.Status(ctx)
	took := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "status: no answer within 300ms") {
		t.Errorf("Status = %v", err)
	}
	if took < 300*time.Millisecond || took > 3*time.Second {
		t.Errorf("Status took %s with a 300ms timeout", took)
	}
}

func TestRefusedAtOnce(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c, err := (Config{}).Dial("http://" + addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	_, err = c.Versions(context.Background())
	if err == nil || !strings.Contains(err.Error(), "connection refused") || time.Since(start) > time.Second {
		t.Errorf("Versions = %v after %s, want connection refused at once", err, time.Since(start))
	}
}

func TestVerifySnapshot(t *testing.T) {
	db := make([]byte, 1024)
	for i := range db {
		db[i] = byte(i)
	}
	sum := sha256.Sum256(db)
	good := append(append([]byte{}, db...), sum[:]...)
	badTrailer := append([]byte{}, good...)
	badTrailer[len(badTrailer)-1] ^= 1
	badData := append([]byte{}, good...)
	badData[10] ^= 1
	tests := []struct {
		name    string
		data    []byte
		wantErr string
	}{
		{"good", good, ""},
		{"trailer changed", badTrailer, "is damaged: its last 32 bytes say sha256"},
		{"data changed", badData, "is damaged"},
		{"no trailer", db, "has 1024 bytes; a snapshot has a multiple of 512 plus 32"},
		{"cut short", good[:1000], "has 1000 bytes"},
		{"empty", nil, "has 0 bytes"},
	}
	dir := t.TempDir()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-"))
			if err := os.WriteFile(path, tt.data, 0o600); err != nil {
				t.Fatal(err)
			}
			size, digest, err := VerifySnapshot(path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("VerifySnapshot = %v, want an error containing %q", err, tt.wantErr)
				}
				return
			}
			whole := sha256.Sum256(good)
			if err != nil || size != int64(len(good)) || digest != hex.EncodeToString(whole[:]) {
				t.Errorf("VerifySnapshot = %d, %s, %v", size, digest, err)
			}
		})
	}
	if _, _, err := VerifySnapshot(filepath.Join(dir, "missing")); err == nil {
		t.Error("VerifySnapshot of a missing file passed")
	}
}
