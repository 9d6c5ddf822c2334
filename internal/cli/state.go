package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/runbookhq/runbook/internal/diag"
	"github.com/runbookhq/runbook/internal/etcdctl"
	"github.com/runbookhq/runbook/internal/exitcode"
	"github.com/runbookhq/runbook/internal/journal"
	"github.com/runbookhq/runbook/internal/journal/etcdjournal"
	"github.com/runbookhq/runbook/internal/plan"
	"github.com/runbookhq/runbook/internal/runlock"
	"github.com/runbookhq/runbook/internal/spec"
)

// StateVar is the inventory variable that names the shared journal as
// --state does; --state wins over it.
const StateVar = "runbook_state"

// StateEnv is --state's default: a team sets it once for every command.
const StateEnv = "RUNBOOK_STATE"

// StatePasswordEnv holds the password of the user a --state URL names: a
// password on the command line would be seen by every user of the machine
// and recorded in the journal's command line.
const StatePasswordEnv = "RUNBOOK_STATE_PASSWORD"

// stateTimeout bounds reading runs from the shared store for runs, show and
// resume (each request is bounded on its own too).
const stateTimeout = 60 * time.Second

// sharedState is a parsed --state etcd://ENDPOINTS/PREFIX: where the journals
// (and the run locks, when the runbook names no lock store) are shared.
type sharedState struct {
	raw                       string // as given, for messages: it holds no secret
	endpoints                 []string
	prefix                    string // starts and ends with "/"
	caFile, certFile, keyFile string
	dialTimeout               time.Duration
	wait                      time.Duration // how long an event waits for the cluster
	user                      string
	dir                       string // relative TLS files are read from here
}

// parseState reads a --state value:
//
//	etcd://HOST:PORT[,HOST:PORT...]/PREFIX[?ca_file=F&cert_file=F&key_file=F&dial_timeout=D&wait=D]
//
// etcd+https:// for members that serve TLS; USER@ before the hosts logs in
// with the password in $RUNBOOK_STATE_PASSWORD. An empty value is no shared
// store.
func parseState(raw, dir string) (*sharedState, error) {
	if raw == "" {
		return nil, nil
	}
	const want = "want etcd://HOST:PORT[,HOST:PORT...]/PREFIX, like etcd://10.0.0.1:2379,10.0.0.2:2379/runbook/prod (etcd+https:// for TLS)"
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return nil, fmt.Errorf("%q is not a state store URL; %s", raw, want)
	}
	var http string
	switch scheme {
	case "etcd":
		http = "http://"
	case "etcd+https":
		http = "https://"
	default:
		return nil, fmt.Errorf("%q: unknown state store %q; %s", raw, scheme, want)
	}
	s := &sharedState{raw: raw, dir: dir, prefix: "/runbook/"}
	rest, query, _ := strings.Cut(rest, "?")
	hosts, path, _ := strings.Cut(rest, "/")
	if u, h, ok := strings.Cut(hosts, "@"); ok {
		if strings.Contains(u, ":") {
			return nil, fmt.Errorf("%q has a password; give the user alone (USER@HOST) and the password in $%s", redactURL(raw), StatePasswordEnv)
		}
		s.user, hosts = u, h
		if s.user == "" {
			return nil, fmt.Errorf("%q: empty user before @", raw)
		}
		if os.Getenv(StatePasswordEnv) == "" {
			return nil, fmt.Errorf("%q names user %s: set its password in $%s", raw, s.user, StatePasswordEnv)
		}
	}
	if hosts == "" {
		return nil, fmt.Errorf("%q names no member; %s", raw, want)
	}
	for _, h := range strings.Split(hosts, ",") {
		ep := http + h
		if err := etcdctl.CheckEndpoint(ep); err != nil {
			return nil, fmt.Errorf("%q: member %q: %w", raw, h, err)
		}
		s.endpoints = append(s.endpoints, ep)
	}
	if path = strings.Trim(path, "/"); path != "" {
		if strings.ContainsAny(path, " \t\n") || strings.Contains(path, "{{") || strings.Contains(path, "//") {
			return nil, fmt.Errorf("%q: prefix %q must be a key path like runbook/prod", raw, path)
		}
		s.prefix = "/" + path + "/"
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", raw, err)
	}
	for k, vs := range q {
		v := vs[len(vs)-1]
		switch k {
		case "ca_file":
			s.caFile = v
		case "cert_file":
			s.certFile = v
		case "key_file":
			s.keyFile = v
		case "dial_timeout", "wait":
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return nil, fmt.Errorf("%q: %s=%q is not a duration like 30s", raw, k, v)
			}
			if k == "wait" {
				s.wait = d
			} else {
				s.dialTimeout = d
			}
		default:
			return nil, fmt.Errorf("%q: unknown setting %q; it takes ca_file, cert_file, key_file, dial_timeout and wait", raw, k)
		}
	}
	if (s.caFile != "" || s.certFile != "" || s.keyFile != "") && http == "http://" {
		return nil, fmt.Errorf("%q: TLS files are for etcd+https:// members", raw)
	}
	return s, nil
}

