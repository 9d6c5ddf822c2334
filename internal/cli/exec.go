package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/runbookhq/runbook/internal/diag"
	"github.com/runbookhq/runbook/internal/eval"
	"github.com/runbookhq/runbook/internal/event"
	"github.com/runbookhq/runbook/internal/exitcode"
	"github.com/runbookhq/runbook/internal/journal"
	"github.com/runbookhq/runbook/internal/plan"
	"github.com/runbookhq/runbook/modules"
	"github.com/runbookhq/runbook/runner"
)

func init() { commands = append(commands, newExecCmd) }

// runFlags are the flags of exec (and, for the ones that do not shape the plan, resume).
type runFlags struct {
	inputFlags
	sshFlags
	tags, skipTags []string
	forks          int
	check, yes     bool
	diff           bool // --diff: file modules show what they change
	output         string
	stateDir       string
	logLevel       string
	lock           *runLock // the run lock exec or resume took; execute drains the run if it is lost
	state          stateFlag
	shared         *sharedState // where the journal is shared: --state, else the inventory's runbook_state
}

func (f *runFlags) registerRun(cmd *cobra.Command) {
	cmd.Flags().IntVarP(&f.forks, "forks", "f", runner.DefaultForks, "hosts of a batch run at once")
	cmd.Flags().BoolVarP(&f.yes, "yes", "y", false, "run without asking, and pass pause gates")
	cmd.Flags().StringVarP(&f.output, "output", "o", "text", "text (live view on a terminal, plain lines otherwise) or json (the journal events)")
	cmd.Flags().StringVar(&f.stateDir, "state-dir", ".runbook", "folder for journals")
	f.state.register(cmd.Flags())
	cmd.Flags().StringVar(&f.logLevel, "log-level", "", "engine logs: debug, info, warn (off by default)")
	f.sshFlags.registerSSH(cmd)
}

func newExecCmd(a *app) *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "exec FILE -i INVENTORY",
		Short: "Run a runbook",
		Long: `Run a runbook: preflight once, then batch after batch, each host's steps in
order with their guards, gates between batches, and rollback on failure.

Before touching anything, exec prints the plan and asks for confirmation on a
terminal; --yes skips the question, and without a terminal exec refuses unless
--yes is given. Then it takes the run lock of every host of the plan (see
'runbook locks'): a host another run holds refuses with exit 3, nothing
touched. Every event is written to a journal under --state-dir before
the next action, so that 'runbook resume RUN_ID' can continue a run that was
killed. Ctrl-C once (or a hangup: the terminal or SSH session closed): no new
step starts, steps in flight finish, affected hosts roll back (exit 3). Twice:
stop now. Output that goes away (| head) does not stop the run.`,
		Example: `  runbook exec runbooks/rolling-restart.yml -i local
  runbook exec runbooks/upgrade-etcd.yml -i prod --limit etcd-1 --yes
  runbook exec runbooks/upgrade-etcd.yml -i prod --check
  runbook exec runbooks/upgrade-etcd.yml -i prod --output json | jq .kind`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			ignoreSIGPIPE()
			if err := checkFormat(f.output, "text", "json"); err != nil {
				return withCode(exitcode.Invalid, fmt.Errorf("--output: %w", errors.Unwrap(err)))
			}
			if f.inventory == "" {
				return invalidf("exec needs an inventory: -i PATH or -i NAME (inventory/NAME.yml next to the runbook)")
			}
			if f.forks < 1 {
				return invalidf("--forks must be at least 1, got %d", f.forks)
			}
			if err := f.sshFlags.check(cmd); err != nil {
				return err
			}
			stateArg, err := f.state.get()
			if err != nil {
				return err
			}
			runID := journal.NewRunID()
			started := time.Now().UTC()
			l, p, ds := buildPlanRun(args[0], &f.inputFlags, 0, eval.Run{ID: runID, Started: started}, f.tags, f.skipTags)
			// From here on nothing the command prints may show a secret.
			a, flush := a.redacting(l.secrets)
			defer func() { err = a.secrets.Error(err); flush() }()
			if err := a.report(ds, l.sources, "text"); err != nil || p == nil {
				if err == nil {
					err = &silentError{code: exitcode.Invalid}
				}
				return err
			}
			f.shared = runState(p, stateArg)
			if err := orderAtStart(context.Background(), p, f.stateDir); err != nil {
				return withCode(exitcode.Stopped, fmt.Errorf("ordering the hosts: %w; nothing was touched", err))
			}
			summary := a.stdout
			if f.output == "json" {
				summary = a.stderr
			}
			// A reader that went away (| head) does not stop the run: the plan
			// is only shown, and the journal records it.
			if err := p.WriteText(summary); err != nil && !errors.Is(err, syscall.EPIPE) {
				return err
			}
			if f.check {
				fmt.Fprintln(summary, "\n--check: modules report what they would change; nothing is changed.")
			}
			if !f.yes {
				ok, err := a.confirm(fmt.Sprintf("\nRun %s on %d hosts in %d batches? [y/N] ", p.Runbook, len(p.Hosts), len(p.Batches)))
				if err != nil {
					return err
				}
				if !ok {
					fmt.Fprintln(a.stderr, "runbook: not confirmed; nothing was touched")
					return &silentError{code: exitcode.Stopped}
				}
			}
			lk, err := a.lockRun(p, args[0], f.inventory, runID, &f)
			if err != nil {
				return err
			}
			defer lk.release()
			j, err := journal.Open(f.stateDir, runID)
			if err != nil {
				return withCode(exitcode.Stopped, err)
			}
			defer j.Close()
			key, err := journal.CreateKey(f.stateDir, runID)
			if err != nil {
				return withCode(exitcode.Stopped, fmt.Errorf("%w; nothing was touched", err))
			}
			if err := a.shareNew(j, f.stateDir, key, f.shared); err != nil {
				return err
			}
			info := runInfo(cmd, args[0], &f, p, key)
			info.Lock, f.lock = lk.record(), lk
			return a.execute(cmd, p, j, nil, info, &f)
		},
	}
	f.register(cmd, true)
	f.registerRun(cmd)
	cmd.Flags().StringSliceVarP(&f.tags, "tags", "t", nil, "run only steps with these tags")
	cmd.Flags().StringSliceVar(&f.skipTags, "skip-tags", nil, "skip steps with these tags")
	cmd.Flags().BoolVarP(&f.check, "check", "C", false, "show what would change without changing anything")
	cmd.Flags().BoolVarP(&f.diff, "diff", "D", false, "show the unified diff of each file a step changes (always shown with --check)")
	return cmd
}

