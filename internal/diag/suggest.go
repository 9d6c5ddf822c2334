package diag

import "fmt"

// Suggest returns ` did you mean "X"?` for the candidate closest to got, or ""
// when none is close enough (edit distance at most 2, and less than half of got's
// length so that short words do not match everything). Callers pass only the
// names that are still unused, as HCL does, so a suggestion never points at a key
// that is already set.
func Suggest(got string, candidates []string) string {
	best, bestDist := "", 3
	for _, c := range candidates {
		d := distance(got, c)
		if d < bestDist && d*2 <= len([]rune(got)) || d < bestDist && d == 1 {
			best, bestDist = c, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf("did you mean %q?", best)
}

// distance is the Damerau-Levenshtein distance (optimal string alignment), so
// that a swap of two neighbouring letters ("stpo") counts as one edit.
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}
