// Package arg holds what a module needs to declare and decode its arguments:
// the value types of arguments (Duration, Argv, Expr, ...), the strict YAML
// node Decoder that fills argument structs by their `yaml` tags, and the
// NodeDecoder interface of types that decode themselves.
//
// It is a leaf: the runbook loader (internal/spec) and the modules both import
// it, and it imports neither, so a module never depends on the loader. It walks
// yaml.Node itself, which is why it imports gopkg.in/yaml.v3.
package arg