// buildPlanRun is buildPlan with the run's identity, so that variables like
// 'backups/{{ run.id }}.db' render, and the steps its tags select, which are
// the ones checked before it starts.
func buildPlanRun(file string, f *inputFlags, seed int64, run eval.Run, tags, skipTags []string) (*loaded, *plan.Plan, diag.Diags) {
	return buildPlanOpts(file, f, plan.Options{Seed: seed, Run: run}, plan.CheckOptions{Tags: tags, SkipTags: skipTags})
}

// confirm asks on the terminal; without one it refuses (exit 3).
func (a *app) confirm(prompt string) (bool, error) {
	if !isTerminal(a.stdin) {
		return false, withCode(exitcode.Stopped, errors.New("refusing to run without confirmation: standard input is not a terminal; pass --yes to run anyway"))
	}
	fmt.Fprint(a.stderr, prompt)
	line, err := bufio.NewReader(a.stdin).ReadString('\n')
	if err != nil && err != io.EOF {
		return false, err
	}
	ans := strings.ToLower(strings.TrimSpace(line))
	return ans == "y" || ans == "yes", nil
}

// runInfo is what run_start records: enough to rebuild the same plan on resume,
// and nothing secret: the -e values are kept out, only their digest keyed with
// the run's key goes in, and the command line has the values of secret flags
// hidden.
func runInfo(cmd *cobra.Command, file string, f *runFlags, p *plan.Plan, key []byte) event.RunInfo {
	info := event.RunInfo{
		Runbook:    file,
		Inventory:  f.inventory,
		Limit:      f.limit,
		ImportPath: f.importPath,
		Tags:       f.tags,
		SkipTags:   f.skipTags,
		Seed:       p.Seed,
		Forks:      f.forks,
		Check:      f.check,
		VarsDigest: plan.VarsDigest(key, p.ExtraVars),
		VarNames:   slices.Sorted(maps.Keys(p.ExtraVars)),
		PID:        os.Getpid(),
		Version:    version(),
		Args:       redactArgs(cmd.Flags(), os.Args),
	}
	if u, err := user.Current(); err == nil {
		info.User = u.Username
	}
	return info
}

