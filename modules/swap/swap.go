// Package swap is the swap module: it replaces a file on the host atomically and
// keeps the previous one beside it, so that a rollback can put it back.
package swap

import (
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/runbookhq/runbook/modules"
	"github.com/runbookhq/runbook/modules/arg"
	"github.com/runbookhq/runbook/modules/internal/argcheck"
	"github.com/runbookhq/runbook/modules/internal/hostfile"
)

func init() {
	modules.Register(modules.Info{
		Name: "swap",
		New:  func() modules.Module { return new(Module) },
		Doc: modules.Doc{
			Summary: "replace a file on the host, keeping the previous one for rollback",
			Description: `With src and dest, copies src from the controller to a file beside dest,
gives it its mode and owner, checks its sha256 on the host, and renames it
over dest, so that nothing ever sees a partial file; the file it replaces is
kept at backup first (and synced to disk). sha256 makes the step refuse a src
that is not the file you reviewed, before the host is touched. When dest
already has the content, mode and owner asked for, nothing changes and the
backup is left as it is: after a crash between the rename and the journal, a
re-run keeps the file replaced before the crash.

Where it can, the swap keeps the backup as a second hard link to dest's file
rather than as a copy: no data is written or flushed, and once the rename
puts the new file at dest, backup is the replaced file itself, with its
content, mode and owner. It links only a dest that is a regular file (not a
symbolic link) with no other link, beside a backup on the same filesystem;
otherwise, or when the host cannot link (no ln -T, a filesystem without hard
links, protected_hardlinks), it copies with cp -p. The result's backup_kept
says which. Until the rename, dest and backup are one file: a change written
into dest in place shows in both, and the swap finds the backup holding dest
still. After it, a process that kept the replaced file open for writing
would write into the backup; an undo then refuses, as it does whenever the
backup no longer holds the replaced file.

With prepare: true, does all of that but the rename: src is staged beside
dest (at .NAME.runbook-new.RANDOM, recorded in the result's staged_path,
given its mode and owner, its sha256 checked on the host) and dest is kept
at backup, synced, while dest itself is not touched (a link adds to its link
count only). A later swap with the same src, dest, mode, owner and group finds
both done and only renames, so a service stopped for the swap is down for a
rename rather than for an upload and two large flushes to disk. A swap,
prepared or not, reuses a staged file only when it has src's sha256, mode
and owner, and a backup only when it holds dest's content, mode and owner;
anything else there is replaced. The result's staged ("uploaded" or
"reused") and backup_kept ("linked", "copied" or "reused") say which. A
backup a prepare keeps, linked or copied, is hashed on the host once made,
while the service still runs. When dest is of another size than src, the
prepare knows it is replaced without reading it: it keeps the backup first
and, linked, hashes the one file backup and dest then are once for both
(for the result's sha256_before too). A prepare uploads src and keeps the
backup at the same time, the two being independent; when the upload fails,
a backup kept meanwhile stays (it holds dest, which is as it was). Within
one run,
a file hashed once is not hashed again while stat shows it unchanged (same
device, inode, size, modification and change times), so the swap after a
prepare reads no content at all; a file changed in any way is hashed again.
A prepare touches nothing dest's users see, which makes it the step to mark
ahead: true at the top of steps:, so that each host stages while the batch
before it is at its last step; if that host's batch never starts, the
undo removes what it staged.

With restore, puts back the file that the last swap of that path kept at
backup (give backup too if that swap named one), keeping the backup. It is
what rollback runs, and can be written as a step:
swap: { restore: /usr/local/bin/etcd }.

mode, owner and group default to those of the file being replaced, so a
binary stays executable; a new file gets 0644 and the connecting user. With
become, the file is uploaded as the connecting user and moved into place as
the step's user. Every file the swap writes beside dest or backup is one it
made under a random name (mktemp), checked with lstat before it is chowned,
chmodded or renamed, so a symbolic link planted beside dest is never
followed (a backup kept as a link is made by ln -T under a new random name,
which fails rather than follow or replace anything found there); a backup
or restored file that is a link or a folder is refused.
The host needs sha256sum, stat, cp, mv, ln, mktemp and find (GNU coreutils
and findutils, or busybox). In --check, only digests are compared (with prepare, those of the
staged file and the backup too), and nothing is written.`,
			Example: `- name: stage the new etcd binary while the member still runs
  swap:
    src: 'dist/etcd-{{ etcd_version }}'
    dest: /usr/local/bin/etcd
    mode: "0755"
    sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
    prepare: true
  ahead: true   # on the next host while the one before finishes
- stop: { service: etcd }
- name: install it (now a rename)
  swap:
    src: 'dist/etcd-{{ etcd_version }}'
    dest: /usr/local/bin/etcd
    mode: "0755"
    sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
- start: { service: etcd }
- name: put the old binary back
  swap: { restore: /usr/local/bin/etcd }`,
			Undo: `put the replaced file back from backup, or remove the file if the swap
created it (with prepare: remove the staged file); refuses when the file
changed since the swap, or when the backup no longer holds the replaced file.
A prepare step's undo removes the file it staged, unless a swap renamed it
into place already, and keeps the backup (a copy of, or a second link to,
the file still at dest).
A restore step has no undo.`,
		},
	})
}

