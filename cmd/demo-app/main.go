// Command demo-app is the small HTTP service that the example runbooks restart
// and upgrade on this machine. It answers /health and /version, serves its
// requests on / (failing -error-rate of them with a 500) and counts them in
// http_requests_total{code} on /metrics, for the canary analysis demo; with
// -traffic it sends itself that many requests a second, so that the demo's
// Prometheus has rates to read. It stops by itself after -max-lifetime so a
// forgotten demo never lingers.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18081", "address to listen on (loopback only)")
	name := flag.String("name", "demo", "instance name, echoed by /health")
	version := flag.String("version", "1.0.0", "version reported by /version")
	maxLife := flag.Duration("max-lifetime", time.Hour, "stop by itself after this long")
	startDelay := flag.Duration("start-delay", 0, "wait this long before listening, like a slow service")
	errorRate := flag.Float64("error-rate", 0, "fraction of requests to / answered with a 500 (0 to 1), spread evenly")
	traffic := flag.Int("traffic", 0, "requests a second this instance sends to its own /, so its metrics move")
	flag.Parse()

	time.Sleep(*startDelay)
	started := time.Now()
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, `{"status":"ok","name":%q,"version":%q,"pid":%d,"uptime_seconds":%.1f}`+"\n",
			*name, *version, os.Getpid(), time.Since(started).Seconds())
	})
	mux.HandleFunc("/version", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, *version) })
	reg := prometheus.NewRegistry()
	reqs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "http_requests_total", Help: "requests to / by status code"}, []string{"code"})
	reg.MustRegister(reqs)
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	var served atomic.Int64
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		// Failures spread evenly: the n-th request fails when the running
		// count of failures due falls behind.
		n := served.Add(1)
		if int64(float64(n)**errorRate) > int64(float64(n-1)**errorRate) {
			reqs.WithLabelValues("500").Inc()
			http.Error(w, "injected failure", http.StatusInternalServerError)
			return
		}
		reqs.WithLabelValues("200").Inc()
		fmt.Fprintf(w, "%s %s\n", *name, *version)
	})
	srv := &http.Server{Addr: *addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *maxLife)
	defer cancel()
	go func() {
		<-ctx.Done()
		shut, c := context.WithTimeout(context.Background(), 5*time.Second)
		defer c()
		srv.Shutdown(shut)
	}()
	if *traffic > 0 {
		go selfTraffic(ctx, "http://"+*addr+"/", *traffic)
	}
	log.Printf("demo-app %s %s listening on %s", *name, *version, *addr)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
	log.Printf("demo-app %s stopped", *name)
}

// selfTraffic sends perSecond requests a second to url until ctx ends.
func selfTraffic(ctx context.Context, url string, perSecond int) {
	client := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(time.Second / time.Duration(perSecond))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if resp, err := client.Get(url); err == nil {
				resp.Body.Close()
			}
		}
	}
}