// redactURL drops the password from a URL for a message.
func redactURL(raw string) string {
	scheme, rest, _ := strings.Cut(raw, "://")
	if u, h, ok := strings.Cut(rest, "@"); ok {
		name, _, _ := strings.Cut(u, ":")
		return scheme + "://" + name + ":<hidden>@" + h
	}
	return raw
}

func (s *sharedState) String() string { return s.raw }

// config resolves the connection as the etcd modules and the lock store do:
// TLS files read and checked, the login.
func (s *sharedState) config() (runlock.EtcdConfig, error) {
	vars := map[string]any{}
	if s.user != "" {
		vars[etcdctl.VarUser] = s.user
		vars[etcdctl.VarPassword] = os.Getenv(StatePasswordEnv)
	}
	c, err := etcdctl.Resolve(etcdctl.Settings{Endpoints: s.endpoints, CAFile: s.caFile, CertFile: s.certFile, KeyFile: s.keyFile,
		DialTimeout: s.dialTimeout}, etcdctl.Env{Dir: s.dir, Vars: vars})
	if err != nil {
		return runlock.EtcdConfig{}, fmt.Errorf("state store %s: %w", s, err)
	}
	return runlock.EtcdConfig{Endpoints: c.Endpoints, TLS: c.TLS, DialTimeout: c.DialTimeout, Prefix: s.prefix,
		Username: c.Username, Password: string(c.Password)}, nil
}

// open connects to the shared journal. Waits for an unreachable cluster are
// told on w; run says whether a run waits (no step starts meanwhile) or
// only a command that reads.
func (s *sharedState) open(w io.Writer, run bool) (*etcdjournal.Store, error) {
	cfg, err := s.config()
	if err != nil {
		return nil, withCode(exitcode.Invalid, err)
	}
	cli, err := runlock.Dial(cfg)
	if err != nil {
		return nil, withCode(exitcode.Stopped, fmt.Errorf("state store %s: %w", s, err))
	}
	st, err := etcdjournal.New(etcdjournal.Config{Client: cli, Prefix: s.prefix, Name: s.raw, Wait: s.wait,
		OnWait: func(err error, wait time.Duration) {
			if run {
				fmt.Fprintf(w, "runbook: the shared journal %s does not answer (%v): no new step starts; waiting up to %s for it, then the run stops\n", s, err, wait)
			} else {
				fmt.Fprintf(w, "runbook: the shared journal %s does not answer (%v); trying for up to %s\n", s, err, wait)
			}
		}})
	if err != nil {
		cli.Close()
		return nil, err
	}
	return st, nil
}

// openRunLockStore is the store of a run's locks: the one the runbook (or
// the inventory's runbook_lock) names, else the shared store's cluster when
// the journal is shared, else the state folder's files.
func openRunLockStore(lk *spec.Lock, file, stateDir string, sh *sharedState) (runlock.Store, error) {
	if sh != nil && (lk == nil || lk.Etcd == nil && lk.Dir == "") {
		return sh.lockStore()
	}
	return openLockStore(lk, file, stateDir)
}

// lockStore is the run lock store in the same cluster, under the same prefix.
func (s *sharedState) lockStore() (runlock.Store, error) {
	cfg, err := s.config()
	if err != nil {
		return nil, err
	}
	return runlock.OpenEtcd(cfg)
}

// stateFlag is --state, on the commands that read or write journals.
type stateFlag struct{ raw string }

func (f *stateFlag) register(fs interface {
	StringVar(*string, string, string, string)
}) {
	fs.StringVar(&f.raw, "state", os.Getenv(StateEnv), "also keep journals, the run index and locks in a shared store: etcd://HOST:PORT[,...]/PREFIX (default $"+StateEnv+")")
}

