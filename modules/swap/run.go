package swap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/runbookhq/runbook/modules"
	"github.com/runbookhq/runbook/modules/internal/hostfile"
)

// Run replaces dest with src, with prepare stages src and keeps dest without
// replacing it, or with restore puts the backup back.
func (m *Module) Run(ctx context.Context, h *modules.Host) (modules.Result, error) {
	return m.Defaults().do(ctx, h, false)
}

// Check reports whether Run would change dest, reading only: src's digest on
// the controller, dest's on the host (and with prepare, what is staged and
// kept already).
func (m *Module) Check(ctx context.Context, h *modules.Host) (modules.Result, error) {
	return m.Defaults().do(ctx, h, true)
}

func (m *Module) do(ctx context.Context, h *modules.Host, dry bool) (modules.Result, error) {
	ctx = hostfile.TrustIdentity(ctx)
	switch {
	case m.Restore != "":
		return m.restore(ctx, h, dry)
	case m.Prepare:
		return m.prepare(ctx, h, dry)
	}
	return m.swap(ctx, h, dry)
}

// What the result's staged and backup_kept say was done.
const (
	uploaded = "uploaded" // staged: src was copied to the host
	reused   = "reused"   // staged or backup_kept: what a prepare left was right
	copied   = "copied"   // backup_kept: dest was copied to backup
	linked   = "linked"   // backup_kept: backup was made a second link to dest's file
)

// keep keeps dest at backup, as a link to dest's file where the host can
// make one (see hostfile.KeepLink), otherwise as a copy, and says which.
func keep(ctx context.Context, h *modules.Host, dest, backup string) (string, error) {
	ok, err := hostfile.KeepLink(ctx, h, dest, backup)
	switch {
	case err != nil:
		return "", err
	case ok:
		return linked, nil
	}
	if err := hostfile.Keep(ctx, h, dest, backup); err != nil {
		return "", err
	}
	return copied, nil
}

// plan is what the swap of one file will do, known before anything is written.
type plan struct {
	src string // on the controller
	sum string // src's sha256
	hostfile.Plan
}

func (m *Module) swap(ctx context.Context, h *modules.Host, dry bool) (modules.Result, error) {
	ctx = hostfile.ReadAhead(ctx, h, m.Dest, m.Backup)
	p, err := m.plan(ctx, h, false)
	if err != nil {
		return modules.Result{}, err
	}
	data := hostfile.Result(m.want(p.sum), p.Plan)
	data["src"], data["staged"], data["backup_kept"] = m.Src, "", ""
	if !p.Changed || dry {
		return modules.Result{Changed: p.Changed, Data: data}, nil
	}

	stage, staged, kept, err := m.ready(ctx, h, &p, false)
	if err != nil {
		return modules.Result{}, err
	}
	data["staged"], data["backup_kept"] = staged, kept
	if staged == reused {
		data["msg"] = p.Why + "; the file staged at " + stage + " by a prepare is used"
	}
	rename := hostfile.Rename
	if staged == reused {
		// After a prepare the swap runs inside the service's outage: the
		// check, the rename and the sync go in one command.
		rename = hostfile.RenameAtOnce
	}
	if err := rename(ctx, h, stage, m.Dest); err != nil {
		return modules.Result{}, err
	}
	// The staged file is dest now: a later swap of dest (a rollback's) has
	// nothing staged to read ahead.
	hostfile.RememberStage(h, m.Dest, "")
	return modules.Result{Changed: true, Data: data}, nil
}

