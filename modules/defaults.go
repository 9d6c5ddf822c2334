package modules

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/runbookhq/runbook/modules/arg"
)

// WithDefaults returns a copy of args, a pointer to a module's argument struct, in
// which every unset argument with a literal `default` tag holds that default.
// Sections that are present are copied too, so args itself never changes.
func WithDefaults[T any](args *T) *T {
	out := new(T)
	*out = *args
	if err := fillDefaults(reflect.ValueOf(out).Elem(), false); err != nil {
		// Register has parsed every tag of a registered module, so this is a
		// struct that was never registered: a programming error.
		panic("modules: " + err.Error())
	}
	return out
}

// IsComputedDefault reports whether a `default` tag documents a default that the
// module computes itself: one with a part in angle brackets, which stands for
// another argument or a fact of the host ("<dest>.runbook-prev").
func IsComputedDefault(tag string) bool {
	i := strings.Index(tag, "<")
	return i >= 0 && strings.Contains(tag[i:], ">")
}

// checkArgs checks what Register can check of an argument struct: that it is a
// pointer to a struct and that every literal default parses as its field's type.
func checkArgs(m Module) error {
	v := reflect.ValueOf(m)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("New returns %T, want a pointer to an argument struct", m)
	}
	// Fill a fresh value with every section allocated, so that no tag goes unparsed.
	return fillDefaults(reflect.New(v.Elem().Type()).Elem(), true)
}

var (
	durationType = reflect.TypeFor[arg.Duration]()
	fileModeType = reflect.TypeFor[arg.FileMode]()
	exprType     = reflect.TypeFor[arg.Expr]()
	quotaType    = reflect.TypeFor[arg.Quota]()
)

// isSection reports whether t is a pointer to a struct of arguments, as opposed to
// a typed value that the loader decodes as one (arg.Expr, arg.Quota).
func isSection(t reflect.Type) bool {
	return t.Kind() == reflect.Pointer && isArgStruct(t.Elem())
}

func isArgStruct(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && t != exprType && t != quotaType
}

func fillDefaults(v reflect.Value, allocate bool) error {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		fv := v.Field(i)
		switch {
		case isSection(f.Type):
			if fv.IsNil() && !allocate {
				continue
			}
			cp := reflect.New(f.Type.Elem())
			if !fv.IsNil() {
				cp.Elem().Set(fv.Elem())
			}
			fv.Set(cp)
			if err := fillDefaults(cp.Elem(), allocate); err != nil {
				return err
			}
			continue
		case isArgStruct(f.Type):
			if err := fillDefaults(fv, allocate); err != nil {
				return err
			}
			continue
		}
		tag, ok := f.Tag.Lookup("default")
		if !ok || IsComputedDefault(tag) || !fv.IsZero() {
			continue
		}
		if err := setDefault(fv, tag); err != nil {
			return fmt.Errorf("%s.%s: default %q: %w", t.Name(), f.Name, tag, err)
		}
	}
	return nil
}

func setDefault(v reflect.Value, tag string) error {
	switch v.Type() {
	case exprType:
		// Expressions are compiled by the loader with the step's scope; the module
		// evaluates its documented default itself when the field is empty.
		return nil
	case durationType:
		d, err := time.ParseDuration(tag)
		if err != nil {
			return err
		}
		if d <= 0 {
			return errors.New("a duration default must be positive")
		}
		v.SetInt(int64(d))
		return nil
	case fileModeType:
		m, err := strconv.ParseUint(tag, 8, 32)
		if err != nil {
			return fmt.Errorf("want an octal mode such as 0644: %w", err)
		}
		v.SetUint(m)
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(tag)
	case reflect.Bool:
		b, err := strconv.ParseBool(tag)
		if err != nil {
			return err
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(tag, 10, v.Type().Bits())
		if err != nil {
			return err
		}
		v.SetInt(n)
	case reflect.Slice:
		// A list of ints (check's http.status) defaults to a comma-separated list.
		ek := v.Type().Elem().Kind()
		if ek < reflect.Int || ek > reflect.Int64 {
			return fmt.Errorf("no literal default for %s; write it in angle brackets and apply it in the module", v.Type())
		}
		parts := strings.Split(tag, ",")
		s := reflect.MakeSlice(v.Type(), len(parts), len(parts))
		for i, p := range parts {
			n, err := strconv.ParseInt(strings.TrimSpace(p), 10, v.Type().Elem().Bits())
			if err != nil {
				return err
			}
			s.Index(i).SetInt(n)
		}
		v.Set(s)
	default:
		return fmt.Errorf("no literal default for %s; write it in angle brackets and apply it in the module", v.Type())
	}
	return nil
}
