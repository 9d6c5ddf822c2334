package etcdctl

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// HashReport is the outcome of a consistency check.
type HashReport struct {
	Revision int64        `json:"revision"` // the common revision hashed
	Equal    bool         `json:"equal"`
	Attempts int          `json:"attempts"`
	Members  []MemberHash `json:"members"`
}

// MemberHash is one member's HashKV at the common revision.
type MemberHash struct {
	Name            string `json:"name"`
	Hash            uint32 `json:"hash"`
	CompactRevision int64  `json:"compact_revision"`
}

// Consistency tries this often to find a revision every member can hash.
const consistencyAttempts = 5

// retryWait is the pause before another attempt, when a member is behind
// the common revision or a compaction moved past it.
const retryWait = 200 * time.Millisecond

// Consistency compares every member's HashKV at one revision that all of
// them have (the lowest current revision), as etcd's own corruption check
// does: only members that report the same compact revision are compared,
// since a compaction changes the hash. A revision compacted away meanwhile,
// or one a member has not reached, is retried with a new one, a few times.
func Consistency(ctx context.Context, cl *Cluster) (*HashReport, error) {
	r := &HashReport{}
	var last error
	for r.Attempts = 1; r.Attempts <= consistencyAttempts; r.Attempts++ {
		if r.Attempts > 1 {
			select {
			case <-ctx.Done():
				return r, ctx.Err()
			case <-time.After(retryWait):
			}
			cl.Refresh(ctx)
		}
		var members []*Member
		r.Revision = 0
		for _, m := range cl.Members {
			st := m.Status()
			if st == nil {
				return r, fmt.Errorf("member %s did not answer; every member must be hashed", m.Label())
			}
			members = append(members, m)
			if r.Revision == 0 || st.Header.Revision < r.Revision {
				r.Revision = st.Header.Revision
			}
		}
		if len(members) == 0 {
			return r, errors.New("no members")
		}
		// One member at a time: while a member hashes, etcd holds its read
		// transaction, so its backend cannot commit and the writes it
		// serves wait (for seconds on a multi-GB database). Hashed in turn,
		// the other members keep serving writes meanwhile.
		hashes := make([]*clientv3.HashKVResponse, len(members))
		errs := make([]error, len(members))
		for i, m := range members {
			hashes[i], errs[i] = m.Endpoint.Client.HashKV(ctx, r.Revision)
		}
		retry := false
		for i, err := range errs {
			switch {
			case err == nil:
			case errors.Is(err, rpctypes.ErrCompacted), errors.Is(err, rpctypes.ErrFutureRev):
				retry = true
				last = fmt.Errorf("member %s: %w", members[i].Label(), err)
			default:
				return r, fmt.Errorf("member %s: %w", members[i].Label(), err)
			}
		}
		if retry {
			continue
		}
		r.Members = r.Members[:0]
		groups := map[int64][]int{}
		for i, m := range members {
			h := hashes[i]
			r.Members = append(r.Members, MemberHash{Name: m.Name, Hash: h.Hash, CompactRevision: h.CompactRevision})
			groups[h.CompactRevision] = append(groups[h.CompactRevision], i)
		}
		if len(groups) > 1 && r.Attempts < consistencyAttempts {
			// A compaction is being applied: wait until every member has it.
			last = fmt.Errorf("members report different compact revisions (%s)", compactions(r.Members))
			continue
		}
		return r, compare(r, groups)
	}
	r.Attempts = consistencyAttempts
	return r, fmt.Errorf("no revision could be hashed on every member in %d attempts: %w", consistencyAttempts, last)
}

// compare checks the hashes within each group of members with the same
// compact revision; a member alone in its group could not be compared.
func compare(r *HashReport, groups map[int64][]int) error {
	var diffs []string
	for _, cr := range slices.Sorted(maps.Keys(groups)) {
		idx := groups[cr]
		if len(idx) < 2 && len(groups) > 1 {
			diffs = append(diffs, fmt.Sprintf("member %s could not be compared (compact revision %d, the others %s)",
				r.Members[idx[0]].Name, cr, compactions(r.Members)))
			continue
		}
		byHash := map[uint32][]string{}
		for _, i := range idx {
			byHash[r.Members[i].Hash] = append(byHash[r.Members[i].Hash], r.Members[i].Name)
		}
		if len(byHash) > 1 {
			var parts []string
			for _, h := range slices.Sorted(maps.Keys(byHash)) {
				parts = append(parts, fmt.Sprintf("%s hash %d", strings.Join(byHash[h], ", "), h))
			}
			diffs = append(diffs, fmt.Sprintf("hashes differ at revision %d (compact revision %d): %s; the data of some member is corrupt",
				r.Revision, cr, strings.Join(parts, "; ")))
		}
	}
	r.Equal = len(diffs) == 0
	if !r.Equal {
		return errors.New(strings.Join(diffs, "; "))
	}
	return nil
}

func compactions(ms []MemberHash) string {
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = fmt.Sprintf("%s %d", m.Name, m.CompactRevision)
	}
	return strings.Join(parts, ", ")
}
