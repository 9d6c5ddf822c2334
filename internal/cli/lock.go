package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/runbookhq/runbook/internal/diag"
	"github.com/runbookhq/runbook/internal/etcdctl"
	"github.com/runbookhq/runbook/internal/event"
	"github.com/runbookhq/runbook/internal/exitcode"
	"github.com/runbookhq/runbook/internal/plan"
	"github.com/runbookhq/runbook/internal/runlock"
	"github.com/runbookhq/runbook/internal/spec"
	"github.com/runbookhq/runbook/modules"
)

func init() { commands = append(commands, newLocksCmd, newUnlockCmd) }

// lockTimeout bounds taking the run lock: reaching the store and one
// transaction. A lock that is held refuses at once; it is never waited for.
const lockTimeout = 30 * time.Second

// runLock is the run lock a run holds while it changes hosts.
type runLock struct {
	store runlock.Store
	held  runlock.Held
}

// lockRun takes the run lock of plan p for run runID: one lock per host of the
// plan and the runbook's lock.name, in the runbook's store (the state folder's
// files by default). Another run holding any of them refuses with exit 3 and
// its identity; nothing has been touched then. A --check run changes nothing
// and takes no lock (nil, nil).
func (a *app) lockRun(p *plan.Plan, file, inv, runID string, f *runFlags) (*runLock, error) {
	if f.check {
		return nil, nil
	}
	lk, ds := effectiveLock(p)
	if ds.HasErrors() {
		// buildPlan reported these already; a plan reaches here only without them.
		return nil, withCode(exitcode.Invalid, ds.Err())
	}
	store, err := openRunLockStore(lk, p.File, f.stateDir, f.shared)
	if err != nil {
		return nil, withCode(exitcode.Stopped, fmt.Errorf("run lock: %w; nothing was touched", err))
	}
	keys := make([]string, 0, len(p.Hosts)+1)
	for _, h := range p.Hosts {
		keys = append(keys, runlock.HostKey(h.Name))
	}
	if lk != nil && lk.Name != "" {
		keys = append(keys, runlock.NameKey(lk.Name))
	}
	if len(keys) == 0 {
		store.Close()
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), lockTimeout)
	defer cancel()
	held, err := store.Acquire(ctx, keys, runlock.Me(runID, p.Runbook+" ("+file+")"))
	if err != nil {
		store.Close()
		var he *runlock.HeldError
		if errors.As(err, &he) {
			where := "--state-dir " + shellQuote(f.stateDir)
			if f.shared != nil {
				where = "--state " + shellQuote(f.shared.raw)
			}
			return nil, withCode(exitcode.Stopped, errors.New(heldMessage(he, lk, file, inv, where)))
		}
		if why := etcdUnreachable(lk, file); why != "" {
			err = fmt.Errorf("%w (%s)", err, why)
		}
		return nil, withCode(exitcode.Stopped, fmt.Errorf("run lock: %w; nothing was touched", err))
	}
	return &runLock{store: store, held: held}, nil
}

// heldMessage is the refusal: who holds what, and how to see and break it.
func heldMessage(he *runlock.HeldError, lk *spec.Lock, file, inv, where string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "refusing to start: %s; nothing was touched\n", he)
	list := where
	unlock := list
	if lk != nil && (lk.Etcd != nil || lk.Dir != "") {
		list = shellQuote(file)
		if inv != "" {
			list += " -i " + shellQuote(inv)
		}
		unlock = "--runbook " + list
	}
	var hosts []string
	run := ""
	for _, l := range he.Locks {
		k := runlock.Clean(l.Key)
		if h, ok := strings.CutPrefix(k, "host/"); ok && !strings.HasPrefix(h, "host/") && !strings.HasPrefix(h, "name/") {
			k = h
		}
		hosts = append(hosts, shellQuote(k))
		run = runlock.Clean(l.Holder.RunID)
	}
	fmt.Fprintf(&b, "  see the locks:    runbook locks %s\n", list)
	if run != "" && strings.HasPrefix(where, "--state ") {
		fmt.Fprintf(&b, "  see that run:     runbook runs %s / runbook show %s %s\n", where, shellQuote(run), where)
	} else if run != "" {
		fmt.Fprintf(&b, "  see that run:     runbook runs / runbook show %s (on its controller)\n", shellQuote(run))
	}
	fmt.Fprintf(&b, "  if that run is dead and its lock stale: runbook unlock %s --reason '...' %s", strings.Join(hosts, " "), unlock)
	return b.String()
}

