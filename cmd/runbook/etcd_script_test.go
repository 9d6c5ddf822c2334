package main

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

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
			"etcdlab":    etcdLab,
		},
	})
}

// etcdlab start NAME starts a one-member etcd of the script's own and sets
// $NAME_HOSTS to its members as a --state URL names them; etcdlab stop NAME
// stops it (its data stays), etcdlab restart NAME starts it again. The lab
// is closed when the script ends.
func etcdLab(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: etcdlab start|stop|restart NAME")
	}
	key := "etcdlab:" + args[1]
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	switch args[0] {
	case "start":
		c, err := etcdlab.Start(ctx, etcdlab.Options{Version: "3.6.16", Members: 1})
		if err != nil {
			ts.Fatalf("etcdlab: %v", err)
		}
		ts.Defer(func() { c.Close() })
		labs.Store(ts, key, c)
		ts.Setenv(strings.ToUpper(args[1])+"_HOSTS", strings.ReplaceAll(strings.Join(c.Endpoints(), ","), "http://", ""))
	case "stop", "restart":
		c := labs.Load(ts, key)
		if c == nil {
			ts.Fatalf("etcdlab: no lab %s started", args[1])
		}
		var err error
		if args[0] == "stop" {
			err = c.Stop(c.Members[0].Name)
		} else {
			err = c.Restart(ctx, c.Members[0].Name)
		}
		if err != nil {
			ts.Fatalf("etcdlab: %v", err)
		}
	default:
		ts.Fatalf("usage: etcdlab start|stop|restart NAME")
	}
}

// labs are the scripts' own labs, by script and name.
var labs = labMap{m: map[*testscript.TestScript]map[string]*etcdlab.Cluster{}}

type labMap struct {
	mu sync.Mutex
	m  map[*testscript.TestScript]map[string]*etcdlab.Cluster
}

func (l *labMap) Store(ts *testscript.TestScript, key string, c *etcdlab.Cluster) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m[ts] == nil {
		l.m[ts] = map[string]*etcdlab.Cluster{}
	}
	l.m[ts][key] = c
}

func (l *labMap) Load(ts *testscript.TestScript, key string) *etcdlab.Cluster {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.m[ts][key]
}
