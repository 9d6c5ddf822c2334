package pause

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/runbookhq/runbook/modules"
	"github.com/runbookhq/runbook/modules/arg"
	"github.com/runbookhq/runbook/modules/internal/modtest"
)

func TestValidateApprove(t *testing.T) {
	tests := []struct {
		name      string
		m         Module
		wantField string
		wantMsg   string
	}{
		{"defaults", Module{Approve: &Approve{}}, "", ""},
		{"two people, self, 30m", Module{Approve: &Approve{Required: 2, Self: true, Timeout: arg.Duration(30 * time.Minute)}}, "", ""},
		{"with for", Module{For: arg.Duration(time.Minute), Approve: &Approve{}}, "approve", "cannot go with for"},
		{"too many people", Module{Approve: &Approve{Required: 11}}, "approve.required", "must be from 1 to 10 people, got 11"},
		{"negative", Module{Approve: &Approve{Required: -1}}, "approve.required", "must be from 1 to 10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			modtest.Validate(t, &tt.m, tt.wantField, tt.wantMsg)
		})
	}
}

func TestRunApprove(t *testing.T) {
	rejected := fmt.Errorf("%w by bob on ctl-1: not tonight", modules.ErrRejected)
	tests := []struct {
		name     string
		yes      bool
		approve  modules.Approve // nil: no store
		wantErr  error
		wantMsg  string
		wantReq  modules.ApprovalRequest
		approved bool
	}{
		{name: "approved by two", approve: func(_ context.Context, req modules.ApprovalRequest) (modules.ApprovalOutcome, error) {
			return modules.ApprovalOutcome{Approvers: []string{"bob", "carol"}}, nil
		}, wantMsg: "approved by bob, carol", approved: true},
		{name: "--yes does not pass it", yes: true, approve: func(context.Context, modules.ApprovalRequest) (modules.ApprovalOutcome, error) {
			return modules.ApprovalOutcome{}, rejected
		}, wantErr: modules.ErrRejected, wantMsg: rejected.Error()},
		{name: "no store: refused, even with --yes", yes: true, wantMsg: "pause needs approvals"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got modules.ApprovalRequest
			h := &modules.Host{Name: "m3", Yes: tt.yes, Log: zerolog.Nop(),
				Confirm: func(context.Context, string) (bool, error) { t.Error("asked the terminal"); return true, nil }}
			if tt.approve != nil {
				h.Approve = func(ctx context.Context, req modules.ApprovalRequest) (modules.ApprovalOutcome, error) {
					got = req
					return tt.approve(ctx, req)
				}
			}
			m := &Module{Prompt: "go?", Approve: &Approve{Required: 2}}
			res, err := m.Run(context.Background(), h)
			if tt.approved != (err == nil) || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("Run = %v, want approved %v (%v)", err, tt.approved, tt.wantErr)
			}
			if msg := fmt.Sprint(res.Data["msg"]); err == nil && msg != tt.wantMsg || err != nil && !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("msg %q, error %v; want %q", msg, err, tt.wantMsg)
			}
			if res.Data["approved"] != tt.approved {
				t.Errorf("result.approved = %v", res.Data["approved"])
			}
			if tt.approve != nil && (got.Prompt != "go?" || got.Required != 2 || got.Timeout != DefaultApprovalTimeout || got.Self) {
				t.Errorf("request %+v", got)
			}
		})
	}
}
