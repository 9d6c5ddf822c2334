package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/runbookhq/runbook/internal/etcdlab"
)

// TestScriptsEtcd runs the scripts that need a real etcd (the run lock's etcd
// store) against a one-member lab; $ETCD holds its client URLs.
func TestScriptsEtcd(t *testing.T) {
	lab := etcdlab.New(t, etcdlab.Options{Version: "3.6.16", Members: 1})
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script-etcd",
		UpdateScripts:       *update,
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			env.Setenv("REPO", root)
			env.Setenv("ETCD", strings.Join(lab.Endpoints(), ","))
			// The members as a --state etcd:// URL names them.
			env.Setenv("ETCD_HOSTS", strings.ReplaceAll(strings.Join(lab.Endpoints(), ","), "http://", ""))
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exits":      exits,
			"waitevent":  waitEvent,
			"countlines": countLines,
		},
	})
}
