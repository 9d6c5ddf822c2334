package plan

import "slices"

// Selected reports whether a step with tags runs under --tags only and
// --skip-tags skip, as Ansible decides it: skip-tags win; `always` runs unless
// skipped by name; `never` runs only when one of its tags is asked for by
// name; `all` (the default) is every step but `never` ones; `tagged` and
// `untagged` select by whether a step has tags.
func Selected(tags, only, skip []string) bool {
	if len(skip) > 0 {
		for _, t := range tags {
			if slices.Contains(skip, t) {
				return false
			}
		}
		if slices.Contains(skip, "tagged") && len(tags) > 0 || slices.Contains(skip, "untagged") && len(tags) == 0 {
			return false
		}
		if slices.Contains(skip, "all") && !slices.Contains(tags, "always") {
			return false
		}
	}
	if slices.Contains(tags, "always") {
		return true
	}
	for _, t := range tags {
		if slices.Contains(only, t) {
			return true
		}
	}
	never := slices.Contains(tags, "never")
	switch {
	case len(only) == 0 || slices.Contains(only, "all"):
		return !never
	case slices.Contains(only, "tagged") && len(tags) > 0:
		return !never
	case slices.Contains(only, "untagged") && len(tags) == 0:
		return true
	}
	return false
}
