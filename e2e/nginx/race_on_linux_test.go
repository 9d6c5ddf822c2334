//go:build race

package nginx

// raceEnabled says the tests were built with -race.
const raceEnabled = true
