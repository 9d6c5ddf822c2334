package etcdload

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Exit statuses of the command.
const (
	ExitOK     = 0 // every acknowledged write was read back
	ExitFailed = 1 // writes lost, not verified, none acknowledged, or an error
	ExitUsage  = 2 // bad flags
)

// DefaultDuration is the hard cap on a run unless -duration says otherwise,
// so that a forgotten load stops by itself.
const DefaultDuration = 10 * time.Minute

const usage = `usage: etcd-load -endpoints URL,... [-rate N] [-duration D] [-max-writes N] [-out FILE]
       etcd-load -report-from FILE [-explain-logs m1=LOG,... [-journal RUN.jsonl]]

Writes keys PREFIX<seq> to etcd at a steady rate with one client over all the
endpoints, each write one attempt with its own timeout, until SIGINT or SIGTERM,
-duration (a hard cap) or -max-writes. Then it reads every key back
(linearizably) and reports writes attempted, acknowledged, failed and lost
(acknowledged but missing or changed), the longest time without an
acknowledged write, latency p50/p99/max of acknowledged writes and the slowest
one. A second signal cuts the verification short.

Exit status: 0 when every acknowledged write was read back, 1 when a write was
lost, the verification did not finish or no write was acknowledged, 2 for bad
flags. -report-from prints the summary of a saved report, with the same status.

`

