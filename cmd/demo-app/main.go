// Command demo-app is the small HTTP service that the example runbooks restart
// and upgrade on this machine. It answers /health and /version, and stops by
// itself after -max-lifetime so a forgotten demo never lingers.
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
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18081", "address to listen on (loopback only)")
	name := flag.String("name", "demo", "instance name, echoed by /health")
	version := flag.String("version", "1.0.0", "version reported by /version")
	maxLife := flag.Duration("max-lifetime", time.Hour, "stop by itself after this long")
	startDelay := flag.Duration("start-delay", 0, "wait this long before listening, like a slow service")
	flag.Parse()

	time.Sleep(*startDelay)
	started := time.Now()
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, `{"status":"ok","name":%q,"version":%q,"pid":%d,"uptime_seconds":%.1f}`+"\n",
			*name, *version, os.Getpid(), time.Since(started).Seconds())
	})
	mux.HandleFunc("/version", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, *version) })
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
	log.Printf("demo-app %s %s listening on %s", *name, *version, *addr)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
	log.Printf("demo-app %s stopped", *name)
}
