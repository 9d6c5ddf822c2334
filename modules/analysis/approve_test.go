package analysis

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/runbookhq/runbook/modules"
	"github.com/runbookhq/runbook/modules/arg"
)

// TestInconclusiveApproval: with approve:, an inconclusive analysis waits
// for other people; the terminal and --yes play no part, a rejection is
// modules.ErrRejected (the run stops, the host rolls back), and a run with
// no store to wait on holds (exit 3).
func TestInconclusiveApproval(t *testing.T) {
	approved := func(_ context.Context, req modules.ApprovalRequest) (modules.ApprovalOutcome, error) {
		return modules.ApprovalOutcome{Approvers: []string{"bob"}, Data: map[string]any{"approvals": []any{"bob"}}}, nil
	}
	rejected := func(context.Context, modules.ApprovalRequest) (modules.ApprovalOutcome, error) {
		return modules.ApprovalOutcome{Data: map[string]any{"rejected_by": "carol"}}, fmt.Errorf("%w by carol on ctl: not tonight", modules.ErrRejected)
	}
	tests := []struct {
		name     string
		approve  modules.Approve
		wantErr  string
		rejected bool
		hold     bool
		wantData map[string]any
	}{
		{name: "approved: goes on as if it passed", approve: approved,
			wantData: map[string]any{"approved": true, "required": 1}},
		{name: "rejected: a rejection", approve: rejected, rejected: true,
			wantErr:  "analysis inconclusive (on_inconclusive: pause): rejected by carol on ctl: not tonight",
			wantData: map[string]any{"approved": false, "rejected_by": "carol"}},
		{name: "no approval store: held", hold: true, wantErr: "no approval store to wait on"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := &fakeQuerier{answers: map[string][]float64{"q": {0.03}}}
			m := &Module{Prometheus: "http://127.0.0.1:9", Count: 3, clock: newFakeClock(), querier: q,
				Approve: &Approve{Self: true, Timeout: arg.Duration(30 * time.Minute)},
				Metrics: []Metric{{Name: "error-rate", Query: "q", Success: cond(t, "success", "result < 0.01"), Failure: cond(t, "failure", "result > 0.05")}}}
			if err := m.Validate(); err != nil {
				t.Fatal(err)
			}
			h := testHost()
			h.Yes = true
			h.Confirm = func(context.Context, string) (bool, error) {
				t.Error("asked the terminal; approve: waits for approvals only")
				return true, nil
			}
			var asked []modules.ApprovalRequest
			if tt.approve != nil {
				h.Approve = func(ctx context.Context, req modules.ApprovalRequest) (modules.ApprovalOutcome, error) {
					asked = append(asked, req)
					return tt.approve(ctx, req)
				}
			}
			res, err := m.Run(context.Background(), h)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("error = %v, want %q", err, tt.wantErr)
			}
			if errors.Is(err, modules.ErrRejected) != tt.rejected {
				t.Errorf("rejected = %v, want %v", errors.Is(err, modules.ErrRejected), tt.rejected)
			}
			var he *modules.HoldError
			if errors.As(err, &he) != tt.hold {
				t.Errorf("held = %v, want %v", errors.As(err, &he), tt.hold)
			}
			if res.Data["phase"] != string(PhaseInconclusive) {
				t.Errorf("phase = %v", res.Data["phase"])
			}
			for k, v := range tt.wantData {
				if fmt.Sprint(res.Data[k]) != fmt.Sprint(v) {
					t.Errorf("data[%s] = %v, want %v", k, res.Data[k], v)
				}
			}
			if tt.approve == nil {
				return
			}
			if len(asked) != 1 {
				t.Fatalf("asked %d times for approval, want once", len(asked))
			}
			req := asked[0]
			if req.Required != 1 || !req.Self || req.Timeout != 30*time.Minute || !strings.Contains(req.Prompt, "error-rate is inconclusive") {
				t.Errorf("request = %+v", req)
			}
		})
	}
}

func TestValidateApprove(t *testing.T) {
	base := func() *Module {
		return &Module{Prometheus: "http://127.0.0.1:9090", Approve: &Approve{},
			Metrics: []Metric{{Name: "m", Query: "up", Success: arg.Expr{Src: "result == 1"}}}}
	}
	tests := []struct {
		name string
		f    func(*Module)
		want string
	}{
		{"default on_inconclusive is pause", func(*Module) {}, ""},
		{"pause", func(m *Module) { m.OnInconclusive = "pause" }, ""},
		{"fail", func(m *Module) { m.OnInconclusive = "fail" }, "approve: is waited for when on_inconclusive is pause, and it is fail"},
		{"continue", func(m *Module) { m.OnInconclusive = "continue" }, "remove approve or set on_inconclusive: pause"},
		{"too many people", func(m *Module) { m.Approve.Required = 11 }, "approve.required: must be from 1 to 10 people, got 11"},
		{"negative timeout", func(m *Module) { m.Approve.Timeout = -1 }, "approve.timeout: must be a positive duration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := base()
			tt.f(m)
			err := m.Validate()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("Validate() = %v, want %q", err, tt.want)
			}
		})
	}
	// The defaults: one approval within an hour.
	req := (&Approve{}).Request("p")
	if req.Required != 1 || req.Timeout != time.Hour || req.Self {
		t.Errorf("default request = %+v", req)
	}
}
