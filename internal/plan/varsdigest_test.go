package plan

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
)

func TestVarsDigest(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	other := bytes.Repeat([]byte{8}, 32)
	vars := map[string]any{"api_token": "S3CR3T-value", "n": 3, "list": []any{"a", "b"}}
	same := map[string]any{"list": []any{"a", "b"}, "n": 3, "api_token": "S3CR3T-value"}
	changed := map[string]any{"api_token": "S3CR3T-valuf", "n": 3, "list": []any{"a", "b"}}

	d := VarsDigest(key, vars)
	if !strings.HasPrefix(d, "hmac-sha256:") || len(d) != len("hmac-sha256:")+64 {
		t.Fatalf("digest %q", d)
	}
	if VarsDigest(key, same) != d {
		t.Error("the same vars and key gave another digest")
	}
	if VarsDigest(other, vars) == d {
		t.Error("another key gave the same digest")
	}
	if VarsDigest(key, changed) == d {
		t.Error("other vars gave the same digest")
	}
	// The bare hash that could confirm a guess is not what is recorded.
	vj, _ := json.Marshal(vars)
	bare := sha256.Sum256(vj)
	if strings.Contains(d, hex.EncodeToString(bare[:])) {
		t.Error("the digest is the bare hash of the vars")
	}

	tests := []struct {
		name     string
		key      []byte
		extra    map[string]any
		recorded string
		want     bool
	}{
		{"same", key, same, d, true},
		{"other key", other, vars, d, false},
		{"no key", nil, vars, d, false},
		{"other vars", key, changed, d, false},
		{"damaged", key, vars, d[:len(d)-2] + "zz", false},
		{"empty", key, vars, "", false},
		{"bare digest of an earlier version", nil, vars, "sha256:" + hex.EncodeToString(bare[:]), true},
		{"bare digest, other vars", nil, changed, "sha256:" + hex.EncodeToString(bare[:]), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := VarsDigestMatches(tt.key, tt.extra, tt.recorded); got != tt.want {
				t.Errorf("VarsDigestMatches = %v, want %v", got, tt.want)
			}
		})
	}
}
