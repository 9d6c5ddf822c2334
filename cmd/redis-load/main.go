// Command redis-load writes to whichever of a set of Redis servers is the
// primary, at a fixed rate for a bounded time, and then checks that every
// write the primary acknowledged is still there: the proof that a rolling
// change lost nothing. It prints one JSON line and exits 1 when a write was
// lost.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

type report struct {
	Acked     int      `json:"acked"`
	Failed    int      `json:"failed"`
	Lost      int      `json:"lost"`
	SlowestMS float64  `json:"slowest_ms"`
	Primary   string   `json:"primary_at_end"`
	LostKeys  []string `json:"lost_keys,omitempty"`
}

func main() {
	addrs := flag.String("addrs", "127.0.0.51:6379,127.0.0.52:6379,127.0.0.53:6379", "the servers, comma-separated")
	rate := flag.Int("rate", 200, "writes per second")
	dur := flag.Duration("duration", 30*time.Second, "how long to write at most")
	max := flag.Int("max", 100000, "writes at most")
	stopFile := flag.String("stop-file", "", "stop writing once this file exists")
	prefix := flag.String("prefix", "load:"+strconv.FormatInt(time.Now().UnixNano(), 36), "key prefix")
	flag.Parse()
	if *dur > 10*time.Minute || *max > 1000000 || *rate <= 0 {
		fmt.Fprintln(os.Stderr, "redis-load: duration at most 10m, max at most 1000000, rate > 0")
		os.Exit(2)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, *dur)
	defer cancelT()

	clients := map[string]*redis.Client{}
	list := strings.Split(*addrs, ",")
	for _, a := range list {
		clients[a] = redis.NewClient(&redis.Options{Addr: a, DialTimeout: time.Second, ReadTimeout: 2 * time.Second,
			WriteTimeout: 2 * time.Second, MaxRetries: -1, DisableIdentity: true, Protocol: 2})
	}
	primary := func() string {
		for _, a := range list {
			c, cancel := context.WithTimeout(context.Background(), time.Second)
			role, err := clients[a].Do(c, "ROLE").Slice()
			cancel()
			if err == nil && len(role) > 0 && role[0] == "master" {
				return a
			}
		}
		return ""
	}
	var r report
	var acked []string
	cur := primary()
	tick := time.NewTicker(time.Second / time.Duration(*rate))
	defer tick.Stop()
loop:
	for i := 0; i < *max; i++ {
		select {
		case <-ctx.Done():
			break loop
		case <-tick.C:
		}
		if *stopFile != "" {
			if _, err := os.Stat(*stopFile); err == nil {
				break
			}
		}
		if cur == "" {
			cur = primary()
			if cur == "" {
				r.Failed++
				continue
			}
		}
		key := fmt.Sprintf("%s:%d", *prefix, i)
		start := time.Now()
		c, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := clients[cur].Set(c, key, i, 0).Err()
		cancel()
		if ms := float64(time.Since(start).Microseconds()) / 1000; ms > r.SlowestMS {
			r.SlowestMS = ms
		}
		if err != nil {
			// READONLY after a failover, or the server restarting: find the
			// primary again; this write was not acknowledged.
			r.Failed++
			cur = ""
			continue
		}
		acked = append(acked, key)
	}
	r.Acked = len(acked)

	// Every acknowledged write must be on the primary at the end, and once
	// the replicas caught up, on them too.
	deadline := time.Now().Add(30 * time.Second)
	for r.Primary = primary(); r.Primary == "" && time.Now().Before(deadline); r.Primary = primary() {
		time.Sleep(100 * time.Millisecond)
	}
	if r.Primary == "" {
		fmt.Fprintln(os.Stderr, "redis-load: no primary at the end")
		os.Exit(1)
	}
	for i := 0; i < len(acked); i += 500 {
		end := min(i+500, len(acked))
		c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		vals, err := clients[r.Primary].MGet(c, acked[i:end]...).Result()
		cancel()
		if err != nil {
			fmt.Fprintln(os.Stderr, "redis-load: reading back:", err)
			os.Exit(1)
		}
		for j, v := range vals {
			if v == nil {
				r.Lost++
				if len(r.LostKeys) < 20 {
					r.LostKeys = append(r.LostKeys, acked[i+j])
				}
			}
		}
	}
	json.NewEncoder(os.Stdout).Encode(r)
	if r.Lost > 0 {
		os.Exit(1)
	}
}
