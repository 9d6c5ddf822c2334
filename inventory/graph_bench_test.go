package inventory

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// nestedInventory writes an INI inventory of n groups, each with one host,
// shaped as:
//   - chain: g1 is a child of g0, g2 of g1, ... (n deep);
//   - shared: gi is a child of g(i-1) and of g(i-2), so every group is
//     reached by exponentially many paths from all.
func nestedInventory(tb testing.TB, dir, shape string, n int) string {
	tb.Helper()
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "[g%d]\nh%d\n", i, i)
	}
	for i := 1; i < n; i++ {
		fmt.Fprintf(&b, "[g%d:children]\ng%d\n", i-1, i)
		if shape == "shared" && i >= 2 {
			fmt.Fprintf(&b, "[g%d:children]\ng%d\n", i-2, i)
		}
	}
	p := filepath.Join(dir, fmt.Sprintf("%s%d.ini", shape, n))
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		tb.Fatal(err)
	}
	return p
}

// BenchmarkGraphScaling graphs inventories of 300 and of 3000 nested
// groups (loaded once, outside the timing) and reports the time per group
// of each and their ratio (ratio_3000_to_300): near 1 when the work is
// linear in the inventory's size, 10 when quadratic. A figure to read, not
// an assertion.
func BenchmarkGraphScaling(b *testing.B) {
	for _, shape := range []string{"chain", "shared"} {
		b.Run(shape, func(b *testing.B) {
			dir := b.TempDir()
			sizes := []int{300, 3000}
			invs := map[int]*Inventory{}
			for _, n := range sizes {
				inv, ds := Load(nestedInventory(b, dir, shape, n))
				if ds.HasErrors() {
					b.Fatal(ds.Err())
				}
				invs[n] = inv
			}
			b.ResetTimer()
			perGroup := map[int]time.Duration{}
			var out int64
			for i := 0; i < b.N; i++ {
				for _, n := range sizes {
					start := time.Now()
					cw := &countWriter{}
					if err := invs[n].WriteGraph(cw, ""); err != nil {
						b.Fatal(err)
					}
					perGroup[n] += time.Since(start) / time.Duration(n)
					if n == 3000 {
						out = cw.n
					}
				}
			}
			b.ReportMetric(float64(perGroup[300])/float64(b.N), "ns/group@300")
			b.ReportMetric(float64(perGroup[3000])/float64(b.N), "ns/group@3000")
			b.ReportMetric(float64(perGroup[3000])/float64(perGroup[300]), "ratio_3000_to_300")
			b.ReportMetric(float64(out)/3000, "bytes/group@3000")
		})
	}
}

// TestGraphSize: the graph's size is linear in the inventory's, whatever
// its shape: ten times the groups, about ten times the bytes (a naive graph
// is quadratic for a chain and exponential for shared children), and no
// line longer than the deepest indentation allows.
func TestGraphSize(t *testing.T) {
	dir := t.TempDir()
	for _, shape := range []string{"chain", "shared"} {
		t.Run(shape, func(t *testing.T) {
			size := map[int]int64{}
			for _, n := range []int{100, 1000} {
				inv, ds := Load(nestedInventory(t, dir, shape, n))
				if ds.HasErrors() {
					t.Fatal(ds.Err())
				}
				var b strings.Builder
				if err := inv.WriteGraph(&b, ""); err != nil {
					t.Fatal(err)
				}
				size[n] = int64(b.Len())
				seen := map[string]bool{}
				for _, l := range strings.Split(b.String(), "\n") {
					if len(l) > 3*maxGraphDepth+80 {
						t.Fatalf("line of %d bytes: %.120s", len(l), l)
					}
					name := strings.TrimLeft(l, " |-")
					if strings.HasPrefix(name, "@") && strings.HasSuffix(name, ":") {
						seen[name] = true
					}
				}
				// Every group is still shown in full once.
				if len(seen) != n+2 { // with all and ungrouped
					t.Errorf("%d groups shown in full, want %d", len(seen), n+2)
				}
			}
			if r := float64(size[1000]) / float64(size[100]); r > 12 {
				t.Errorf("1000 groups print %d bytes, 100 print %d: %.1f times", size[1000], size[100], r)
			}
		})
	}
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

var _ io.Writer = (*countWriter)(nil)