// record is what the journal keeps of the lock (run_start's data.lock).
func (l *runLock) record() *event.RunLock {
	if l == nil {
		return nil
	}
	return &event.RunLock{Store: l.store.String(), Keys: l.held.Keys()}
}

// lost is closed when the lock is lost while the run holds it; nil (never
// closed) without a lock.
func (l *runLock) lost() <-chan struct{} {
	if l == nil {
		return nil
	}
	return l.held.Lost()
}

// release gives the lock back when the run ends, however it ends.
func (l *runLock) release() {
	if l == nil {
		return
	}
	_ = l.held.Release()
	_ = l.store.Close()
}

// watchLock starts draining the run when its lock is lost: someone broke it
// (runbook unlock) or the etcd lease ended. Another run may then take the
// hosts, so no new step may start; steps in flight finish and hosts left
// mid-way roll back, as on a first Ctrl-C (exit 3).
func (a *app) watchLock(l *runLock, drain func(), done <-chan struct{}) {
	if l == nil {
		return
	}
	go func() {
		select {
		case <-done:
		case <-l.lost():
			fmt.Fprintf(a.stderr, "\nrunbook: the run lock was lost: %v. No new step starts; steps in flight finish and affected hosts roll back.\n", l.held.LostReason())
			drain()
		}
	}()
}

// LockVar is the inventory variable that sets the run lock as the runbook's
// lock: key does, and wins over it key by key: where the locks live belongs
// to the environment more than to the change.
const LockVar = "runbook_lock"

// effectiveLock is the runbook's lock: with the hosts' runbook_lock over it.
// Every host of the plan must have the same runbook_lock (a run keeps its
// locks in one store); errors point at the variable.
func effectiveLock(p *plan.Plan) (*spec.Lock, diag.Diags) {
	var ds diag.Diags
	rbLock := p.Spec.Lock
	var val any
	var from *plan.Host
	for _, h := range p.Hosts {
		v, ok := h.Vars[LockVar]
		if !ok {
			v = nil
		}
		if from == nil {
			val, from = v, h
			continue
		}
		if !reflect.DeepEqual(v, val) {
			ds.Add(lockVarPos(p, h), fmt.Sprintf("var %s of host %s differs from host %s's", LockVar, h.Name, from.Name),
				"a run keeps all its locks in one store: set "+LockVar+" once for all the hosts (group_vars/all)")
			return nil, ds
		}
	}
	if val == nil {
		return rbLock, nil
	}
	lk, lds := spec.DecodeLock(val)
	pos := lockVarPos(p, from)
	for _, d := range lds {
		ds.Add(pos, "var "+LockVar+": "+d.Summary, d.Detail)
	}
	if ds.HasErrors() || lk == nil {
		return nil, ds
	}
	out := &spec.Lock{Pos: pos, Name: lk.Name, Dir: lk.Dir, Etcd: lk.Etcd}
	if rbLock != nil {
		if out.Name == "" {
			out.Name = rbLock.Name
		}
		// The store is one setting: the inventory's, when it names one.
		if out.Etcd == nil && out.Dir == "" {
			out.Dir, out.Etcd = rbLock.Dir, rbLock.Etcd
		}
	}
	return out, ds
}

func lockVarPos(p *plan.Plan, h *plan.Host) diag.Pos {
	if h.Inventory != nil {
		if pos, ok := h.Inventory.VarPos(LockVar); ok {
			return pos
		}
	}
	if _, ok := p.ExtraVars[LockVar]; ok {
		return diag.Pos{File: "-e"}
	}
	if pos, ok := p.Spec.VarPos[LockVar]; ok {
		return pos
	}
	return diag.Pos{File: p.File}
}

