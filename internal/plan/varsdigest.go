package plan

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
)

const varsDigestPrefix = "hmac-sha256:"

// VarsDigest is what a journal records of the -e variables: an HMAC-SHA256 of
// them (as JSON, whose maps have sorted keys) keyed with the run's own random
// key. The values themselves may be secrets and are never recorded; a bare
// hash would let anyone who reads the journal confirm a guessed secret, while
// the keyed one can only be checked by `runbook resume`, which reads the key
// kept beside the journal.
func VarsDigest(key []byte, extra map[string]any) string {
	return varsDigestPrefix + hex.EncodeToString(varsMAC(key, extra))
}

// VarsDigestMatches reports whether extra is what recorded, a VarsDigest made
// with key, was made of. The comparison takes the same time wherever the
// digests differ. A digest of the bare form that earlier versions recorded
// ("sha256:...") is still checked, so that their runs can be resumed.
func VarsDigestMatches(key []byte, extra map[string]any, recorded string) bool {
	if hexSum, ok := strings.CutPrefix(recorded, varsDigestPrefix); ok {
		sum, err := hex.DecodeString(hexSum)
		return err == nil && len(key) > 0 && hmac.Equal(sum, varsMAC(key, extra))
	}
	if _, ok := strings.CutPrefix(recorded, "sha256:"); ok {
		vj, _ := json.Marshal(extra)
		return hmac.Equal([]byte(recorded), []byte(digest(vj)))
	}
	return false
}

func varsMAC(key []byte, extra map[string]any) []byte {
	vj, _ := json.Marshal(extra)
	m := hmac.New(sha256.New, key)
	m.Write(vj)
	return m.Sum(nil)
}