// get parses the flag; a bad value is bad input (exit 2).
func (f *stateFlag) get() (*sharedState, error) {
	s, err := parseState(f.raw, "")
	if err != nil {
		return nil, invalidf("--state: %v", err)
	}
	return s, nil
}

// effectiveState reads the hosts' runbook_state: every host of the plan must
// have the same (a run's journal is in one place); errors point at the
// variable. TLS files are read relative to the runbook's folder, as the lock
// store's.
func effectiveState(p *plan.Plan) (*sharedState, diag.Diags) {
	var ds diag.Diags
	var val any
	var from *plan.Host
	for _, h := range p.Hosts {
		v := h.Vars[StateVar]
		if from == nil {
			val, from = v, h
			continue
		}
		if !reflect.DeepEqual(v, val) {
			ds.Add(stateVarPos(p, h), fmt.Sprintf("var %s of host %s differs from host %s's", StateVar, h.Name, from.Name),
				"a run keeps its journal in one store: set "+StateVar+" once for all the hosts (group_vars/all)")
			return nil, ds
		}
	}
	if val == nil {
		return nil, nil
	}
	raw, ok := val.(string)
	if !ok {
		ds.Add(stateVarPos(p, from), fmt.Sprintf("var %s must be a URL string, got %T", StateVar, val),
			"like runbook_state: etcd://10.0.0.1:2379,10.0.0.2:2379/runbook/prod")
		return nil, ds
	}
	s, err := parseState(raw, runbookDir(p.File))
	if err != nil {
		ds.Add(stateVarPos(p, from), "var "+StateVar+": "+err.Error(), "")
		return nil, ds
	}
	return s, nil
}

func stateVarPos(p *plan.Plan, h *plan.Host) diag.Pos {
	if h.Inventory != nil {
		if pos, ok := h.Inventory.VarPos(StateVar); ok {
			return pos
		}
	}
	if _, ok := p.ExtraVars[StateVar]; ok {
		return diag.Pos{File: "-e"}
	}
	return diag.Pos{File: p.File}
}

// runState is the shared store of a run: --state, else the inventory's.
func runState(p *plan.Plan, flag *sharedState) *sharedState {
	if flag != nil {
		return flag
	}
	s, _ := effectiveState(p) // its errors were reported with the plan's
	return s
}

// shareNew records a new run in the shared store, when there is one, before
// anything is touched: its journal copies every event there from run_start
// on.
func (a *app) shareNew(j *journal.Journal, stateDir string, key []byte, sh *sharedState) error {
	if sh == nil {
		return nil
	}
	st, err := sh.open(a.stderr, true)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), stateTimeout)
	defer cancel()
	l, err := st.Create(ctx, j.RunID(), key)
	if err != nil {
		st.Close()
		// The run never started: leave no empty journal for runs to list
		// as damaged.
		_ = j.Close()
		_ = os.Remove(j.Path())
		_ = os.Remove(journal.KeyPath(stateDir, j.RunID()))
		return withCode(exitcode.Stopped, fmt.Errorf("%w; nothing was touched", err))
	}
	j.Share(&closingLog{Log: l, close: st.Close})
	return nil
}

// fetchShared makes the shared store's journal of run runID the local copy,
// so that a controller that never saw the run (an empty state folder)
// resumes it as its own.
func (a *app) fetchShared(stateDir, runID string, sh *sharedState) error {
	st, err := sh.open(a.stderr, false)
	if err != nil {
		return err
	}
	defer st.Close()
	ctx, cancel := context.WithTimeout(context.Background(), stateTimeout)
	defer cancel()
	data, key, err := st.Read(ctx, runID)
	if errors.Is(err, fs.ErrNotExist) {
		if _, lerr := os.Stat(journal.Path(stateDir, runID)); lerr != nil {
			return withCode(exitcode.Stopped, fmt.Errorf("run %s is not in the shared journal %s, nor under %s", runID, sh, stateDir))
		}
		// Started here without the store: it is shared from now on.
		if err := journal.Export(ctx, stateDir, runID, st); err != nil {
			return withCode(exitcode.Stopped, fmt.Errorf("share run %s in %s: %w; nothing was touched", runID, sh, err))
		}
		fmt.Fprintf(a.stderr, "runbook: run %s is now shared in %s\n", runID, sh)
		return nil
	}
	if err != nil {
		return withCode(exitcode.Stopped, fmt.Errorf("%w; nothing was touched", err))
	}
	if err := journal.Import(stateDir, runID, data, key); err != nil {
		return withCode(exitcode.Stopped, fmt.Errorf("%w; nothing was touched", err))
	}
	return nil
}

