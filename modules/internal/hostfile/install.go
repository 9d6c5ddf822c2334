package hostfile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strconv"
	"strings"

	"github.com/runbookhq/runbook/modules"
)

// DefaultMode is the mode of a file that replaces nothing.
const DefaultMode fs.FileMode = 0o644

// BackupSuffix is what the default backup path adds to dest.
const BackupSuffix = ".runbook-prev"

// Want is a file a module installs: where, kept where, with what mode and
// owner (mode, owner and group left empty keep those of the replaced file),
// and the sha256 of its content.
type Want struct {
	Mod    string // the module's name, for messages: "swap", "template"
	Of     string // what the content is, for messages: "src", "the rendered template"
	Dest   string
	Backup string
	Mode   fs.FileMode
	Owner  string
	Group  string
	SHA256 string
	// NoFollow refuses a dest that is a symbolic link instead of reading
	// (and backing up) the file it points to: a link planted at dest must
	// not make the diff show, or the backup copy, a file the step never
	// meant to touch.
	NoFollow bool
}

// Plan is what installing a file will do, known before anything is written.
type Plan struct {
	Cur     File
	Mode    fs.FileMode
	Owner   string // for chown: "user:group", "user", ":group", or "" to keep the uploader's
	Changed bool
	Why     string
}

// Decide reads dest on the host and says whether w changes it.
func Decide(ctx context.Context, h *modules.Host, w Want) (Plan, error) {
	var p Plan
	var err error
	if w.NoFollow {
		p.Cur, err = InspectFile(ctx, h, w.Dest)
	} else {
		p.Cur, err = Inspect(ctx, h, w.Dest, true)
	}
	if err != nil {
		return p, err
	}
	return decide(w, p.Cur)
}

// decide says whether w changes cur, the file at w.Dest.
func decide(w Want, cur File) (Plan, error) {
	p := Plan{Cur: cur}
	if p.Cur.Exists && !p.Cur.Regular && w.NoFollow {
		return p, fmt.Errorf("dest %s is not a regular file (a symbolic link or a folder); %s does not follow links: give the path of the file itself, or remove what is there", w.Dest, w.Mod)
	}
	if p.Cur.Exists && !p.Cur.Regular {
		return p, fmt.Errorf("dest %s is not a regular file; %s replaces files only", w.Dest, w.Mod)
	}
	p.Mode = w.Mode
	switch {
	case p.Mode != 0:
	case p.Cur.Exists:
		p.Mode = p.Cur.Perm
	default:
		p.Mode = DefaultMode
	}
	p.Owner = ChownSpec(w.Owner, w.Group, p.Cur)
	switch {
	case !p.Cur.Exists:
		p.Changed, p.Why = true, "creates "+w.Dest
	case p.Cur.SHA256 != w.SHA256:
		p.Changed, p.Why = true, ReplacesWhy(w, p.Cur.SHA256)
	case PermBits(p.Cur.Perm) != PermBits(p.Mode) || !SameID(w.Owner, p.Cur.User, p.Cur.UID) || !SameID(w.Group, p.Cur.Group, p.Cur.GID):
		// Same content, other mode or owner: the file is replaced all the
		// same, so the backup keeps the old mode and owner for an undo.
		p.Changed, p.Why = true, fmt.Sprintf("%s has the content of %s, but not the mode or owner asked for; replaces it and keeps it at %s", w.Dest, w.Of, w.Backup)
	default:
		// After a crash between the rename and the journal, a re-run lands
		// here: the backup then holds the file replaced before the crash and
		// must be left as it is.
		p.Why = w.Dest + " already has the content of " + w.Of + "; " + w.Backup + " left as it is"
	}
	return p, nil
}

// ReplacesWhy is a plan's Why when dest, of digest before, is replaced.
func ReplacesWhy(w Want, before string) string {
	return fmt.Sprintf("replaces %s (sha256 %s) and keeps it at %s", w.Dest, Short(before), w.Backup)
}

// Result is the Data of a module's Result that Undo reads back: the same
// keys for every module that installs a file.
func Result(w Want, p Plan) map[string]any {
	return map[string]any{
		"dest":           w.Dest,
		"backup":         w.Backup,
		"existed_before": p.Cur.Exists,
		"sha256_before":  p.Cur.SHA256,
		"sha256_after":   w.SHA256,
		"mode":           ModeString(p.Mode),
		"msg":            p.Why,
	}
}

