package swap

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/runbookhq/runbook/internal/redact"
	"github.com/runbookhq/runbook/modules"
)

// tidyTimeout bounds the removal of a temporary file after a failure.
const tidyTimeout = 10 * time.Second

// defaultMode is the mode of a file that replaces nothing.
const defaultMode fs.FileMode = 0o644

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
)

// plan is what the swap of one file will do, known before anything is written.
type plan struct {
	src     string // on the controller
	sum     string // src's sha256
	cur     hostFile
	mode    fs.FileMode
	owner   string // for chown: "user:group", "user", ":group", or "" to keep the uploader's
	changed bool
	why     string
}

func (m *Module) swap(ctx context.Context, h *modules.Host, dry bool) (modules.Result, error) {
	ctx = readAhead(ctx, h, m.Dest, m.Backup)
	p, err := m.plan(ctx, h)
	if err != nil {
		return modules.Result{}, err
	}
	data := map[string]any{
		"src":            m.Src,
		"dest":           m.Dest,
		"backup":         m.Backup,
		"existed_before": p.cur.exists,
		"sha256_before":  p.cur.sha256,
		"sha256_after":   p.sum,
		"mode":           modeString(p.mode),
		"msg":            p.why,
		"staged":         "",
		"backup_kept":    "",
	}
	if !p.changed || dry {
		return modules.Result{Changed: p.changed, Data: data}, nil
	}

	stage, staged, kept, err := m.ready(ctx, h, p)
	if err != nil {
		return modules.Result{}, err
	}
	data["staged"], data["backup_kept"] = staged, kept
	if staged == reused {
		data["msg"] = p.why + "; the file staged at " + stage + " by a prepare is used"
	}
	if _, err := ownFile(ctx, h, stage); err != nil {
		return modules.Result{}, err
	}
	if _, err := run(ctx, h, "mv", "-f", "--", stage, m.Dest); err != nil {
		removeTemp(h, stage, true)
		return modules.Result{}, fmt.Errorf("renaming %s to %s: %w", stage, m.Dest, err)
	}
	syncPaths(ctx, h, m.Dest, path.Dir(m.Dest))
	return modules.Result{Changed: true, Data: data}, nil
}

// ready stages src beside dest and, when dest exists, makes backup hold
// dest: all of a swap but the rename. What a prepare step did already is
// checked and kept, and the rest done; it says which for each (staged:
// uploaded or reused; backup_kept: copied, reused, or "" when dest does not
// exist), and returns the staged file. On an error, a file it staged is
// removed again.
func (m *Module) ready(ctx context.Context, h *modules.Host, p plan) (stage, staged, kept string, err error) {
	stage, stale, err := findStaged(ctx, h, p, m.Dest)
	if err != nil {
		return "", "", "", err
	}
	staged = reused
	if stage == "" {
		if stage, err = m.stage(ctx, h, p); err != nil {
			return "", "", "", err
		}
		staged = uploaded
	}
	fail := func(err error) (string, string, string, error) {
		removeTemp(h, stage, true)
		return "", "", "", err
	}
	if p.cur.exists {
		ok, err := isKept(ctx, h, p, m.Backup)
		if err != nil {
			return fail(err)
		}
		kept = reused
		if !ok {
			if err := keep(ctx, h, m.Dest, m.Backup); err != nil {
				return fail(err)
			}
			// Checked (and so remembered) now, while the service still
			// runs, rather than by the swap inside its outage.
			if ok, err := isKept(ctx, h, p, m.Backup); err != nil || !ok {
				return fail(cmpErr(err, fmt.Errorf("the copy of %s at %s does not hold it (another process changed one of them?); %s was not touched", m.Dest, m.Backup, m.Dest)))
			}
			kept = copied
		}
	}
	// Files an earlier prepare of another src left: the one staged now
	// replaces them, as a rename over the one staging name once did.
	for _, f := range stale {
		removeTemp(h, f, true)
	}
	return stage, staged, kept, nil
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
	list, err := staged(ctx, h, dest)
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
	f, err := lstat(ctx, h, stage)
	if err != nil || !f.exists || !f.regular || permBits(f.perm) != permBits(p.mode) || !sameOwner(p.owner, f) {
		return false, err
	}
	sum, err := sumOf(ctx, h, stage, f.id)
	return sum == p.sum, err
}

