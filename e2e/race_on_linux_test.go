//go:build race

package e2e

// raceEnabled says the tests were built with -race.
const raceEnabled = true