// Stage uploads the content open gives into a new file beside w.Dest (see
// MakeTemp), gives it its mode and owner, then checks its digest on the
// host: a file that did not arrive whole never replaces dest. chown and
// chmod run only on a file lstat says is a regular file: the one made here,
// never a link. On an error the staged file is removed.
func Stage(ctx context.Context, h *modules.Host, w Want, p Plan, open func() (io.ReadCloser, error)) (stage string, err error) {
	stage, err = MakeTemp(ctx, h, StagePrefix(w.Dest), true)
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			RemoveTemp(h, stage, true)
			stage = ""
		}
	}()
	r, err := open()
	if err != nil {
		return stage, err
	}
	err = Upload(ctx, h, r, w.Of, stage, p.Mode)
	r.Close()
	if err != nil {
		return stage, err
	}
	got, err := OwnFile(ctx, h, stage)
	if err != nil {
		return stage, err
	}
	chowned := false
	if p.Owner != "" && !SameOwner(p.Owner, got) {
		if _, err := Run(ctx, h, "chown", "--", p.Owner, stage); err != nil {
			hint := ""
			if !h.Become {
				hint = "; keeping or giving another owner needs become: true"
			}
			return stage, fmt.Errorf("giving %s owner %s: %w%s", stage, p.Owner, err, hint)
		}
		chowned = true
	}
	// chown clears setuid and setgid, and a transport may apply the mode
	// under a umask: set it whenever it may not be what was asked.
	id := got.ID
	if chowned || PermBits(got.Perm) != PermBits(p.Mode) {
		if _, err := OwnFile(ctx, h, stage); err != nil {
			return stage, err
		}
		if _, err := Run(ctx, h, "chmod", "--", ModeString(p.Mode), stage); err != nil {
			return stage, fmt.Errorf("setting mode %s on %s: %w", ModeString(p.Mode), stage, err)
		}
		id = ""
		if trusting(ctx) {
			// The digest is remembered with the identity the file has
			// now, read before it is hashed: a swap after this prepare
			// hashes it again only if that identity changed.
			final, err := OwnFile(ctx, h, stage)
			if err != nil {
				return stage, err
			}
			id = final.ID
		}
	}
	sum, err := HostSum(ctx, h, stage)
	if err != nil {
		return stage, err
	}
	remember(ctx, h, stage, id, sum)
	if sum != w.SHA256 {
		return stage, fmt.Errorf("the file copied to the host has sha256 %s, not %s as %s; %s was not touched", sum, w.SHA256, w.Of, w.Dest)
	}
	return stage, nil
}

// Install keeps dest at w.Backup (when it exists) and renames stage over
// it; stage must be a file Stage made. On an error stage is removed and
// dest is as it was.
func Install(ctx context.Context, h *modules.Host, w Want, p Plan, stage string) error {
	if p.Cur.Exists {
		if err := Keep(ctx, h, w.Dest, w.Backup); err != nil {
			RemoveTemp(h, stage, true)
			return err
		}
	}
	return Rename(ctx, h, stage, w.Dest)
}

// Rename moves stage, a file of ours, over dest after checking that it is
// still a regular file, and makes the rename durable.
func Rename(ctx context.Context, h *modules.Host, stage, dest string) error {
	if _, err := OwnFile(ctx, h, stage); err != nil {
		return err
	}
	if _, err := Run(ctx, h, "mv", "-f", "--", stage, dest); err != nil {
		RemoveTemp(h, stage, true)
		return fmt.Errorf("renaming %s to %s: %w", stage, dest, err)
	}
	SyncPaths(ctx, h, dest, path.Dir(dest))
	return nil
}