// ready stages src beside dest and, when dest exists, makes backup hold
// dest: all of a swap but the rename. What a prepare step did already is
// checked and kept, and the rest done; it says which for each (staged:
// uploaded or reused; backup_kept: linked, copied, reused, or "" when dest
// does not exist), and returns the staged file. On an error, a file it
// staged is removed again. With prepare, a backup it keeps is checked (and
// its digest so remembered) while the service still runs, rather than by
// the swap inside its outage. A plan whose dest was not hashed (see
// plan) gets its digest here.
//
// With prepare, the upload and the backup go on at once: neither reads
// what the other writes (the staged file has a name of its own, and the
// backup is dest's), each is mostly the host reading or hashing a large
// file, and the first member's prepare is on the upgrade's critical path.
// The swap without prepare, inside the outage or not, does one after the
// other, as it always did: the backup is touched only once src is staged.
func (m *Module) ready(ctx context.Context, h *modules.Host, p *plan, prepare bool) (stage, staged, kept string, err error) {
	stage, stale, err := findStaged(ctx, h, *p, m.Dest)
	if err != nil {
		return "", "", "", err
	}
	var keepErr error
	backUp := func() {
		if p.Cur.Exists {
			kept, keepErr = m.keepBackup(ctx, h, p, prepare)
		}
	}
	staged = reused
	if stage == "" {
		staged = uploaded
		at := *p // what stage reads, before keepBackup fills in dest's digest
		var wg sync.WaitGroup
		if prepare {
			wg.Go(backUp)
		}
		stage, err = m.stage(ctx, h, at)
		wg.Wait()
		if err != nil {
			// The backup, if kept meanwhile, holds dest, which is as it
			// was: it is left, as a prepare's undo leaves it.
			return "", "", "", err
		}
		if !prepare {
			backUp()
		}
	} else {
		backUp()
	}
	if keepErr != nil {
		hostfile.RemoveTemp(h, stage, true)
		return "", "", "", keepErr
	}
	// Files an earlier prepare of another src left: the one staged now
	// replaces them, as a rename over the one staging name once did.
	for _, f := range stale {
		hostfile.RemoveTemp(h, f, true)
	}
	return stage, staged, kept, nil
}

// keepBackup makes backup hold dest, the file p.Cur, and says how:
// reused, linked or copied.
//
// A plan with dest not hashed yet is a prepare's whose src has another size:
// the backup is then made dest's file first (or found so already), and that
// one file is hashed once, for the backup and for dest's digest in the plan.
// Where it cannot be linked, dest is hashed and the backup copied as below.
func (m *Module) keepBackup(ctx context.Context, h *modules.Host, p *plan, prepare bool) (string, error) {
	if p.Cur.SHA256 == "" {
		sum, same, err := hostfile.SameFileDigest(ctx, h, m.Dest, m.Backup)
		if err != nil {
			return "", err
		}
		kept := reused
		if !same {
			ok, err := hostfile.KeepLink(ctx, h, m.Dest, m.Backup)
			if err != nil {
				return "", err
			}
			if ok {
				kept = linked
				if sum, same, err = hostfile.SameFileDigest(ctx, h, m.Dest, m.Backup); err != nil {
					return "", err
				}
				if !same {
					return "", fmt.Errorf("the backup %s, just made a link to %s, is no longer the same file (another process replaced one of them?); %s was not touched", m.Backup, m.Dest, m.Dest)
				}
			}
		}
		if same {
			p.Cur.SHA256 = sum
			p.Why = hostfile.ReplacesWhy(m.want(p.sum), sum)
			return kept, nil
		}
		cur, err := hostfile.Inspect(ctx, h, m.Dest, true)
		if err != nil {
			return "", err
		}
		p.Cur.SHA256 = cur.SHA256
		p.Why = hostfile.ReplacesWhy(m.want(p.sum), cur.SHA256)
		return m.keepCopy(ctx, h, *p, prepare)
	}
	ok, err := isKept(ctx, h, *p, m.Backup)
	if err != nil || ok {
		return reused, err
	}
	kept, err := keep(ctx, h, m.Dest, m.Backup)
	if err != nil {
		return "", err
	}
	return kept, m.checkKept(ctx, h, *p, kept, prepare)
}

// keepCopy keeps dest at backup as a copy, unless backup holds dest
// already; dest cannot be linked.
func (m *Module) keepCopy(ctx context.Context, h *modules.Host, p plan, prepare bool) (string, error) {
	ok, err := isKept(ctx, h, p, m.Backup)
	if err != nil || ok {
		return reused, err
	}
	if err := hostfile.Keep(ctx, h, m.Dest, m.Backup); err != nil {
		return "", err
	}
	return copied, m.checkKept(ctx, h, p, copied, prepare)
}

// checkKept checks, with prepare, the backup just kept (see ready).
func (m *Module) checkKept(ctx context.Context, h *modules.Host, p plan, kept string, prepare bool) error {
	if prepare {
		if ok, err := isKept(ctx, h, p, m.Backup); err != nil || !ok {
			return cmpErr(err, fmt.Errorf("the backup of %s at %s does not hold it (another process changed one of them?); %s was not touched", m.Dest, m.Backup, m.Dest))
		}
		if kept == linked {
			// The link made dest's change time new: the digest just
			// computed over the backup is dest's too, and the swap
			// inside the outage need not hash dest again.
			hostfile.SameFile(ctx, h, m.Backup, m.Dest)
		}
	}
	return nil
}

// cmpErr returns err, or otherwise fallback.
func cmpErr(err, fallback error) error {
	if err != nil {
		return err
	}
	return fallback
}

