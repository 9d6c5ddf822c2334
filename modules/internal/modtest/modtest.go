// Package modtest holds what the modules' tests share: a table-test check of
// Validate that also proves Validate repeatable and free of side effects.
package modtest

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/runbookhq/runbook/modules"
)

// Validate runs m.Validate twice and fails t unless both calls agree, the
// arguments are left exactly as decoded, and the error matches: none when
// wantField and wantMsg are empty; a *modules.FieldError on wantField whose
// message contains wantMsg; or, with wantField empty, a plain error (about the
// arguments as a whole) containing wantMsg.
func Validate[T any, P interface {
	*T
	modules.Validator
}](t testing.TB, m P, wantField, wantMsg string) {
	t.Helper()
	before := clone(m)
	err := m.Validate()
	if again := m.Validate(); errString(again) != errString(err) {
		t.Errorf("second Validate = %v, first = %v", again, err)
	}
	if !reflect.DeepEqual(before, *m) {
		t.Errorf("Validate changed the arguments:\nbefore %+v\nafter  %+v", before, *m)
	}
	var fe *modules.FieldError
	isField := errors.As(err, &fe)
	switch {
	case wantField == "" && wantMsg == "":
		if err != nil {
			t.Errorf("Validate = %v, want nil", err)
		}
	case err == nil:
		t.Errorf("Validate = nil, want an error on %q containing %q", wantField, wantMsg)
	case wantField == "":
		if isField || !strings.Contains(err.Error(), wantMsg) {
			t.Errorf("Validate = %#v, want a plain error containing %q", err, wantMsg)
		}
	case !isField || fe.Field != wantField || !strings.Contains(fe.Msg, wantMsg):
		t.Errorf("Validate = %v, want a FieldError on %s containing %q", err, wantField, wantMsg)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// clone copies *m and the sections it points to, so that a change Validate made
// inside a section would show.
func clone[T any](m *T) T {
	c := *m
	deepen(reflect.ValueOf(&c).Elem())
	return c
}

// deepen replaces every pointer to a struct inside the struct v by a pointer to
// a copy, down through inline structs.
func deepen(v reflect.Value) {
	for i := range v.NumField() {
		f := v.Field(i)
		switch {
		case !f.CanSet():
		case f.Kind() == reflect.Struct:
			deepen(f)
		case f.Kind() == reflect.Pointer && !f.IsNil() && f.Type().Elem().Kind() == reflect.Struct:
			cp := reflect.New(f.Type().Elem())
			cp.Elem().Set(f.Elem())
			deepen(cp.Elem())
			f.Set(cp)
		}
	}
}
