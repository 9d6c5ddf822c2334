package etcdfacts

import (
	"context"
	"testing"
)

// BenchmarkGather times one full reading of the facts, as a step's when:
// or until: takes it, against a real three-member lab.
func BenchmarkGather(b *testing.B) {
	c := lab.Get(b)
	leader, err := c.Leader(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	h := host(c, leader)
	ctx := context.Background()
	if _, err := Gather(ctx, h); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		f, err := Gather(ctx, h)
		if err != nil || !f.Healthy {
			b.Fatalf("Gather = %+v, %v", f, err)
		}
	}
}