// findStaged looks for a file a prepare staged for dest that holds src as
// the swap would stage it (see isStaged), and lists the others, which are
// stale: another src, an upload cut short.
func findStaged(ctx context.Context, h *modules.Host, p plan, dest string) (found string, stale []string, err error) {
	list, err := hostfile.Staged(ctx, h, dest)
	if err != nil {
		return "", nil, err
	}
	for _, f := range list {
		ok := false
		if found == "" {
			if ok, err = isStaged(ctx, h, p, f); err != nil {
				return "", nil, err
			}
		}
		if ok {
			found = f
		} else {
			stale = append(stale, f)
		}
	}
	return found, stale, nil
}

// isStaged reports whether stage already holds src as the swap would stage
// it: a regular file of its own (a symbolic link would be renamed over dest
// as a link) with src's sha256 and the mode and owner asked for. Anything
// else there, a stage of another src or the part of an upload cut short, is
// replaced, never trusted. The digest is read last: a stale file of the
// wrong mode costs no read of its content.
func isStaged(ctx context.Context, h *modules.Host, p plan, stage string) (bool, error) {
	f, err := hostfile.Lstat(ctx, h, stage)
	if err != nil || !f.Exists || !f.Regular || hostfile.PermBits(f.Perm) != hostfile.PermBits(p.Mode) || !hostfile.SameOwner(p.Owner, f) {
		return false, err
	}
	sum, err := hostfile.Digest(ctx, h, stage, f)
	return sum == p.sum, err
}

// isKept reports whether backup already holds dest as keep would make it
// (cp -p: content, mode and owner), as a regular file of its own. A prepare
// step leaves it so; so does an earlier swap whose file was put back. It was
// synced when it was written, by keep.
func isKept(ctx context.Context, h *modules.Host, p plan, backup string) (bool, error) {
	f, err := hostfile.Lstat(ctx, h, backup)
	if err != nil || !f.Exists || !f.Regular || hostfile.PermBits(f.Perm) != hostfile.PermBits(p.Cur.Perm) || f.UID != p.Cur.UID || f.GID != p.Cur.GID {
		return false, err
	}
	sum, err := hostfile.Digest(ctx, h, backup, f)
	return sum == p.Cur.SHA256, err
}

// prepare does all of a swap but the rename (`prepare: true`): src staged
// beside dest, dest kept at backup. dest is not touched, so it can run while
// the service that uses dest still runs, and the swap after the service is
// stopped is a rename.
func (m *Module) prepare(ctx context.Context, h *modules.Host, dry bool) (modules.Result, error) {
	p, err := m.plan(ctx, h, !dry)
	if err != nil {
		return modules.Result{}, err
	}
	data := map[string]any{
		"src":            m.Src,
		"dest":           m.Dest,
		"backup":         m.Backup,
		"prepare":        true,
		"staged_path":    "",
		"sha256":         p.sum,
		"existed_before": p.Cur.Exists,
		"sha256_before":  p.Cur.SHA256,
		"mode":           hostfile.ModeString(p.Mode),
		"staged":         "",
		"backup_kept":    "",
	}
	if !p.Changed {
		// The swap would change nothing: there is nothing to stage, and the
		// backup may hold the file replaced before a crash.
		data["msg"] = m.Dest + " already has the content of src; nothing to stage, " + m.Backup + " left as it is"
		return modules.Result{Data: data}, nil
	}
	if dry {
		return m.checkPrepare(ctx, h, p, data)
	}
	stage, staged, kept, err := m.ready(ctx, h, &p, true)
	if err != nil {
		return modules.Result{}, err
	}
	data["sha256_before"] = p.Cur.SHA256
	// Its random name is recorded, so that the undo removes this file and
	// no other; a later swap finds it by its prefix and its content.
	data["staged_path"] = stage
	hostfile.RememberStage(h, m.Dest, stage)
	data["staged"], data["backup_kept"] = staged, kept
	data["msg"] = prepareMsg(m, p, stage, staged == reused, kept == reused || kept == "", false)
	return modules.Result{Changed: staged != reused || kept == copied || kept == linked, Data: data}, nil
}

// checkPrepare is prepare in --check: it reads what is staged and kept.
func (m *Module) checkPrepare(ctx context.Context, h *modules.Host, p plan, data map[string]any) (modules.Result, error) {
	stage, _, err := findStaged(ctx, h, p, m.Dest)
	if err != nil {
		return modules.Result{}, err
	}
	staged := stage != ""
	if !staged {
		stage = hostfile.StagePrefix(m.Dest) + "*"
	}
	data["staged_path"] = stage
	kept := true
	if p.Cur.Exists {
		if kept, err = isKept(ctx, h, p, m.Backup); err != nil {
			return modules.Result{}, err
		}
	}
	data["msg"] = prepareMsg(m, p, stage, staged, kept, true)
	return modules.Result{Changed: !staged || !kept, Data: data}, nil
}