// Module holds the swap module's arguments: src and dest (and prepare), or
// restore.
type Module struct {
	Src     string       `yaml:"src" doc:"file on the controller, relative to the runbook's folder, to install"`
	Dest    string       `yaml:"dest" doc:"absolute path of the file on the host to replace"`
	Mode    arg.FileMode `yaml:"mode" default:"<mode of the replaced file, else 0644>" doc:"permissions of the new file, in octal"`
	SHA256  string       `yaml:"sha256" doc:"sha256 of src in hex; the swap fails before touching dest when src differs"`
	Owner   string       `yaml:"owner" default:"<owner of the replaced file>" doc:"user that owns the new file"`
	Group   string       `yaml:"group" default:"<group of the replaced file>" doc:"group of the new file"`
	Backup  string       `yaml:"backup" default:"<dest>.runbook-prev" doc:"where the previous file is kept on the host"`
	Restore string       `yaml:"restore" doc:"put back the file that the last swap of this path kept at backup"`
	Prepare bool         `yaml:"prepare" doc:"stage src beside dest and keep dest at backup, but do not replace dest; a later swap only renames"`
}

// BackupSuffix is what the default backup path adds to dest.
const BackupSuffix = hostfile.BackupSuffix

// Defaults returns the arguments as Run sees them: backup defaults to the
// replaced path plus BackupSuffix. Mode, owner and group stay unset, because
// their defaults are read from the host.
func (m *Module) Defaults() *Module {
	d := modules.WithDefaults(m)
	if d.Backup == "" {
		if target := d.target(); target != "" {
			d.Backup = target + BackupSuffix
		}
	}
	return d
}

// target is the path on the host that the step replaces or restores.
func (m *Module) target() string {
	if m.Restore != "" {
		return m.Restore
	}
	return m.Dest
}

// Validate checks that exactly one form is given and that its paths and digest
// are well formed.
func (m *Module) Validate() error {
	if m.Restore != "" {
		if m.Prepare {
			return &modules.FieldError{Field: "prepare", Msg: "is not used with restore, which puts back the kept file and has nothing to stage; remove prepare, or give src and dest to prepare a swap"}
		}
		for _, f := range []struct {
			field string
			given bool
		}{
			{"src", m.Src != ""}, {"dest", m.Dest != ""}, {"mode", m.Mode != 0},
			{"sha256", m.SHA256 != ""}, {"owner", m.Owner != ""}, {"group", m.Group != ""},
		} {
			if f.given {
				return &modules.FieldError{Field: f.field, Msg: "is not used with restore, which puts back the kept file as it was; remove one of them"}
			}
		}
		if err := argcheck.AbsPath(m.Restore); err != nil {
			return &modules.FieldError{Field: "restore", Msg: err.Error()}
		}
	} else {
		switch {
		case m.Src == "" && m.Dest == "":
			return errors.New("nothing to swap; give src and dest, or restore")
		case m.Src == "":
			return &modules.FieldError{Field: "src", Msg: "is required with dest; give the file on the controller to install"}
		case m.Dest == "":
			return &modules.FieldError{Field: "dest", Msg: "is required with src; give the absolute path on the host to replace"}
		}
		if err := argcheck.AbsPath(m.Dest); err != nil {
			return &modules.FieldError{Field: "dest", Msg: err.Error()}
		}
		if err := checkSHA256(m.SHA256); err != nil {
			return &modules.FieldError{Field: "sha256", Msg: err.Error()}
		}
	}
	if m.Backup != "" {
		if err := argcheck.AbsPath(m.Backup); err != nil {
			return &modules.FieldError{Field: "backup", Msg: err.Error()}
		}
		if m.Backup == m.target() {
			return &modules.FieldError{Field: "backup", Msg: "is the file being replaced; keep the previous file elsewhere, or leave backup out for " + m.Backup + BackupSuffix}
		}
	}
	return nil
}

func checkSHA256(s string) error {
	if s == "" || argcheck.Templated(s) {
		return nil
	}
	if len(s) != 64 {
		return fmt.Errorf("has %d characters; a sha256 is 64 hex digits, as sha256sum prints it", len(s))
	}
	if _, err := hex.DecodeString(s); err != nil {
		return fmt.Errorf("%q is not hex; a sha256 is 64 hex digits, as sha256sum prints it", s)
	}
	return nil
}

var (
	_ modules.Validator = (*Module)(nil)
	_ modules.Undoer    = (*Module)(nil)
)