// etcdUnreachable says why the members of the etcd lock store cannot be
// reached, for an error of etcd's client that only says it timed out: each
// member is dialled as the etcd checks do, which names a TLS failure.
func etcdUnreachable(lk *spec.Lock, runbookFile string) string {
	if lk == nil || lk.Etcd == nil {
		return ""
	}
	e := lk.Etcd
	cfg, err := etcdctl.Resolve(etcdctl.Settings{Endpoints: e.Endpoints, CAFile: e.CAFile, CertFile: e.CertFile, KeyFile: e.KeyFile,
		DialTimeout: e.DialTimeout}, etcdctl.Env{Dir: runbookDir(runbookFile)})
	if err != nil {
		return err.Error()
	}
	var why []string
	for _, ep := range cfg.Endpoints {
		c, err := cfg.Dial(ep)
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), cfg.DialTimeout+cfg.Timeout)
			_, err = c.Status(ctx)
			cancel()
			c.Close()
		}
		if err != nil {
			why = append(why, err.Error())
		}
	}
	return strings.Join(why, "; ")
}

func runbookDir(file string) string {
	if abs, err := filepath.Abs(file); err == nil {
		return filepath.Dir(abs)
	}
	return "."
}

// openLockStore opens the store lk names (lock.etcd), or the file store of
// the state folder. TLS files are read relative to the runbook's folder.
func openLockStore(lk *spec.Lock, runbookFile, stateDir string) (runlock.Store, error) {
	if lk != nil && lk.Dir != "" {
		return runlock.NewFileStoreAt(lk.Dir), nil
	}
	if lk == nil || lk.Etcd == nil {
		return runlock.NewFileStore(stateDir), nil
	}
	e := lk.Etcd
	cfg, err := etcdctl.Resolve(etcdctl.Settings{Endpoints: e.Endpoints, CAFile: e.CAFile, CertFile: e.CertFile, KeyFile: e.KeyFile,
		DialTimeout: e.DialTimeout}, etcdctl.Env{Dir: runbookDir(runbookFile)})
	if err != nil {
		return nil, fmt.Errorf("lock.etcd: %w", err)
	}
	return runlock.OpenEtcd(runlock.EtcdConfig{Endpoints: cfg.Endpoints, TLS: cfg.TLS, DialTimeout: cfg.DialTimeout,
		Prefix: e.Prefix, TTL: e.TTL})
}

// storeFor opens the lock store a runbook's runs use: its lock: key, with
// the inventory's runbook_lock over it when an inventory is given; the file
// store of the state folder without a runbook.
func (a *app) storeFor(file, inv, stateDir string, sf *stateFlag) (runlock.Store, error) {
	sh, err := sf.get()
	if err != nil {
		return nil, err
	}
	if file == "" && inv != "" {
		return nil, invalidf("-i needs the runbook too: runbook locks RUNBOOK -i %s", inv)
	}
	lk, p, err := a.lockFor(file, inv)
	if err != nil {
		return nil, err
	}
	if p != nil {
		sh = runState(p, sh)
	}
	if file == "" && sh != nil {
		return sh.lockStore()
	}
	s, err := openRunLockStore(lk, file, stateDir, sh)
	if err != nil {
		return nil, withCode(exitcode.Invalid, err)
	}
	return s, nil
}