// prepareMsg says what a prepare step did, or with dry would do.
func prepareMsg(m *Module, p plan, stage string, staged, kept, dry bool) string {
	verb := func(did, would string) string {
		if dry {
			return would
		}
		return did
	}
	var parts []string
	if staged {
		parts = append(parts, "src is staged at "+stage+" already")
	} else {
		parts = append(parts, verb("staged", "stages")+" src at "+stage)
	}
	switch {
	case !p.Cur.Exists:
		parts = append(parts, m.Dest+" does not exist: nothing to keep")
	case kept:
		parts = append(parts, m.Backup+" holds "+m.Dest+" already")
	default:
		parts = append(parts, verb("kept", "keeps")+" "+m.Dest+" at "+m.Backup)
	}
	return strings.Join(parts, "; ") + "; " + m.Dest + " is not touched"
}

// plan reads both sides and decides. It refuses a src whose digest is not the
// sha256 argument before anything on the host is read or written. With
// bySize, a dest of another size than src is not hashed (see
// hostfile.DecideBySize): its digest is left for keepBackup.
func (m *Module) plan(ctx context.Context, h *modules.Host, bySize bool) (plan, error) {
	p := plan{src: srcPath(h, m.Src)}
	var err error
	var size int64
	if p.sum, size, err = localSum(p.src); err != nil {
		return p, err
	}
	if m.SHA256 != "" && !strings.EqualFold(p.sum, m.SHA256) {
		return p, fmt.Errorf("src %s has sha256 %s, not %s as the step's sha256 says; %s was not touched",
			p.src, p.sum, strings.ToLower(m.SHA256), m.Dest)
	}
	if bySize {
		p.Plan, err = hostfile.DecideBySize(ctx, h, m.want(p.sum), size)
		return p, err
	}
	p.Plan, err = hostfile.Decide(ctx, h, m.want(p.sum))
	return p, err
}

// want is the file the swap installs, whose content has digest sum.
func (m *Module) want(sum string) hostfile.Want {
	return hostfile.Want{Mod: "swap", Of: "src", Dest: m.Dest, Backup: m.Backup,
		Mode: m.Mode.Perm(), Owner: m.Owner, Group: m.Group, SHA256: sum}
}

// stage uploads src into a new file beside dest, with its mode and owner,
// and checks its digest on the host (see hostfile.Stage).
func (m *Module) stage(ctx context.Context, h *modules.Host, p plan) (string, error) {
	return hostfile.Stage(ctx, h, m.want(p.sum), p.Plan, func() (io.ReadCloser, error) {
		f, err := os.Open(p.src)
		if err != nil {
			return nil, fmt.Errorf("src: %w", err)
		}
		return f, nil
	})
}

// restore puts the backup back over the target (`swap: { restore: ... }`).
func (m *Module) restore(ctx context.Context, h *modules.Host, dry bool) (modules.Result, error) {
	bk, err := hostfile.InspectFile(ctx, h, m.Backup)
	if err != nil {
		return modules.Result{}, err
	}
	if bk.Exists && !bk.Regular {
		return modules.Result{}, fmt.Errorf("the backup %s is not a regular file (a symbolic link or a folder); restore does not follow links: put the file to restore there, or give backup", m.Backup)
	}
	if !bk.Exists {
		return modules.Result{}, fmt.Errorf("no backup file at %s to restore %s from; a swap of %s keeps one there (give backup if that swap named another)", m.Backup, m.Restore, m.Restore)
	}
	cur, err := hostfile.InspectFile(ctx, h, m.Restore)
	if err != nil {
		return modules.Result{}, err
	}
	if cur.Exists && !cur.Regular {
		return modules.Result{}, fmt.Errorf("%s is not a regular file (a symbolic link or a folder); swap restores files only, and does not follow links", m.Restore)
	}
	data := map[string]any{
		"dest":           m.Restore,
		"backup":         m.Backup,
		"restored":       true,
		"existed_before": cur.Exists,
		"sha256_before":  cur.SHA256,
		"sha256_after":   bk.SHA256,
		"mode":           hostfile.ModeString(bk.Perm),
	}
	if cur.Exists && cur.SHA256 == bk.SHA256 {
		data["msg"] = m.Restore + " already has the content of " + m.Backup
		return modules.Result{Data: data}, nil
	}
	data["msg"] = "puts " + m.Backup + " back at " + m.Restore
	if dry {
		return modules.Result{Changed: true, Data: data}, nil
	}
	if err := hostfile.PutBack(ctx, h, m.Backup, m.Restore); err != nil {
		return modules.Result{}, err
	}
	if err := hostfile.Verify(ctx, h, m.Restore, bk.SHA256); err != nil {
		return modules.Result{}, err
	}
	return modules.Result{Changed: true, Data: data}, nil
}