// isKept reports whether backup already holds dest as keep would make it
// (cp -p: content, mode and owner), as a regular file of its own. A prepare
// step leaves it so; so does an earlier swap whose file was put back. It was
// synced when it was written, by keep.
func isKept(ctx context.Context, h *modules.Host, p plan, backup string) (bool, error) {
	f, err := lstat(ctx, h, backup)
	if err != nil || !f.exists || !f.regular || permBits(f.perm) != permBits(p.cur.perm) || f.uid != p.cur.uid || f.gid != p.cur.gid {
		return false, err
	}
	sum, err := sumOf(ctx, h, backup, f.id)
	return sum == p.cur.sha256, err
}

// prepare does all of a swap but the rename (`prepare: true`): src staged
// beside dest, dest kept at backup. dest is not touched, so it can run while
// the service that uses dest still runs, and the swap after the service is
// stopped is a rename.
func (m *Module) prepare(ctx context.Context, h *modules.Host, dry bool) (modules.Result, error) {
	p, err := m.plan(ctx, h)
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
		"existed_before": p.cur.exists,
		"sha256_before":  p.cur.sha256,
		"mode":           modeString(p.mode),
		"staged":         "",
		"backup_kept":    "",
	}
	if !p.changed {
		// The swap would change nothing: there is nothing to stage, and the
		// backup may hold the file replaced before a crash.
		data["msg"] = m.Dest + " already has the content of src; nothing to stage, " + m.Backup + " left as it is"
		return modules.Result{Data: data}, nil
	}
	if dry {
		return m.checkPrepare(ctx, h, p, data)
	}
	stage, staged, kept, err := m.ready(ctx, h, p)
	if err != nil {
		return modules.Result{}, err
	}
	// Its random name is recorded, so that the undo removes this file and
	// no other; a later swap finds it by its prefix and its content.
	data["staged_path"] = stage
	rememberStage(h, m.Dest, stage)
	data["staged"], data["backup_kept"] = staged, kept
	data["msg"] = prepareMsg(m, p, stage, staged == reused, kept != copied, false)
	return modules.Result{Changed: staged != reused || kept == copied, Data: data}, nil
}

// checkPrepare is prepare in --check: it reads what is staged and kept.
func (m *Module) checkPrepare(ctx context.Context, h *modules.Host, p plan, data map[string]any) (modules.Result, error) {
	stage, _, err := findStaged(ctx, h, p, m.Dest)
	if err != nil {
		return modules.Result{}, err
	}
	staged := stage != ""
	if !staged {
		stage = stagePrefix(m.Dest) + "*"
	}
	data["staged_path"] = stage
	kept := true
	if p.cur.exists {
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
	case !p.cur.exists:
		parts = append(parts, m.Dest+" does not exist: nothing to keep")
	case kept:
		parts = append(parts, m.Backup+" holds "+m.Dest+" already")
	default:
		parts = append(parts, verb("kept", "keeps")+" "+m.Dest+" at "+m.Backup)
	}
	return strings.Join(parts, "; ") + "; " + m.Dest + " is not touched"
}

// plan reads both sides and decides. It refuses a src whose digest is not the
// sha256 argument before anything on the host is read or written.
func (m *Module) plan(ctx context.Context, h *modules.Host) (plan, error) {
	p := plan{src: srcPath(h, m.Src)}
	var err error
	if p.sum, err = localSum(p.src); err != nil {
		return p, err
	}
	if m.SHA256 != "" && !strings.EqualFold(p.sum, m.SHA256) {
		return p, fmt.Errorf("src %s has sha256 %s, not %s as the step's sha256 says; %s was not touched",
			p.src, p.sum, strings.ToLower(m.SHA256), m.Dest)
	}
	if p.cur, err = inspect(ctx, h, m.Dest, true); err != nil {
		return p, err
	}
	if p.cur.exists && !p.cur.regular {
		return p, fmt.Errorf("dest %s is not a regular file; swap replaces files only", m.Dest)
	}
	p.mode = m.Mode.Perm()
	switch {
	case p.mode != 0:
	case p.cur.exists:
		p.mode = p.cur.perm
	default:
		p.mode = defaultMode
	}
	p.owner = m.chownSpec(p.cur)
	switch {
	case !p.cur.exists:
		p.changed, p.why = true, "creates "+m.Dest
	case p.cur.sha256 != p.sum:
		p.changed, p.why = true, fmt.Sprintf("replaces %s (sha256 %s) and keeps it at %s", m.Dest, short(p.cur.sha256), m.Backup)
	case permBits(p.cur.perm) != permBits(p.mode) || !m.ownedAsAsked(p.cur):
		// Same content, other mode or owner: the file is swapped all the same,
		// so the backup keeps the old mode and owner for an undo.
		p.changed, p.why = true, fmt.Sprintf("%s has the content of src, but not the mode or owner asked for; replaces it and keeps it at %s", m.Dest, m.Backup)
	default:
		// After a crash between the rename and the journal, a re-run lands
		// here: the backup then holds the file replaced before the crash and
		// must be left as it is.
		p.why = m.Dest + " already has the content of src; " + m.Backup + " left as it is"
	}
	return p, nil
}

