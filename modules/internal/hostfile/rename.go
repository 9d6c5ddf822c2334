package hostfile

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/runbookhq/runbook/internal/conn"
	"github.com/runbookhq/runbook/modules"
)

// renameScript does what Rename does in three commands (OwnFile's stat, mv,
// sync) in one: inside a service's outage each command is a round trip, a
// fork and an exec on the host, and they were most of the swap's time. The
// paths are the script's arguments, never part of its text, so no path can
// become shell syntax. Each outcome has its own exit code, none of them one
// that sudo (1) or a missing sh (126, 127) gives:
//
//	3  the staged file is missing
//	4  it is there but not a regular file (a link, even a dangling one, or a folder)
//	5  mv failed; its message is on stderr
//	6  sync failed; the rename is made
//
// The link test comes first: test -e and -f follow a link, -L does not.
const renameScript = `stage=$1 dest=$2 dir=$3
if [ -L "$stage" ]; then exit 4; fi
if [ ! -e "$stage" ]; then exit 3; fi
if [ ! -f "$stage" ]; then exit 4; fi
mv -f -- "$stage" "$dest" || exit 5
sync -- "$dest" "$dir" || exit 6
`

// Exit codes of renameScript.
const (
	renameMissing    = 3
	renameNotRegular = 4
	renameMvFailed   = 5
	renameSyncFailed = 6
)

// RenameCmd is the argv of the one command RenameAtOnce runs: tests that
// answer commands from a fake host recognise it by it.
func RenameCmd(stage, dest string) []string {
	return []string{"sh", "-c", renameScript, "sh", stage, dest, path.Dir(dest)}
}

// IsRenameCmd reports whether argv is a RenameCmd, and returns its stage
// and dest.
func IsRenameCmd(argv []string) (stage, dest string, ok bool) {
	if len(argv) != 7 || argv[0] != "sh" || argv[1] != "-c" || argv[2] != renameScript || argv[3] != "sh" || argv[6] != path.Dir(argv[5]) {
		return "", "", false
	}
	return argv[4], argv[5], true
}

// RenameAtOnce is Rename in one command: it checks, without following a
// link, that stage is still a regular file (with OwnFile's errors), renames
// it over dest and makes the rename durable. As with Rename, a failed
// rename removes stage, and a failed sync is only logged.
//
// One thing differs: a connection lost during the command leaves unknown
// whether dest was replaced, where Rename's loss during its last command
// (the sync) left it known. The error says the connection was lost; a
// re-run finds dest with the new content and changes nothing.
func RenameAtOnce(ctx context.Context, h *modules.Host, stage, dest string) error {
	dir := path.Dir(dest)
	out, err := Run(ctx, h, RenameCmd(stage, dest)...)
	var ee *conn.ExitError
	if err == nil {
		return nil
	}
	if !errors.As(err, &ee) {
		RemoveTemp(h, stage, true)
		return fmt.Errorf("renaming %s to %s: %w", stage, dest, err)
	}
	switch ee.ExitCode {
	case renameMissing:
		return errStageMissing(stage)
	case renameNotRegular:
		return errStageNotRegular(stage)
	case renameSyncFailed:
		warnSync(h, stepErr("sync -- "+dest+" "+dir, out.Stderr), []string{dest, dir})
		return nil
	case renameMvFailed:
		RemoveTemp(h, stage, true)
		return fmt.Errorf("renaming %s to %s: %w", stage, dest, stepErr(conn.QuoteArgv([]string{"mv", "-f", "--", stage, dest}), out.Stderr))
	}
	// sudo refused, or no sh: the script may not have run at all. The
	// error names it in short, not by its whole text.
	RemoveTemp(h, stage, true)
	return fmt.Errorf("renaming %s to %s: %w", stage, dest, &conn.ExitError{Cmd: "sh -c <rename script>", ExitCode: ee.ExitCode, Stderr: ee.Stderr})
}

// stepErr is the error of one command of renameScript, named by what it
// ran, with its message: the script's own exit code says only which one
// failed.
func stepErr(what string, stderr []byte) error {
	msg := lastLine(strings.TrimSpace(string(stderr)))
	if msg == "" {
		return errors.New(what + " failed")
	}
	return errors.New(what + " failed: " + msg)
}