// Undo puts back the file an install replaced, or removes the file it
// created, from the Data that Result made (possibly read back from the
// journal). It refuses rather than destroy a file it does not know: a dest
// changed since the install, or a backup that is no longer the replaced file
// (another install of the same path kept its own file there since).
func Undo(ctx context.Context, h *modules.Host, mod string, data map[string]any) error {
	r, err := readResult(mod, data)
	if err != nil {
		return err
	}
	if r.restored {
		return fmt.Errorf("a restore of %s cannot be undone: the file it replaced (sha256 %s) was not kept", r.dest, Short(r.before))
	}
	cur, err := Inspect(ctx, h, r.dest, true)
	if err != nil {
		return err
	}
	if !r.existed {
		switch {
		case !cur.Exists:
			return nil
		case cur.SHA256 != r.after:
			return fmt.Errorf("%s has changed since the %s created it (sha256 %s, not %s); not removing it", r.dest, mod, Short(cur.SHA256), Short(r.after))
		}
		if _, err := Run(ctx, h, "rm", "-f", "--", r.dest); err != nil {
			return fmt.Errorf("removing %s, which the %s created: %w", r.dest, mod, err)
		}
		SyncPaths(ctx, h, path.Dir(r.dest))
		return nil
	}
	switch {
	case cur.Exists && cur.SHA256 == r.before:
		return nil // restored already, by an earlier try of this rollback
	case cur.Exists && cur.SHA256 != r.after:
		return fmt.Errorf("%s has changed since the %s (sha256 %s, neither the installed %s nor the replaced %s); not overwriting it: the replaced file is at %s",
			r.dest, mod, Short(cur.SHA256), Short(r.after), Short(r.before), r.backup)
	}
	bk, err := InspectFile(ctx, h, r.backup)
	if err != nil {
		return err
	}
	switch {
	case bk.Exists && !bk.Regular:
		return fmt.Errorf("the backup %s of %s is not a regular file (a symbolic link or a folder); not following it: put back the replaced file (sha256 %s) by hand", r.backup, r.dest, Short(r.before))
	case !bk.Exists:
		return fmt.Errorf("the backup %s of %s is gone; cannot put back the replaced file (sha256 %s)", r.backup, r.dest, Short(r.before))
	case bk.SHA256 != r.before:
		return fmt.Errorf("the backup %s has sha256 %s, not that of the file the %s replaced (%s): did a later %s of %s keep its own file there? Not restoring",
			r.backup, Short(bk.SHA256), mod, Short(r.before), mod, r.dest)
	}
	if err := PutBack(ctx, h, r.backup, r.dest); err != nil {
		return err
	}
	return Verify(ctx, h, r.dest, r.before)
}

// Verify checks that p on the host has the digest want.
func Verify(ctx context.Context, h *modules.Host, p, want string) error {
	got, err := HostSum(ctx, h, p)
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("%s has sha256 %s after the restore, not %s", p, got, want)
	}
	return nil
}

// result is an install's Result.Data as Undo needs it.
type result struct {
	dest, backup  string
	before, after string
	existed       bool
	restored      bool
}

// readResult reads data, which may come from the journal: every value is a
// string or a bool there, as Result wrote them.
func readResult(mod string, data map[string]any) (result, error) {
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
		return r, errors.New("cannot undo the " + mod + ": its recorded result lacks " + strings.Join(errs, ", ") +
			"; put the previous file back by hand from its backup (by default DEST" + BackupSuffix + ")")
	}
	return r, nil
}

// PermBits are the bits chmod sets, without Go's type bits.
func PermBits(m fs.FileMode) fs.FileMode { return m & 0o7777 }

// Short is a digest cut for messages.
func Short(sum string) string {
	if len(sum) > 12 {
		return sum[:12] + "…"
	}
	return sum
}

// ChownSpec says what owner the new file must get: the owner and group
// given, and otherwise those of the file it replaces, by number, since a
// name may mean another id after the copy (it does not, on one host, but the
// number is what stat compared).
func ChownSpec(owner, group string, cur File) string {
	if cur.Exists {
		if owner == "" {
			owner = strconv.Itoa(cur.UID)
		}
		if group == "" {
			group = strconv.Itoa(cur.GID)
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

// SameID reports whether a file's owner (name, id) is want; an empty want
// is any owner.
func SameID(want, name string, id int) bool {
	return want == "" || want == name || want == strconv.Itoa(id)
}

// SameOwner reports whether f already has the owner spec of chown.
func SameOwner(spec string, f File) bool {
	owner, group, _ := strings.Cut(spec, ":")
	return SameID(owner, f.User, f.UID) && SameID(group, f.Group, f.GID)
}
