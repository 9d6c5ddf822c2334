package hostfile

import (
	"crypto/rand"
	"encoding/hex"
	"strings"

	"github.com/runbookhq/runbook/modules"
	"github.com/runbookhq/runbook/modules/arg"
	"github.com/runbookhq/runbook/modules/internal/argcheck"
)

// Args are the arguments of a module that installs a file's content
// (template, copy), inlined in its own.
type Args struct {
	Dest        string       `yaml:"dest" runbook:"required" doc:"absolute path of the file on the host"`
	Mode        arg.FileMode `yaml:"mode" default:"<mode of the replaced file, else 0644>" doc:"permissions of the file, in octal"`
	Owner       string       `yaml:"owner" default:"<owner of the replaced file>" doc:"user that owns the file (another than the connecting user's needs become)"`
	Group       string       `yaml:"group" default:"<group of the replaced file>" doc:"group of the file"`
	Backup      string       `yaml:"backup" default:"<dest>.runbook-prev.RANDOM" doc:"where the replaced file is kept on the host, for the undo"`
	ValidateCmd arg.Argv     `yaml:"validate" doc:"command run on the staged file before it is installed, %s standing for its path (nginx -t -c %s); when it fails, dest is not touched"`
}

// Check validates the arguments.
func (a *Args) Check() error {
	if err := argcheck.AbsPath(a.Dest); err != nil {
		return &modules.FieldError{Field: "dest", Msg: err.Error()}
	}
	if a.Backup != "" {
		if err := argcheck.AbsPath(a.Backup); err != nil {
			return &modules.FieldError{Field: "backup", Msg: err.Error()}
		}
		if a.Backup == a.Dest {
			return &modules.FieldError{Field: "backup", Msg: "is dest itself; keep the replaced file elsewhere, or leave backup out for " + a.Dest + BackupSuffix}
		}
	}
	if len(a.ValidateCmd) > 0 && !strings.Contains(strings.Join(a.ValidateCmd, " "), "%s") {
		return &modules.FieldError{Field: "validate", Msg: "has no %s; write where the staged file's path goes, as Ansible's validate: 'nginx -t -c %s'"}
	}
	return nil
}

// Want is the file the arguments install, for module mod, whose content is
// of (for messages). Without a backup argument, each change keeps the file
// it replaces under a name of its own (dest.runbook-prev.RANDOM, recorded
// in the result): two steps that edit one file (two lineinfile) would
// otherwise keep their files at one path, and the undo of the first would
// find the original gone.
func (a *Args) Want(mod, of string) Want {
	backup := a.Backup
	if backup == "" {
		backup = a.Dest + BackupSuffix + "." + Random()
	}
	return Want{Mod: mod, Of: of, Dest: a.Dest, Backup: backup, Mode: a.Mode.Perm(), Owner: a.Owner, Group: a.Group, NoFollow: true}
}

// Random is a short random name part nobody can guess, so nobody can plant
// a link at that name ahead of the step.
func Random() string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand: " + err.Error())
	}
	return hex.EncodeToString(b)
}

// UndoPaths are the dest and backup to give Unredact for a result of Args:
// the step's own dest, and its backup, or the default backup with the
// random end of the recorded one (never a secret).
func (a *Args) UndoPaths(data map[string]any) map[string]string {
	backup := a.Backup
	if backup == "" {
		rec, _ := data["backup"].(string)
		const mark = BackupSuffix + "."
		if i := strings.LastIndex(rec, mark); i >= 0 && !strings.ContainsAny(rec[i+len(mark):], "/<") {
			backup = a.Dest + mark + rec[i+len(mark):]
		}
	}
	return map[string]string{"dest": a.Dest, "backup": backup}
}