// shareResumed makes a resumed run's journal go on in the shared store after
// its last event, which must be the one the local copy ends with.
func (a *app) shareResumed(j *journal.Journal, st *journal.State, sh *sharedState) error {
	if sh == nil {
		return nil
	}
	store, err := sh.open(a.stderr, true)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), stateTimeout)
	defer cancel()
	l, err := store.Continue(ctx, st.RunID, st.LastSeq)
	if err != nil {
		store.Close()
		return withCode(exitcode.Stopped, fmt.Errorf("%w (resume with --state %s to read it first); nothing was touched", err, sh))
	}
	j.Share(&closingLog{Log: l, close: store.Close})
	return nil
}

// closingLog closes the store's client with the run's log.
type closingLog struct {
	journal.Log
	close func() error
}

func (l *closingLog) Close() error {
	err := l.Log.Close()
	if cerr := l.close(); err == nil {
		err = cerr
	}
	return err
}

// listRuns is `runbook runs` with a shared store: its runs, and those only
// the state folder has. A run is running when a process holds it: the state
// folder's lock on this controller, or the run lock in the cluster.
func (a *app) listRuns(stateDir string, sh *sharedState) ([]journal.Summary, error) {
	local, lerr := journal.List(stateDir)
	if sh == nil {
		return local, lerr
	}
	st, err := sh.open(a.stderr, false)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	ctx, cancel := context.WithTimeout(context.Background(), stateTimeout)
	defer cancel()
	shared, err := st.List(ctx)
	if err != nil {
		return nil, withCode(exitcode.Stopped, err)
	}
	holders := sh.holders(ctx)
	byID := map[string]journal.Summary{}
	for _, s := range local {
		byID[s.ID] = s
	}
	out := make([]journal.Summary, 0, len(shared)+len(local))
	seen := map[string]bool{}
	for _, s := range shared {
		seen[s.ID] = true
		if l, ok := byID[s.ID]; ok && l.Status == journal.RunRunning {
			s.Status, s.PID = journal.RunRunning, l.PID
		} else if h, ok := holders[s.ID]; ok && s.Status != journal.RunEnded && !deadHere(h) {
			s.Status, s.PID = journal.RunRunning, h.PID
		}
		out = append(out, s)
	}
	for _, s := range local {
		if !seen[s.ID] {
			out = append(out, s)
		}
	}
	sortSummaries(out)
	return out, nil
}

// sortSummaries sorts runs newest first, as journal.List does.
func sortSummaries(out []journal.Summary) {
	slices.SortStableFunc(out, func(a, b journal.Summary) int {
		if c := b.Started.Compare(a.Started); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
}

// loadRun is `runbook show`'s read: the shared store's copy when it has the
// run, else the state folder's.
func (a *app) loadRun(stateDir, runID string, sh *sharedState) (*journal.State, error) {
	if sh != nil {
		st, err := sh.open(a.stderr, false)
		if err != nil {
			return nil, err
		}
		defer st.Close()
		ctx, cancel := context.WithTimeout(context.Background(), stateTimeout)
		defer cancel()
		s, err := st.Load(ctx, runID)
		if err == nil {
			if h, ok := sh.holders(ctx)[runID]; ok && !s.Finished && !deadHere(h) {
				s.Live, s.PID = true, h.PID
			}
			return s, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, withCode(exitcode.Stopped, err)
		}
	}
	return journal.Load(stateDir, runID)
}

// holders are the runs that hold run locks in the cluster, by run id: a
// run's journal cannot say whether its process lives, its lease can. A
// failure to read them leaves every run as its journal says.
func (s *sharedState) holders(ctx context.Context) map[string]runlock.Holder {
	out := map[string]runlock.Holder{}
	ls, err := s.lockStore()
	if err != nil {
		return out
	}
	defer ls.Close()
	if locks, err := ls.List(ctx); err == nil {
		for _, l := range locks {
			out[l.Holder.RunID] = l.Holder
		}
	}
	return out
}

// deadHere reports whether the holder of a lock is a process of this
// machine that is gone: its lease has not run out yet, but it is no more.
func deadHere(h runlock.Holder) bool {
	host, _ := os.Hostname()
	return h.Controller != "" && h.Controller == host && h.PID > 0 && !alive(h, host)
}
