//go:build race

package canary

// raceEnabled says the tests were built with -race.
const raceEnabled = true
