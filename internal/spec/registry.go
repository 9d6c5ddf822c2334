package spec

// Registry is what the loader needs from the module registry: fresh argument
// values to decode into, and the names for suggestions. modules.Registry
// implements it; the loader never imports a module.
type Registry interface {
	// NewArgs returns a pointer to a fresh, zero argument struct for the module.
	// It may implement modules.Validator (Validate() error).
	NewArgs(name string) (any, bool)
	// Names returns the registered module names, sorted.
	Names() []string
}