// Main runs the command with args (without the program name). Each value
// received from interrupts is a signal: the first stops the writes, the next
// cuts the verification short.
func Main(args []string, stdout, stderr io.Writer, interrupts <-chan struct{}) int {
	fs := flag.NewFlagSet("etcd-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	var (
		endpoints     = fs.String("endpoints", "", "etcd client URLs, comma-separated (required)")
		rate          = fs.Float64("rate", 100, "writes started per second")
		duration      = fs.Duration("duration", DefaultDuration, "stop writing after this long (a hard cap)")
		maxWrites     = fs.Int64("max-writes", 0, "stop writing after this many writes (0: no limit)")
		timeout       = fs.Duration("timeout", 2*time.Second, "timeout of each write")
		maxInFlight   = fs.Int("max-in-flight", 64, "writes awaiting an answer at once; the rate drops when reached")
		prefix        = fs.String("prefix", "/load/", "key prefix")
		out           = fs.String("out", "", "write the report as JSON to this file")
		verifyTimeout = fs.Duration("verify-timeout", 2*time.Minute, "give up reading the writes back after this long")
		reportFrom    = fs.String("report-from", "", "print the summary of a report written by -out, and do nothing else")
		watch         = fs.Duration("watch", 0, "also read every member's status this often (like 20ms), and report when each was out: not answering, without a leader, or behind the leader")
		explain       = fs.String("explain-logs", "", "with -report-from: name=path of each member's etcd log (comma-separated); print the cause of each failed or slow write, one line for each run of them, and each outage")
		journalPath   = fs.String("journal", "", "with -explain-logs: the journal of the runbook run (runs/RUN_ID.jsonl in its state folder), to say which step ran at each failed or slow write")
	)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		return ExitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "etcd-load: unexpected argument %q; every setting is a flag, like -rate 200\n", fs.Arg(0))
		return ExitUsage
	}

	if *reportFrom != "" {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		delete(set, "report-from")
		delete(set, "explain-logs")
		if set["journal"] && *explain == "" {
			fmt.Fprintln(stderr, "etcd-load: -journal goes with -explain-logs, which it adds the runbook's steps to")
			return ExitUsage
		}
		delete(set, "journal")
		if len(set) > 0 {
			fmt.Fprintln(stderr, "etcd-load: -report-from prints a saved report and takes no other flag but -explain-logs and -journal")
			return ExitUsage
		}
		r, err := ReadReport(*reportFrom)
		if err != nil {
			fmt.Fprintln(stderr, "etcd-load:", err)
			return ExitFailed
		}
		if *explain != "" {
			var j *Journal
			if *journalPath != "" {
				if j, err = ReadJournal(*journalPath); err != nil {
					fmt.Fprintln(stderr, "etcd-load: -journal:", err)
					return ExitUsage
				}
			}
			if err := Explain(r, splitList(*explain), j, stdout); err != nil {
				fmt.Fprintln(stderr, "etcd-load: -explain-logs:", err)
				return ExitUsage
			}
			return ExitOK
		}
		return finish(r, stdout, stderr)
	}

	eps := splitList(*endpoints)
	if err := CheckEndpoints(eps); err != nil {
		fmt.Fprintln(stderr, "etcd-load: -endpoints:", err)
		return ExitUsage
	}
	if *verifyTimeout <= 0 {
		fmt.Fprintf(stderr, "etcd-load: -verify-timeout %s must be more than 0, like 2m\n", *verifyTimeout)
		return ExitUsage
	}
	cfg := Config{
		Prefix: *prefix, RunID: newRunID(), Rate: *rate, Duration: *duration, MaxWrites: *maxWrites,
		Timeout: *timeout, MaxInFlight: *maxInFlight,
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintln(stderr, "etcd-load:", strings.ReplaceAll(err.Error(), "\n", "; "))
		return ExitUsage
	}
	if *out != "" {
		// Fail now, not after a run of ten minutes.
		if err := checkWritable(*out); err != nil {
			fmt.Fprintln(stderr, "etcd-load: -out:", err)
			return ExitUsage
		}
	}

	store, err := DialEtcd(eps)
	if err != nil {
		fmt.Fprintln(stderr, "etcd-load:", err)
		return ExitFailed
	}
	defer store.Close()

	runCtx, stopRun := context.WithCancel(context.Background())
	defer stopRun()
	abortCtx, abort := context.WithCancel(context.Background())
	defer abort()
	done := make(chan struct{})
	defer close(done)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			case <-interrupts:
			}
			if i == 0 {
				fmt.Fprintln(stderr, "etcd-load: stopping the writes; reading them back (signal again to cut it short)")
				stopRun()
			} else {
				abort()
				return
			}
		}
	}()

	rec := NewRecorder(time.Now)
	fmt.Fprintf(stderr, "etcd-load: writing %s* at %.4g/s to %s for at most %s (run %s)\n", cfg.Prefix, cfg.Rate, strings.Join(eps, ","), cfg.Duration, cfg.RunID)
	var members []MemberOutages
	watched := make(chan struct{})
	watchCtx, stopWatch := context.WithCancel(context.Background())
	if *watch > 0 {
		go func() {
			defer close(watched)
			members = WatchMembers(watchCtx, eps, *watch, watchMaxLag)
		}()
	} else {
		close(watched)
	}
	reason, err := Run(runCtx, cfg, store, rec)
	stopWatch()
	<-watched
	if err != nil {
		fmt.Fprintln(stderr, "etcd-load:", err)
		return ExitFailed
	}
	vctx, cancel := context.WithTimeout(abortCtx, *verifyTimeout)
	defer cancel()
	v := Verify(vctx, cfg, store, rec.Writes(), 1000)
	r := NewReport(cfg, eps, reason, rec.Stats(), v)
	r.Members = members
	if *out != "" {
		if err := r.WriteFile(*out); err != nil {
			fmt.Fprintln(stderr, "etcd-load:", err)
			r.WriteText(stdout)
			return ExitFailed
		}
	}
	return finish(r, stdout, stderr)
}

// watchMaxLag is how far behind the leader's commit index a member may be
// and count as in: the upgrade runbook's caught_up_entries.
const watchMaxLag = 1000

func finish(r *Report, stdout, stderr io.Writer) int {
	if err := r.WriteText(stdout); err != nil {
		fmt.Fprintln(stderr, "etcd-load: writing the summary:", err)
		return ExitFailed
	}
	if !r.OK() {
		return ExitFailed
	}
	return ExitOK
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// newRunID is random, so that values of two runs always differ.
func newRunID() string {
	var b [6]byte
	rand.Read(b[:])
	return time.Now().UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

// checkWritable makes sure the report can be written where asked, by
// writing the temporary file WriteFile will use.
func checkWritable(path string) error {
	f, err := os.Create(path + ".tmp")
	if err != nil {
		return err
	}
	f.Close()
	return os.Remove(path + ".tmp")
}