// execute runs (or resumes) a plan with signals, the journal, the UI and the recap.
func (a *app) execute(cmd *cobra.Command, p *plan.Plan, j *journal.Journal, resume *journal.State, info event.RunInfo, f *runFlags) error {
	parent := cmd.Context()
	if parent == nil {
		parent = context.Background()
	}
	ctx, cancel := context.WithCancel(parent)
	defer cancel()

	drain := make(chan struct{})
	startDrain := sync.OnceFunc(func() { close(drain) })
	a.watchLock(f.lock, startDrain, ctx.Done())
	sigs := make(chan os.Signal, 3)
	// SIGHUP is a closed terminal or a lost session to a bastion: the
	// operator is gone, not asking to stop now, so it drains as Ctrl-C does.
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	ignoreSIGPIPE()
	go func() {
		n := 0
		for sig := range sigs {
			n++
			if n == 1 {
				fmt.Fprintf(a.stderr, "\nrunbook: %s: no new step starts; steps in flight finish and affected hosts roll back. Interrupt again to stop now.\n", signalName(sig))
				startDrain()
				continue
			}
			if sig == syscall.SIGHUP {
				// One hangup often comes twice (the kernel to the foreground
				// group, the shell to its jobs): it is not an operator asking
				// to stop now.
				continue
			}
			fmt.Fprintf(a.stderr, "\nrunbook: second interrupt (%v): stopping now\n", sig)
			cancel()
			return
		}
	}()

	var seq int64
	if resume != nil {
		seq = resume.LastSeq
	}
	bus := event.NewBus(j.RunID(), event.Options{Seq: seq, Secrets: a.secrets, Log: a.logger(f.logLevel, nil)})
	bus.Require(j)
	view := a.attachView(bus, f.output, resume)

	// SSH's own warnings (a host key recorded by --accept-new-host-keys) and
	// the progress of large transfers (its only info lines, one per tenth of a
	// file of 16 MiB or more) are shown even when the engine's logs are off.
	sshLevel := f.logLevel
	if sshLevel == "" {
		sshLevel = "info"
	}
	dialer, err := a.dialer(cmd, &f.sshFlags, a.logger(sshLevel, view))
	if err != nil {
		view.close()
		return withCode(exitcode.Invalid, err)
	}

	var confirm func(context.Context, string) (bool, error)
	if isTerminal(a.stdin) {
		confirm = func(_ context.Context, prompt string) (bool, error) {
			// A gate's prompt may be rendered from variables.
			return a.confirm(a.secrets.Redact(prompt) + " [y/N] ")
		}
	}
	out, err := runner.Run(ctx, p, modules.Default, runner.Options{
		Forks:    f.forks,
		Check:    f.check,
		Diff:     f.diff,
		Yes:      f.yes,
		Tags:     f.tags,
		SkipTags: f.skipTags,
		Dialer:   dialer,
		Events:   bus,
		RunID:    j.RunID(),
		Info:     info,
		Resume:   resume,
		Drain:    drain,
		Confirm:  confirm,
		StateDir: filepath.Join(f.stateDir, "runs", j.RunID()+".d"),
		Log:      a.logger(f.logLevel, view),
	})
	view.close()
	if out == nil {
		if err == nil {
			err = errors.New("the run did not start")
		}
		return withCode(exitcode.Stopped, err)
	}
	if err != nil {
		// The only error of a run that started is its journal's.
		fmt.Fprintf(a.stderr, "runbook: %v\nrunbook: the journal %s is incomplete: what happened from that event on is not in it (no step ran whose start it could not record); check the hosts before resuming\n", err, j.Path())
	}
	if out.PreflightFailed && resume == nil {
		w := a.stdout
		if f.output == "json" {
			w = a.stderr
		}
		nameUnfinished(w, f.stateDir, j.RunID(), p.Runbook)
	}
	return &silentError{code: out.ExitCode()}
}

// signalName is how the drain message names what started it.
func signalName(sig os.Signal) string {
	switch sig {
	case syscall.SIGHUP:
		return "hangup (SIGHUP: the terminal or session closed)"
	case syscall.SIGTERM:
		return "terminate (SIGTERM)"
	}
	return "interrupt"
}

// ignoreSIGPIPE keeps a closed stdout or stderr (`runbook exec ... | head`)
// from killing a run mid-step: Go dies of SIGPIPE on a write to fd 1 or 2
// unless the signal is notified. Writes then fail with EPIPE, which the views
// report once and the run goes on; the journal has every event. Notify rather
// than Ignore, because an ignored signal stays ignored in the commands the
// run starts, while a handled one is reset to its default for them. It stays
// on until the process exits: the recap and the exit code come after the run.
func ignoreSIGPIPE() {
	pipeOnce.Do(func() {
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGPIPE)
		go func() {
			for range c {
			}
		}()
	})
}

var pipeOnce sync.Once