// permBits are the bits chmod sets, without Go's type bits.
func permBits(m fs.FileMode) fs.FileMode { return m & 0o7777 }

func short(sum string) string {
	if len(sum) > 12 {
		return sum[:12] + "…"
	}
	return sum
}

// chownSpec says what owner the new file must get: the owner and group
// given, and otherwise those of the file it replaces, by number, since a
// name may mean another id after the copy (it does not, on one host, but the
// number is what stat compared).
func (m *Module) chownSpec(cur hostFile) string {
	owner, group := m.Owner, m.Group
	if cur.exists {
		if owner == "" {
			owner = strconv.Itoa(cur.uid)
		}
		if group == "" {
			group = strconv.Itoa(cur.gid)
		}
	}
	switch {
	case owner != "" && group != "":
		return owner + ":" + group
	case group != "":
		return ":" + group
	}
	return owner
}

// ownedAsAsked reports whether f has the owner and group the step gives; an
// owner left out is the one f has.
func (m *Module) ownedAsAsked(f hostFile) bool {
	return sameID(m.Owner, f.user, f.uid) && sameID(m.Group, f.group, f.gid)
}

func sameID(want, name string, id int) bool {
	return want == "" || want == name || want == strconv.Itoa(id)
}

// stage uploads src into a new file beside dest (see makeTemp) and gives it
// its mode and owner, then checks its digest on the host: a file that did
// not arrive whole never replaces dest. chown and chmod run only on a file
// lstat says is a regular file: the one made here, never a link.
func (m *Module) stage(ctx context.Context, h *modules.Host, p plan) (stage string, err error) {
	stage, err = makeTemp(ctx, h, stagePrefix(m.Dest), true)
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			removeTemp(h, stage, true)
			stage = ""
		}
	}()
	if err := upload(ctx, h, p.src, stage, p.mode); err != nil {
		return stage, err
	}
	got, err := ownFile(ctx, h, stage)
	if err != nil {
		return stage, err
	}
	chowned := false
	if p.owner != "" && !sameOwner(p.owner, got) {
		if _, err := run(ctx, h, "chown", "--", p.owner, stage); err != nil {
			hint := ""
			if !h.Become {
				hint = "; keeping or giving another owner needs become: true"
			}
			return stage, fmt.Errorf("giving %s owner %s: %w%s", stage, p.owner, err, hint)
		}
		chowned = true
	}
	// chown clears setuid and setgid, and a transport may apply the mode
	// under a umask: set it whenever it may not be what was asked.
	if chowned || permBits(got.perm) != permBits(p.mode) {
		if _, err := ownFile(ctx, h, stage); err != nil {
			return stage, err
		}
		if _, err := run(ctx, h, "chmod", "--", modeString(p.mode), stage); err != nil {
			return stage, fmt.Errorf("setting mode %s on %s: %w", modeString(p.mode), stage, err)
		}
	}
	// The digest is checked on the file as it is now, and remembered with
	// its identity read before: a swap after this prepare lstats the file
	// and hashes it again only if that identity changed.
	final, err := ownFile(ctx, h, stage)
	if err != nil {
		return stage, err
	}
	sum, err := hostSum(ctx, h, stage)
	if err != nil {
		return stage, err
	}
	remember(h, stage, final.id, sum)
	if sum != p.sum {
		return stage, fmt.Errorf("the file copied to the host has sha256 %s, not %s as src; %s was not touched", sum, p.sum, m.Dest)
	}
	return stage, nil
}

