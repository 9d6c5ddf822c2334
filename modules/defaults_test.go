package modules

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/runbookhq/runbook/modules/arg"
)

type inner struct {
	Method string       `yaml:"method" default:"GET"`
	Wait   arg.Duration `yaml:"wait" default:"10s"`
}

type sample struct {
	Name    string       `yaml:"name" default:"etcd"`
	Count   int          `yaml:"count" default:"3"`
	On      bool         `yaml:"on" default:"true"`
	Wait    arg.Duration `yaml:"wait" default:"1m30s"`
	Mode    arg.FileMode `yaml:"mode" default:"0755"`
	Codes   []int        `yaml:"codes" default:"200, 204"`
	Backup  string       `yaml:"backup" default:"<dest>.prev"`
	Expect  arg.Expr     `yaml:"expect" default:"result.rc == 0"`
	Plain   string       `yaml:"plain"`
	Section *inner       `yaml:"section"`
	Absent  *inner       `yaml:"absent"`
}

func (*sample) Run(context.Context, *Host) (Result, error) { return Result{}, nil }

func TestWithDefaults(t *testing.T) {
	given := &sample{Name: "given", Section: &inner{Method: "POST"}}
	got := WithDefaults(given)

	want := sample{
		Name: "given", Count: 3, On: true,
		Wait:    arg.Duration(90 * time.Second),
		Mode:    0o755,
		Codes:   []int{200, 204},
		Section: &inner{Method: "POST", Wait: arg.Duration(10 * time.Second)},
	}
	if got.Name != want.Name || got.Count != want.Count || got.On != want.On ||
		got.Wait != want.Wait || got.Mode != want.Mode || len(got.Codes) != 2 ||
		got.Codes[0] != 200 || got.Codes[1] != 204 {
		t.Errorf("WithDefaults = %+v, want %+v", *got, want)
	}
	if got.Backup != "" {
		t.Errorf("computed default was applied: backup = %q", got.Backup)
	}
	if got.Expect.Src != "" {
		t.Errorf("expression default was applied: expect = %q", got.Expect.Src)
	}
	if got.Plain != "" {
		t.Errorf("field without default changed: %q", got.Plain)
	}
	if *got.Section != *want.Section {
		t.Errorf("section = %+v, want %+v", *got.Section, *want.Section)
	}
	if got.Absent != nil {
		t.Errorf("absent section was allocated: %+v", got.Absent)
	}
	// The decoded value keeps what the step wrote.
	if given.Count != 0 || given.Section.Wait != 0 || given.Section == got.Section {
		t.Errorf("WithDefaults changed its argument: %+v section %+v", *given, *given.Section)
	}
}

type badDuration struct {
	Wait arg.Duration `yaml:"wait" default:"60"`
}

func (*badDuration) Run(context.Context, *Host) (Result, error) { return Result{}, nil }

type badNested struct {
	Section *struct {
		Mode arg.FileMode `yaml:"mode" default:"0999"`
	} `yaml:"section"`
}

func (*badNested) Run(context.Context, *Host) (Result, error) { return Result{}, nil }

type badArgv struct {
	Cmd arg.Argv `yaml:"cmd" default:"true"`
}

func (*badArgv) Run(context.Context, *Host) (Result, error) { return Result{}, nil }

type zeroDuration struct {
	Wait arg.Duration `yaml:"wait" default:"0s"`
}

func (*zeroDuration) Run(context.Context, *Host) (Result, error) { return Result{}, nil }

type computedArgv struct {
	Cmd arg.Argv `yaml:"cmd" default:"<the start command>"`
}

func (*computedArgv) Run(context.Context, *Host) (Result, error) { return Result{}, nil }

type valueModule struct{}

func (valueModule) Run(context.Context, *Host) (Result, error) { return Result{}, nil }

func TestRegisterChecksArgs(t *testing.T) {
	tests := []struct {
		name    string
		new     func() Module
		wantErr string // "" means Register accepts it
	}{
		{"good", func() Module { return new(sample) }, ""},
		{"computed default on any type", func() Module { return new(computedArgv) }, ""},
		{"duration without unit", func() Module { return new(badDuration) }, `Wait: default "60"`},
		{"zero duration", func() Module { return new(zeroDuration) }, "must be positive"},
		{"bad mode inside a nil section", func() Module { return new(badNested) }, `Mode: default "0999"`},
		{"default on a command", func() Module { return new(badArgv) }, "no literal default for arg.Argv"},
		{"not a pointer", func() Module { return valueModule{} }, "want a pointer to an argument struct"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got string
			func() {
				defer func() {
					if r := recover(); r != nil {
						got = r.(string)
					}
				}()
				(&Registry{}).Register(Info{Name: "x", New: tt.new})
			}()
			switch {
			case tt.wantErr == "" && got != "":
				t.Fatalf("Register panicked: %s", got)
			case tt.wantErr != "" && !strings.Contains(got, tt.wantErr):
				t.Fatalf("Register panic = %q, want it to contain %q", got, tt.wantErr)
			}
		})
	}
}
