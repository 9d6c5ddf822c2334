package pause

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/runbookhq/runbook/modules"
	"github.com/runbookhq/runbook/modules/arg"
	"github.com/runbookhq/runbook/modules/internal/modtest"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name      string
		m         Module
		wantField string
		wantMsg   string
	}{
		{"nothing: ask the default question", Module{}, "", ""},
		{"prompt", Module{Prompt: "Canary upgraded; dashboards green?"}, "", ""},
		{"for with a message", Module{For: arg.Duration(2 * time.Minute), Prompt: "soaking"}, "", ""},
		{"blank prompt", Module{Prompt: " \n"}, "prompt", "is blank"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			modtest.Validate(t, &tt.m, tt.wantField, tt.wantMsg)
		})
	}
}

func TestDefaults(t *testing.T) {
	if got := (&Module{}).Defaults(); got.Prompt != "Continue?" || got.For != 0 {
		t.Errorf("Defaults = %+v, want the default prompt and no time", *got)
	}
}

func TestRun(t *testing.T) {
	errAsk := errors.New("terminal closed")
	tests := []struct {
		name     string
		m        Module
		yes      bool
		answer   func(context.Context, string) (bool, error) // nil: no terminal
		wantErr  string
		wantData map[string]any
		wantAsks int
	}{
		{"--yes passes without asking", Module{}, true, asker(true, nil), "",
			map[string]any{"confirmed": true, "msg": "confirmed by --yes"}, 0},
		{"the operator confirms", Module{Prompt: "Canary green?"}, false, asker(true, nil), "",
			map[string]any{"confirmed": true, "msg": "confirmed by the operator", "prompt": "Canary green?"}, 1},
		{"the operator refuses", Module{Prompt: "Canary green?"}, false, asker(false, nil), `the operator did not confirm "Canary green?"`,
			map[string]any{"confirmed": false}, 1},
		{"asking fails", Module{}, false, asker(false, errAsk), `pause: asking "Continue?": terminal closed`, nil, 1},
		{"no terminal and no --yes", Module{}, false, nil, `pause needs confirmation: run on a terminal or pass --yes (it asks "Continue?")`, nil, 0},
		{"for does not ask", Module{For: arg.Duration(20 * time.Millisecond), Prompt: "soaking"}, false, nil, "",
			map[string]any{"paused": "20ms", "prompt": "soaking"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			asks := 0
			h := &modules.Host{Name: "etcd-1", Yes: tt.yes, Log: zerolog.Nop()}
			if tt.answer != nil {
				answer := tt.answer
				h.Confirm = func(ctx context.Context, prompt string) (bool, error) {
					asks++
					return answer(ctx, prompt)
				}
			}
			res, err := tt.m.Run(context.Background(), h)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Run: %v", err)
			case tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr):
				t.Fatalf("Run = %v, want %q", err, tt.wantErr)
			}
			if tt.name == "asking fails" && !errors.Is(err, errAsk) {
				t.Errorf("err does not wrap the asker's")
			}
			for k, v := range tt.wantData {
				if res.Data[k] != v {
					t.Errorf("result.%s = %#v, want %#v", k, res.Data[k], v)
				}
			}
			if asks != tt.wantAsks || res.Changed {
				t.Errorf("asked %d times (want %d), changed %v", asks, tt.wantAsks, res.Changed)
			}
		})
	}
}

func asker(ok bool, err error) func(context.Context, string) (bool, error) {
	return func(context.Context, string) (bool, error) { return ok, err }
}

func TestRunCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := (&Module{For: arg.Duration(time.Hour)}).Run(ctx, &modules.Host{Log: zerolog.Nop()})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Run on a cancelled context = %v", err)
	}
}

// TestCheck: --check neither asks nor waits, whatever the host allows.
func TestCheck(t *testing.T) {
	h := &modules.Host{Confirm: func(context.Context, string) (bool, error) {
		t.Error("Check asked the operator")
		return false, nil
	}, Log: zerolog.Nop()}
	for _, tt := range []struct {
		m    Module
		want string
	}{{Module{Prompt: "Go?"}, `would ask "Go?"`}, {Module{For: arg.Duration(time.Hour)}, "would pause 3600s"}} {
		res, err := tt.m.Check(context.Background(), h)
		if err != nil || res.Changed || res.Data["msg"] != tt.want {
			t.Errorf("Check(%+v) = %+v, %v; want msg %q", tt.m, res, err, tt.want)
		}
	}
}