// sameOwner reports whether f already has the owner spec of chown.
func sameOwner(spec string, f hostFile) bool {
	owner, group, _ := strings.Cut(spec, ":")
	return sameID(owner, f.user, f.uid) && sameID(group, f.group, f.gid)
}

// restore puts the backup back over the target (`swap: { restore: ... }`).
func (m *Module) restore(ctx context.Context, h *modules.Host, dry bool) (modules.Result, error) {
	bk, err := inspectFile(ctx, h, m.Backup)
	if err != nil {
		return modules.Result{}, err
	}
	if bk.exists && !bk.regular {
		return modules.Result{}, fmt.Errorf("the backup %s is not a regular file (a symbolic link or a folder); restore does not follow links: put the file to restore there, or give backup", m.Backup)
	}
	if !bk.exists {
		return modules.Result{}, fmt.Errorf("no backup file at %s to restore %s from; a swap of %s keeps one there (give backup if that swap named another)", m.Backup, m.Restore, m.Restore)
	}
	cur, err := inspectFile(ctx, h, m.Restore)
	if err != nil {
		return modules.Result{}, err
	}
	if cur.exists && !cur.regular {
		return modules.Result{}, fmt.Errorf("%s is not a regular file (a symbolic link or a folder); swap restores files only, and does not follow links", m.Restore)
	}
	data := map[string]any{
		"dest":           m.Restore,
		"backup":         m.Backup,
		"restored":       true,
		"existed_before": cur.exists,
		"sha256_before":  cur.sha256,
		"sha256_after":   bk.sha256,
		"mode":           modeString(bk.perm),
	}
	if cur.exists && cur.sha256 == bk.sha256 {
		data["msg"] = m.Restore + " already has the content of " + m.Backup
		return modules.Result{Data: data}, nil
	}
	data["msg"] = "puts " + m.Backup + " back at " + m.Restore
	if dry {
		return modules.Result{Changed: true, Data: data}, nil
	}
	if err := putBack(ctx, h, m.Backup, m.Restore); err != nil {
		return modules.Result{}, err
	}
	if err := verify(ctx, h, m.Restore, bk.sha256); err != nil {
		return modules.Result{}, err
	}
	return modules.Result{Changed: true, Data: data}, nil
}