// lockFor reads the lock: a runbook's runs use (nil without a runbook), and
// the plan when an inventory was given.
func (a *app) lockFor(file, inv string) (*spec.Lock, *plan.Plan, error) {
	if file == "" {
		if inv != "" {
			return nil, nil, invalidf("-i needs the runbook too: --runbook RUNBOOK -i %s", shellQuote(inv))
		}
		return nil, nil, nil
	}
	if inv != "" {
		l, p, ds := buildPlan(file, &inputFlags{inventory: inv})
		if err := a.report(ds, l.sources, "text"); err != nil || p == nil {
			if err == nil {
				err = &silentError{code: exitcode.Invalid}
			}
			return nil, nil, err
		}
		lk, _ := effectiveLock(p)
		return lk, p, nil
	}
	rb, ds := spec.Load(file, modules.Default, spec.LoadOptions{Extra: modules.Default.FactSamples()})
	if ds.HasErrors() || rb == nil {
		src := map[string][]byte{}
		if b, err := os.ReadFile(file); err == nil {
			src[file] = b
		}
		if err := a.report(ds, src, "text"); err != nil {
			return nil, nil, err
		}
		return nil, nil, &silentError{code: exitcode.Invalid}
	}
	return rb.Lock, nil, nil
}

func newLocksCmd(a *app) *cobra.Command {
	var stateDir, format, inv string
	var state stateFlag
	cmd := &cobra.Command{
		Use:   "locks [RUNBOOK [-i INVENTORY]]",
		Short: "List the run locks held now",
		Long: `List the run locks held now: each host (and named lock) with the run that
holds it, its user, controller, pid, runbook and since when.

Without RUNBOOK, the locks of the file store under --state-dir; with it, the
store its lock: key names (an etcd cluster), or with -i the one the
inventory's runbook_lock var names. Reading takes no lock.`,
		Example: "  runbook locks\n  runbook locks runbooks/upgrade-etcd.yml\n  runbook locks --format json",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format, "text", "json"); err != nil {
				return err
			}
			file := ""
			if len(args) == 1 {
				file = args[0]
			}
			store, err := a.storeFor(file, inv, stateDir, &state)
			if err != nil {
				return err
			}
			defer store.Close()
			ctx, cancel := context.WithTimeout(context.Background(), lockTimeout)
			defer cancel()
			locks, err := store.List(ctx)
			if err != nil {
				return withCode(exitcode.Stopped, err)
			}
			if format == "json" {
				if locks == nil {
					locks = []runlock.Lock{}
				}
				enc := json.NewEncoder(a.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(locks)
			}
			if len(locks) == 0 {
				fmt.Fprintf(a.stderr, "no run locks held (%s)\n", store)
				return nil
			}
			writeLocks(a.stdout, locks)
			return nil
		},
	}
	cmd.Flags().StringVar(&stateDir, "state-dir", ".runbook", "folder for journals and the file lock store")
	cmd.Flags().StringVar(&format, "format", "text", "text or json")
	cmd.Flags().StringVarP(&inv, "inventory", "i", "", "the inventory, when its runbook_lock var names the store")
	state.register(cmd.Flags())
	return cmd
}

