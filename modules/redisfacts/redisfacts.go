// Package redisfacts provides the `redis` facts: a Redis server's
// replication as it is now (role, primary, replicas, link, offsets), for
// guards and orders such as "replicas first, the primary last".
package redisfacts

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/runbookhq/runbook/modules"
)

func init() {
	modules.RegisterFacts(modules.Facts{
		Name:   "redis",
		Doc:    Doc,
		Sample: Facts{},
		Gather: func(ctx context.Context, h *modules.Host) (any, error) { return Gather(ctx, h) },
	})
}

// Doc is what `runbook doc` shows for the facts.
const Doc = `The host's Redis server as it is when the step's expressions run, read afresh
for each step (and each attempt of a step with until) that reads redis.

The server is the host var redis_addr (host:port), else the host's address and
var redis_port (default 6379). Vars redis_user and redis_password (never shown)
log in. A replica's primary is asked too, for its offset. 2s to connect and 5s
per request; gathering fails when the host's own server does not answer.

  redis.role                 "master" or "replica" (as INFO replication says, "slave" read as "replica")
  redis.addr                 the address asked
  redis.primary              the primary's host:port (the server's own address on a primary)
  redis.primary_host         the inventory host whose Redis is the primary ("" when none is)
  redis.link_up              on a replica: the link to the primary is up
  redis.offset               the server's replication offset (master_repl_offset)
  redis.primary_offset       the primary's offset (on a primary, its own)
  redis.lag_bytes            primary_offset - offset (0 on a primary)
  redis.caught_up            a primary; or a replica whose link is up, not syncing, at the primary's offset
  redis.replicas             on a primary: list of {addr, state, offset, lag}, as the primary sees them
  redis.connected_replicas   how many replicas are connected

Example: order: 'redis.role == "master" ? 1 : 0' (replicas first);
until: 'redis.caught_up'.`

// Facts is what expressions see as `redis`.
type Facts struct {
	Role              string    `expr:"role" json:"role"`
	Addr              string    `expr:"addr" json:"addr"`
	Primary           string    `expr:"primary" json:"primary"`
	PrimaryHost       string    `expr:"primary_host" json:"primary_host"`
	LinkUp            bool      `expr:"link_up" json:"link_up"`
	Offset            int       `expr:"offset" json:"offset"`
	PrimaryOffset     int       `expr:"primary_offset" json:"primary_offset"`
	LagBytes          int       `expr:"lag_bytes" json:"lag_bytes"`
	CaughtUp          bool      `expr:"caught_up" json:"caught_up"`
	Replicas          []Replica `expr:"replicas" json:"replicas"`
	ConnectedReplicas int       `expr:"connected_replicas" json:"connected_replicas"`
}

// Replica is a replica as its primary sees it.
type Replica struct {
	Addr   string `expr:"addr" json:"addr"`
	State  string `expr:"state" json:"state"`
	Offset int    `expr:"offset" json:"offset"`
	Lag    int    `expr:"lag" json:"lag"` // seconds since its last ack
}

// Gather reads the facts for host h.
func Gather(ctx context.Context, h *modules.Host) (Facts, error) {
	addr := Addr(h.Name, h.Addr, h.Vars)
	user, _ := h.Vars["redis_user"].(string)
	password, _ := h.Vars["redis_password"].(string)
	info, err := replication(ctx, addr, user, password)
	if err != nil {
		return Facts{}, fmt.Errorf("redis facts: %s: %w", addr, err)
	}
	f := FromInfo(addr, info)
	if f.Role == "replica" && f.Primary != "" {
		if pinfo, err := replication(ctx, f.Primary, user, password); err == nil {
			p := FromInfo(f.Primary, pinfo)
			f.PrimaryOffset = p.Offset
		} else {
			f.PrimaryOffset = -1 // unknown: never caught up
		}
		f.LagBytes = f.PrimaryOffset - f.Offset
		f.CaughtUp = f.LinkUp && f.PrimaryOffset >= 0 && f.LagBytes == 0 && info["master_sync_in_progress"] != "1"
	}
	f.PrimaryHost = primaryHost(f.Primary, h)
	return f, nil
}

// Addr is the Redis address of a host: var redis_addr, else its address and
// var redis_port (6379).
func Addr(name, hostAddr string, vars map[string]any) string {
	if a, ok := vars["redis_addr"].(string); ok && a != "" {
		return a
	}
	port := "6379"
	switch p := vars["redis_port"].(type) {
	case int:
		port = strconv.Itoa(p)
	case string:
		if p != "" {
			port = p
		}
	}
	if hostAddr == "" {
		hostAddr = name
	}
	return net.JoinHostPort(hostAddr, port)
}

func primaryHost(primary string, h *modules.Host) string {
	if primary == "" || h.Scope == nil || h.Scope.Inventory == nil {
		return ""
	}
	for _, o := range h.Scope.Inventory.Group("all") {
		if Addr(o.Name, o.Addr, o.Vars) == primary {
			return o.Name
		}
	}
	return ""
}

// replication runs INFO replication on the server at addr.
func replication(ctx context.Context, addr, user, password string) (map[string]string, error) {
	c := redis.NewClient(&redis.Options{
		Addr: addr, Username: user, Password: password,
		DialTimeout: 2 * time.Second, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second,
		MaxRetries: -1, PoolSize: 1, DisableIdentity: true, Protocol: 2,
	})
	defer c.Close()
	text, err := c.Info(ctx, "replication").Result()
	if err != nil {
		return nil, err
	}
	return ParseInfo(text), nil
}

// ParseInfo reads the key:value lines of an INFO reply.
func ParseInfo(text string) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if k, v, ok := strings.Cut(line, ":"); ok {
			out[k] = v
		}
	}
	return out
}

// FromInfo describes the INFO replication of the server at addr. A replica's
// PrimaryOffset and CaughtUp need its primary and are set by Gather.
func FromInfo(addr string, info map[string]string) Facts {
	f := Facts{Addr: addr, Replicas: []Replica{}}
	f.Role = info["role"]
	if f.Role == "slave" {
		f.Role = "replica"
	}
	f.Offset = atoi(info["master_repl_offset"])
	f.ConnectedReplicas = atoi(info["connected_slaves"])
	switch f.Role {
	case "master":
		f.Primary, f.PrimaryOffset, f.CaughtUp = addr, f.Offset, true
		for i := 0; i < f.ConnectedReplicas; i++ {
			if r, ok := parseReplica(info[fmt.Sprintf("slave%d", i)]); ok {
				f.Replicas = append(f.Replicas, r)
			}
		}
	case "replica":
		if h, p := info["master_host"], info["master_port"]; h != "" {
			f.Primary = net.JoinHostPort(h, p)
		}
		f.LinkUp = info["master_link_status"] == "up"
		if o, ok := info["slave_repl_offset"]; ok {
			f.Offset = atoi(o)
		}
	}
	return f
}

// parseReplica reads "ip=127.0.0.1,port=6380,state=online,offset=42,lag=0".
func parseReplica(v string) (Replica, bool) {
	if v == "" {
		return Replica{}, false
	}
	kv := map[string]string{}
	for _, part := range strings.Split(v, ",") {
		if k, val, ok := strings.Cut(part, "="); ok {
			kv[k] = val
		}
	}
	return Replica{
		Addr:   net.JoinHostPort(kv["ip"], kv["port"]),
		State:  kv["state"],
		Offset: atoi(kv["offset"]),
		Lag:    atoi(kv["lag"]),
	}, true
}

func atoi(s string) int {
	n, _ := strconv.Atoi(strings.TrimSpace(s))
	return n
}