// verify checks that p on the host has the digest want.
func verify(ctx context.Context, h *modules.Host, p, want string) error {
	got, err := hostSum(ctx, h, p)
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("%s has sha256 %s after the restore, not %s", p, got, want)
	}
	return nil
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
	data, err := m.unredact(done.Data)
	if err != nil {
		return err
	}
	if prepared, _ := data["prepare"].(bool); prepared || m.Prepare {
		return undoPrepare(ctx, h, data)
	}
	r, err := readResult(data)
	if err != nil {
		return err
	}
	if r.restored {
		return fmt.Errorf("a restore of %s cannot be undone: the file it replaced (sha256 %s) was not kept", r.dest, short(r.before))
	}
	cur, err := inspect(ctx, h, r.dest, true)
	if err != nil {
		return err
	}
	if !r.existed {
		switch {
		case !cur.exists:
			return nil
		case cur.sha256 != r.after:
			return fmt.Errorf("%s has changed since the swap created it (sha256 %s, not %s); not removing it", r.dest, short(cur.sha256), short(r.after))
		}
		if _, err := run(ctx, h, "rm", "-f", "--", r.dest); err != nil {
			return fmt.Errorf("removing %s, which the swap created: %w", r.dest, err)
		}
		syncPaths(ctx, h, path.Dir(r.dest))
		return nil
	}
	switch {
	case cur.exists && cur.sha256 == r.before:
		return nil // restored already, by an earlier try of this rollback
	case cur.exists && cur.sha256 != r.after:
		return fmt.Errorf("%s has changed since the swap (sha256 %s, neither the installed %s nor the replaced %s); not overwriting it: the replaced file is at %s",
			r.dest, short(cur.sha256), short(r.after), short(r.before), r.backup)
	}
	bk, err := inspectFile(ctx, h, r.backup)
	if err != nil {
		return err
	}
	switch {
	case bk.exists && !bk.regular:
		return fmt.Errorf("the backup %s of %s is not a regular file (a symbolic link or a folder); not following it: put back the replaced file (sha256 %s) by hand", r.backup, r.dest, short(r.before))
	case !bk.exists:
		return fmt.Errorf("the backup %s of %s is gone; cannot put back the replaced file (sha256 %s)", r.backup, r.dest, short(r.before))
	case bk.sha256 != r.before:
		return fmt.Errorf("the backup %s has sha256 %s, not that of the file the swap replaced (%s): did a later swap of %s keep its own file there? Not restoring",
			r.backup, short(bk.sha256), short(r.before), r.dest)
	}
	if err := putBack(ctx, h, r.backup, r.dest); err != nil {
		return err
	}
	return verify(ctx, h, r.dest, r.before)
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
	if !isStageOf(stage, dest) && stage != legacyStage(dest) {
		if stage == "" {
			return nil // the prepare staged nothing
		}
		return fmt.Errorf("cannot undo the prepare: its recorded staged_path %q is not a file staged for %s; remove it by hand if it is one", stage, dest)
	}
	f, err := lstat(ctx, h, stage)
	if err != nil || !f.exists {
		return err
	}
	if f.regular {
		got, err := hostSum(ctx, h, stage)
		if err != nil {
			return err
		}
		if got == sum {
			if _, err := run(ctx, h, "rm", "-f", "--", stage); err != nil {
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
func legacyStage(dest string) string { return tempPrefix(dest, ".runbook-new") }

// unredact gives back the paths of a result read from the journal in which a
// secret of the run was replaced (a -e value in dest: /opt/etcd-{{ version }}):
// from the step's own arguments, rendered again, when they match what the
// journal shows around each <redacted>. Undoing at the redacted path would
// find nothing there and take the swap for undone already.
func (m *Module) unredact(data map[string]any) (map[string]any, error) {
	var out map[string]any
	set := func(key, actual string) error {
		rec, _ := data[key].(string)
		if !strings.Contains(rec, redact.Placeholder) {
			return nil
		}
		// Arguments rendered from a loop item the journal gave back
		// redacted are no better than the record.
		if actual == "" || strings.Contains(actual, redact.Placeholder) || !matchesRedacted(rec, actual) {
			return fmt.Errorf("cannot undo the swap: its recorded %s %q hides a secret of the run, and the step's own path does not match it; put the previous file back by hand from its backup (by default DEST%s)", key, rec, BackupSuffix)
		}
		if out == nil {
			out = maps.Clone(data)
		}
		out[key] = actual
		return nil
	}
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
			stage = stagePrefix(dest) + rec[i+len(".runbook-new."):]
		}
	}
	if err := errors.Join(set("dest", dest), set("backup", backup), set("staged_path", stage)); err != nil {
		return nil, err
	}
	if out == nil {
		return data, nil
	}
	return out, nil
}

// matchesRedacted reports whether actual is rec with each <redacted> in rec
// standing for some text.
func matchesRedacted(rec, actual string) bool {
	parts := strings.Split(rec, redact.Placeholder)
	first, last := parts[0], parts[len(parts)-1]
	if !strings.HasPrefix(actual, first) || !strings.HasSuffix(actual[len(first):], last) {
		return false
	}
	mid := actual[len(first) : len(actual)-len(last)]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(mid[min(1, len(mid)):], p)
		if i < 0 {
			return false
		}
		mid = mid[min(1, len(mid))+i+len(p):]
	}
	return mid != ""
}

// result is a swap's Result.Data as Undo needs it.
type result struct {
	dest, backup  string
	before, after string
	existed       bool
	restored      bool
}

// readResult reads done.Data, which may come from the journal: every value is
// a string or a bool there, as Run wrote them.
func readResult(data map[string]any) (result, error) {
	var r result
	var errs []string
	str := func(key string, required bool) string {
		s, ok := data[key].(string)
		if !ok || (required && s == "") {
			errs = append(errs, key)
		}
		return s
	}
	flag := func(key string) bool {
		b, ok := data[key].(bool)
		if !ok {
			errs = append(errs, key)
		}
		return b
	}
	r.dest = str("dest", true)
	r.after = str("sha256_after", true)
	r.existed = flag("existed_before")
	r.restored, _ = data["restored"].(bool)
	if r.existed {
		r.backup = str("backup", true)
		r.before = str("sha256_before", true)
	}
	if len(errs) > 0 {
		return r, errors.New("cannot undo the swap: its recorded result lacks " + strings.Join(errs, ", ") +
			"; put the previous file back by hand from its backup (by default DEST" + BackupSuffix + ")")
	}
	return r, nil
}

var _ modules.Checker = (*Module)(nil)
