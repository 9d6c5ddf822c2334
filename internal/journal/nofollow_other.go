//go:build !unix

package journal

// noFollow is not available here; journals are not supported either (see
// acquire), so no key is made.
const noFollow = 0
