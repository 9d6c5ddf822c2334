package pause

import (
	"testing"
	"time"

	"github.com/runbookhq/runbook/internal/spec"
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
		{"for with a message", Module{For: spec.Duration(2 * time.Minute), Prompt: "soaking"}, "", ""},
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