func writeLocks(w io.Writer, locks []runlock.Lock) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LOCK\tRUN\tUSER\tCONTROLLER\tPID\tRUNBOOK\tSINCE")
	for _, l := range locks {
		h := l.Holder.Clean()
		l.Key = runlock.Clean(l.Key)
		since, pid := "-", "-"
		if !h.Since.IsZero() {
			since = h.Since.UTC().Format(time.DateTime)
		}
		if h.PID > 0 {
			pid = fmt.Sprint(h.PID)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", l.Key, dash(h.RunID), dash(h.User), dash(h.Controller), pid, dash(h.Runbook), since)
	}
	_ = tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func newUnlockCmd(a *app) *cobra.Command {
	var stateDir, reason, runID, file, inv string
	var state stateFlag
	cmd := &cobra.Command{
		Use:   "unlock [HOST...] --reason TEXT [--run RUN_ID]",
		Short: "Break a stale run lock",
		Long: `Break run locks: those of the hosts given (a host name, or a key as
'runbook locks' shows it: host/NAME, name/LOCK), or every lock of --run.

For a lock whose run is dead or hung. In the file store a run that dies
releases its locks by itself, so a held lock belongs to a process that still
runs; in the etcd store the locks of a dead controller go when their lease
runs out. A run whose lock is broken sees it within seconds and starts no new
step. --reason is required: who broke which lock of which run, when and why
goes into the store's audit log and is printed.`,
		Example: `  runbook unlock m1 m2 --reason "controller of run 20261207T1201Z-ab12cd died mid-run"
  runbook unlock --run 20261207T120102Z-ab12cd --reason "hung on a dead NFS mount"
  runbook unlock m1 --runbook runbooks/upgrade-etcd.yml --reason "..."`,
		RunE: func(cmd *cobra.Command, args []string) error {
			reason = strings.TrimSpace(reason)
			if reason == "" {
				return invalidf("unlock needs --reason TEXT: why the lock is stale; it is recorded with who broke it and when")
			}
			if len(args) == 0 && runID == "" {
				return invalidf("unlock needs the hosts (or keys, as 'runbook locks' shows them) to unlock, or --run RUN_ID")
			}
			store, err := a.storeFor(file, inv, stateDir, &state)
			if err != nil {
				return err
			}
			defer store.Close()
			ctx, cancel := context.WithTimeout(context.Background(), lockTimeout)
			defer cancel()
			var keys []string
			for _, h := range args {
				keys = append(keys, runlock.ParseKey(h))
			}
			if runID != "" {
				locks, err := store.List(ctx)
				if err != nil {
					return withCode(exitcode.Stopped, err)
				}
				for _, l := range locks {
					if l.Holder.RunID == runID {
						keys = append(keys, l.Key)
					}
				}
			}
			b := runlock.Break{Time: time.Now().UTC(), Reason: reason}
			if u, err := user.Current(); err == nil {
				b.By = u.Username
			}
			b.Controller, _ = os.Hostname()
			broken, err := store.Break(ctx, keys, b)
			for _, l := range broken {
				fmt.Fprintf(a.stdout, "unlocked %s, held by %s\n", runlock.Describe(l.Key), l.Holder)
				if alive(l.Holder, b.Controller) {
					fmt.Fprintf(a.stderr, "runbook: warning: process %d of run %s still runs on this machine; it starts no new step once it sees its lock broken\n", l.Holder.PID, l.Holder.RunID)
				}
			}
			if err != nil {
				return withCode(exitcode.Stopped, err)
			}
			if len(broken) == 0 {
				fmt.Fprintf(a.stdout, "nothing to unlock: no lock held on %s (%s)\n", describeKeys(keys, runID), store)
			}
			fmt.Fprintf(a.stdout, "recorded: by %s on %s at %s, reason %q (%s)\n", dash(b.By), dash(b.Controller), b.Time.Format(time.DateTime), reason, auditWhere(store))
			return nil
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why the lock is stale (required; recorded in the audit log)")
	cmd.Flags().StringVar(&runID, "run", "", "break every lock of this run")
	cmd.Flags().StringVar(&file, "runbook", "", "the runbook whose lock: key names the store (an etcd cluster); default: the file store under --state-dir")
	cmd.Flags().StringVarP(&inv, "inventory", "i", "", "with --runbook: the inventory, when its runbook_lock var names the store")
	cmd.Flags().StringVar(&stateDir, "state-dir", ".runbook", "folder for journals and the file lock store")
	state.register(cmd.Flags())
	return cmd
}

func describeKeys(keys []string, runID string) string {
	var ds []string
	for _, k := range keys {
		ds = append(ds, runlock.Describe(k))
	}
	if len(ds) == 0 {
		return "run " + runID
	}
	return strings.Join(ds, ", ")
}

func auditWhere(s runlock.Store) string {
	if fs, ok := s.(*runlock.FileStore); ok {
		return "audit log " + fs.AuditPath()
	}
	return "audit log of the " + s.String()
}

// alive reports whether the holder is a process on this machine that still runs.
func alive(h runlock.Holder, controller string) bool {
	if h.PID <= 0 || h.Controller == "" || h.Controller != controller {
		return false
	}
	p, err := os.FindProcess(h.PID)
	if err != nil {
		return false
	}
	return p.Signal(sigZero) == nil
}

// sigZero asks whether a process exists without signalling it.
var sigZero = syscall.Signal(0)

// shellQuote quotes s for a command line when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:@%+,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
