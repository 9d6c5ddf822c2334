package swap

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/runbookhq/runbook/internal/conn/local"
	"github.com/runbookhq/runbook/modules"
)

// benchSize is about the size of an etcd binary.
const benchSize = 25 << 20

// writeSynced writes n random bytes to p and syncs them, so that the
// writeback of a benchmark's setup does not land in the timed part.
func writeSynced(b *testing.B, p string, n int) {
	b.Helper()
	data := make([]byte, n)
	if _, err := rand.Read(data); err != nil {
		b.Fatal(err)
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		b.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkPrepare stages a binary of benchSize over the local connection
// beside an installed one, as the first member's prepare of an upgrade
// does: a new src (hashed on the controller once), a dest hashed for the
// first time, no backup yet. Two versions of a binary most often differ in
// size; "same size" is the case where dest's content must be read to know.
func BenchmarkPrepare(b *testing.B) {
	for _, bb := range []struct {
		name     string
		destSize int
	}{
		{"other size", benchSize - 4096},
		{"same size", benchSize},
	} {
		b.Run(bb.name, func(b *testing.B) {
			var cmds, hashes, copies int
			for b.Loop() {
				b.StopTimer()
				runbook, bin := b.TempDir(), b.TempDir()
				writeSynced(b, filepath.Join(runbook, "etcd-new"), benchSize)
				writeSynced(b, filepath.Join(bin, "etcd"), bb.destSize)
				sp := &spy{Conn: local.New()}
				h := &modules.Host{Name: "etcd-1", Conn: sp, Log: zerolog.Nop(), RunbookDir: runbook}
				m := &Module{Src: "etcd-new", Dest: filepath.Join(bin, "etcd"), Mode: 0o755, Prepare: true}
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				b.StartTimer()
				res, err := m.Run(ctx, h)
				b.StopTimer()
				cancel()
				if err != nil || !res.Changed {
					b.Fatalf("prepare = %+v, %v", res, err)
				}
				_, c := sp.reset()
				cmds += len(c)
				hashes += countCommands(c, "sha256sum ")
				copies += countCommands(c, "cp ")
				b.StartTimer()
			}
			// What the host is asked, which the time on a shared machine
			// only hints at: commands, files hashed (of about benchSize
			// each), and files copied (each also flushed to disk).
			b.ReportMetric(float64(cmds)/float64(b.N), "cmds/op")
			b.ReportMetric(float64(hashes)/float64(b.N), "hashes/op")
			b.ReportMetric(float64(copies)/float64(b.N), "copies/op")
		})
	}
}

// BenchmarkSwapAfterPrepare is the swap inside the outage, after a prepare
// of benchSize in the same run: a rename, with nothing read or hashed
// again, however the backup was kept.
func BenchmarkSwapAfterPrepare(b *testing.B) {
	var cmds, hashes int
	for b.Loop() {
		b.StopTimer()
		runbook, bin := b.TempDir(), b.TempDir()
		writeSynced(b, filepath.Join(runbook, "etcd-new"), benchSize)
		writeSynced(b, filepath.Join(bin, "etcd"), benchSize-4096)
		sp := &spy{Conn: local.New()}
		h := &modules.Host{Name: "etcd-1", Conn: sp, Log: zerolog.Nop(), RunbookDir: runbook}
		m := &Module{Src: "etcd-new", Dest: filepath.Join(bin, "etcd"), Mode: 0o755}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		p := *m
		p.Prepare = true
		if _, err := p.Run(ctx, h); err != nil {
			b.Fatal(err)
		}
		sp.reset()
		b.StartTimer()
		res, err := m.Run(ctx, h)
		b.StopTimer()
		cancel()
		if err != nil || res.Data["staged"] != "reused" {
			b.Fatalf("swap = %+v, %v", res, err)
		}
		_, c := sp.reset()
		cmds += len(c)
		hashes += countCommands(c, "sha256sum ")
		b.StartTimer()
	}
	b.ReportMetric(float64(cmds)/float64(b.N), "cmds/op")
	b.ReportMetric(float64(hashes)/float64(b.N), "hashes/op")
}