// Undo puts back the file the swap replaced, or removes the file it created.
// It works from done.Data, as the journal gives it back after a resume (a
// path the journal shows with a secret redacted is taken from the step's
// arguments when they match it), and refuses rather than destroy a file it does not know: a dest changed
// since the swap, or a backup that is no longer the replaced file (another
// swap of the same path kept its own file there since).
func (m *Module) Undo(ctx context.Context, h *modules.Host, done modules.Result) error {
	if !done.Changed {
		return nil
	}
	ctx = hostfile.TrustIdentity(ctx)
	data, err := m.unredact(done.Data)
	if err != nil {
		return err
	}
	if prepared, _ := data["prepare"].(bool); prepared || m.Prepare {
		return undoPrepare(ctx, h, data)
	}
	return hostfile.Undo(ctx, h, "swap", data)
}

// undoPrepare removes the file a prepare step staged. The backup stays: it
// is a copy of the file still at dest, and may be the one an earlier swap
// kept. A staged file that is gone was renamed into place by a swap (whose
// own undo puts the backup back) or removed already; one with another digest
// is some other step's, and a swap never trusts it anyway, so it is left.
func undoPrepare(ctx context.Context, h *modules.Host, data map[string]any) error {
	dest, _ := data["dest"].(string)
	sum, _ := data["sha256"].(string)
	stage, _ := data["staged_path"].(string)
	if dest == "" || sum == "" {
		return errors.New("cannot undo the prepare: its recorded result lacks dest or sha256; remove the staged file (.NAME.runbook-new.* beside dest) by hand if it is there")
	}
	// Undo removes only a path of ours: one named as a stage of dest (or the
	// one fixed name older versions staged at).
	if !hostfile.IsStageOf(stage, dest) && stage != legacyStage(dest) {
		if stage == "" {
			return nil // the prepare staged nothing
		}
		return fmt.Errorf("cannot undo the prepare: its recorded staged_path %q is not a file staged for %s; remove it by hand if it is one", stage, dest)
	}
	f, err := hostfile.Lstat(ctx, h, stage)
	if err != nil || !f.Exists {
		return err
	}
	if f.Regular {
		got, err := hostfile.HostSum(ctx, h, stage)
		if err != nil {
			return err
		}
		if got == sum {
			if _, err := hostfile.Run(ctx, h, "rm", "-f", "--", stage); err != nil {
				return fmt.Errorf("removing %s, which the prepare staged: %w", stage, err)
			}
			return nil
		}
	}
	h.Log.Warn().Str("path", stage).Msg("the staged file is not the one this prepare staged; left as it is")
	return nil
}

// legacyStage is where versions before random staging names staged a file
// for dest; a journal written by one may name it.
func legacyStage(dest string) string { return hostfile.TempPrefix(dest, ".runbook-new") }

// unredact gives back the paths of a result read from the journal in which a
// secret of the run was replaced (a -e value in dest: /opt/etcd-{{ version }}):
// from the step's own arguments, rendered again, when they match what the
// journal shows around each <redacted>. Undoing at the redacted path would
// find nothing there and take the swap for undone already.
func (m *Module) unredact(data map[string]any) (map[string]any, error) {
	dest := m.Dest
	if m.Restore != "" {
		dest = m.Restore
	}
	backup := m.Backup
	if backup == "" && dest != "" {
		backup = dest + BackupSuffix
	}
	stage := ""
	if rec, _ := data["staged_path"].(string); dest != "" {
		// The random end of a staged name is the swap's, never a secret.
		if i := strings.LastIndex(rec, ".runbook-new."); i >= 0 && !strings.ContainsAny(rec[i:], "/<") {
			stage = hostfile.StagePrefix(dest) + rec[i+len(".runbook-new."):]
		}
	}
	return hostfile.Unredact("swap", data, map[string]string{"dest": dest, "backup": backup, "staged_path": stage})
}

var _ modules.Checker = (*Module)(nil)
