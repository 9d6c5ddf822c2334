package analysis

import (
	"errors"
	"testing"
)

func TestJudge(t *testing.T) {
	tests := []struct {
		name             string
		hasS, s, hasF, f bool
		want             Verdict
	}{
		{"both hold: failure wins", true, true, true, true, Failed},
		{"success only holds", true, true, true, false, Successful},
		{"failure only holds", true, false, true, true, Failed},
		{"neither holds", true, false, true, false, Inconclusive},
		{"only success given, holds", true, true, false, false, Successful},
		{"only success given, missed: a failure", true, false, false, false, Failed},
		{"only failure given, holds", false, false, true, true, Failed},
		{"only failure given, missed: a success", false, false, true, false, Successful},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := judge(tt.hasS, tt.s, tt.hasF, tt.f); got != tt.want {
				t.Errorf("judge = %s, want %s", got, tt.want)
			}
		})
	}
}

// TestStateMachine feeds verdicts to one metric and checks where it ends
// and after how many measurements: Failed, Error and Inconclusive end it
// at once (fail fast); only the count of measurements taken without an
// error ends it Successful.
func TestStateMachine(t *testing.T) {
	S, F, I, E := Successful, Failed, Inconclusive, Errored
	tests := []struct {
		name                            string
		failureLimit, inconclusiveLimit int
		errorLimit                      int
		count                           int
		verdicts                        []Verdict
		want                            Phase
		taken                           int // measurements recorded when it ended
	}{
		{"all successful", 0, 0, 4, 3, []Verdict{S, S, S}, PhaseSuccessful, 3},
		{"one failure over limit 0 fails fast", 0, 0, 4, 6, []Verdict{S, F, S, S, S, S}, PhaseFailed, 2},
		{"failures within limit", 1, 0, 4, 4, []Verdict{F, S, S, S}, PhaseSuccessful, 4},
		{"failures over limit 1", 1, 0, 4, 6, []Verdict{F, S, F, S, S, S}, PhaseFailed, 3},
		{"inconclusive within limit", 0, 1, 4, 3, []Verdict{I, S, S}, PhaseSuccessful, 3},
		{"inconclusive over limit", 0, 1, 4, 5, []Verdict{I, S, I, S, S}, PhaseInconclusive, 3},
		{"errors in a row up to the limit pass", 0, 0, 2, 4, []Verdict{E, E, S, S, S, S}, PhaseSuccessful, 6},
		{"errors in a row over the limit", 0, 0, 2, 6, []Verdict{S, E, E, E, S, S}, PhaseError, 4},
		{"a measurement resets the error streak", 0, 0, 2, 3, []Verdict{E, E, S, E, E, S, S}, PhaseSuccessful, 7},
		{"error limit 0: the first error", 0, 0, 0, 3, []Verdict{S, E, S}, PhaseError, 2},
		{"errors are not failures", 0, 0, 4, 3, []Verdict{E, S, E, S, S}, PhaseSuccessful, 5},
		// As in Argo Rollouts, an error is recorded but does not count
		// towards count: errors cannot make up a successful analysis.
		{"errors do not count towards count", 0, 0, 4, 2, []Verdict{E, E, E, E}, Running, 4},
		{"errors only: Error, never Successful", 0, 0, 4, 2, []Verdict{E, E, E, E, E, S, S}, PhaseError, 5},
		{"the count reached with errors between", 0, 0, 4, 2, []Verdict{S, E, E, S}, PhaseSuccessful, 4},
		{"errors after a measurement: Error before the count", 0, 0, 3, 4, []Verdict{S, E, E, E, E}, PhaseError, 5},
		{"the count is of measurements taken", 0, 0, 3, 3, []Verdict{S, E, S, E, E, S}, PhaseSuccessful, 6},
		{"failure over inconclusive at once", 0, 0, 4, 3, []Verdict{F}, PhaseFailed, 1},
		{"count 0 keeps running", 0, 0, 4, 0, []Verdict{S, S, S, S, S}, Running, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			el := tt.errorLimit
			m := &Metric{Name: "m", FailureLimit: tt.failureLimit, InconclusiveLimit: tt.inconclusiveLimit, ConsecutiveErrorLimit: &el}
			s := newState(m, tt.count)
			for _, v := range tt.verdicts {
				if s.add(Measurement{Verdict: v}) != Running {
					break
				}
			}
			if s.phase != tt.want || len(s.measurements) != tt.taken {
				t.Errorf("phase %s after %d measurements, want %s after %d (%s)", s.phase, len(s.measurements), tt.want, tt.taken, s.reason)
			}
			if s.add(Measurement{Verdict: S}) != s.phase || (s.phase != Running && len(s.measurements) != tt.taken) {
				t.Error("a decided metric took another measurement")
			}
		})
	}
}

func TestDefaultErrorLimit(t *testing.T) {
	if got := (&Metric{}).errorLimit(); got != 4 {
		t.Errorf("default consecutive_error_limit = %d, want 4 as in Argo Rollouts", got)
	}
}

func TestWorse(t *testing.T) {
	if worse(PhaseInconclusive, PhaseFailed) != PhaseFailed || worse(PhaseError, PhaseInconclusive) != PhaseError ||
		worse(PhaseFailed, PhaseError) != PhaseFailed || worse(PhaseSuccessful, Running) != Running {
		t.Error("phases are not ordered Failed > Error > Inconclusive > Running > Successful")
	}
}

// TestTimeUp ends a metric measured for a time: Successful within its
// limits, Error when no measurement could be taken at all.
func TestTimeUp(t *testing.T) {
	m := &Metric{Name: "m"}
	s := newState(m, 0)
	s.add(Measurement{Verdict: Errored})
	s.add(Measurement{Verdict: Successful})
	s.timeUp()
	if s.phase != PhaseSuccessful || s.reason != "m successful: 1 of 1 measurement (and 1 error)" {
		t.Errorf("phase %s (%s), want Successful", s.phase, s.reason)
	}
	s = newState(m, 0)
	s.add(Measurement{Verdict: Errored, Err: errors.New("connection refused")})
	s.timeUp()
	if s.phase != PhaseError || s.reason != "m could not be measured: 1 error and no measurement before the time was up; last: connection refused" {
		t.Errorf("phase %s (%s), want Error", s.phase, s.reason)
	}
}
