package etcdctl

import (
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/runbookhq/runbook/internal/etcdlab"
)

// The alarm list is the cluster's and asked once per reading: a raised alarm
// makes every member that serves reads unhealthy, as etcdctl endpoint health
// reports it on each endpoint.
func TestAlarmOnEveryEndpoint(t *testing.T) {
	c := shared(t)
	cli, err := c.Client("")
	must(t, err)
	defer cli.Close()
	id := c.Member("m1").ID
	// NOSPACE refuses writes only: reads, and so the rest of the health
	// check, go on.
	raiseNoSpace(t, cli, id)
	// Disarmed however the test ends: the lab is shared.
	t.Cleanup(func() {
		cli, err := c.Client("")
		must(t, err)
		defer cli.Close()
		if _, err := cli.AlarmDisarm(testCtx(t), &clientv3.AlarmMember{MemberID: id, Alarm: pb.AlarmType_NOSPACE}); err != nil {
			t.Fatal(err)
		}
	})
	cl, err := Gather(testCtx(t), labConfig(c), GatherOptions{Health: true})
	must(t, err)
	want := "active alarms: NOSPACE on " + ID(id)
	for _, e := range cl.Endpoints {
		if e.HealthErr == nil || e.HealthErr.Error() != want || len(e.Alarms) != 1 {
			t.Errorf("%s: health %v, alarms %v; want %q", e.URL, e.HealthErr, e.Alarms, want)
		}
	}
	if Healthy(cl) {
		t.Error("healthy with an alarm raised")
	}
	if r := NewReport(cl); len(r.Alarms) != 1 || r.Alarms[0] != "NOSPACE on "+ID(id) {
		t.Errorf("report alarms = %v", r.Alarms)
	}
	cl.Close()

	if _, err := cli.AlarmDisarm(testCtx(t), &clientv3.AlarmMember{MemberID: id, Alarm: pb.AlarmType_NOSPACE}); err != nil {
		t.Fatal(err)
	}
	// A follower's status lists the alarms it has applied: healthy again
	// once every member applied the disarm.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		cl, err = Gather(testCtx(t), labConfig(c), GatherOptions{Health: true})
		must(t, err)
		healthy := Healthy(cl)
		for _, e := range cl.Endpoints {
			if e.HealthErr != nil || e.Alarms != nil {
				t.Errorf("%s after the disarm: health %v, alarms %v", e.URL, e.HealthErr, e.Alarms)
			}
		}
		if healthy || t.Failed() {
			cl.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not healthy after the disarm: %+v", NewReport(cl))
		}
		cl.Close()
	}
	if _, err := Check(testCtx(t), labConfig(c), &Rules{}); err != nil {
		t.Errorf("Check after the disarm: %v", err)
	}
}

// An endpoint of another cluster is given its own cluster's alarms, not
// those of the cluster the other endpoints answer for.
func TestAlarmOfAnotherCluster(t *testing.T) {
	c := shared(t)
	other := etcdlab.New(t, etcdlab.Options{Version: labVersion, Members: 1})
	cli, err := other.Client("")
	must(t, err)
	defer cli.Close()
	id := other.Member("m1").ID
	raiseNoSpace(t, cli, id)
	cfg := labConfig(c)
	stray := other.Member("m1").ClientURL
	cfg.Endpoints = append(cfg.Endpoints, stray)
	cl, err := Gather(testCtx(t), cfg, GatherOptions{Health: true})
	must(t, err)
	defer cl.Close()
	for _, e := range cl.Endpoints {
		if e.URL == stray {
			if want := "active alarms: NOSPACE on " + ID(id); e.HealthErr == nil || e.HealthErr.Error() != want {
				t.Errorf("the other cluster's endpoint: health %v, want %q", e.HealthErr, want)
			}
			continue
		}
		if e.HealthErr != nil || e.Alarms != nil {
			t.Errorf("%s: health %v, alarms %v; the alarm is another cluster's", e.URL, e.HealthErr, e.Alarms)
		}
	}
	if cl.ClusterID != c.ClusterID || Healthy(cl) {
		t.Errorf("cluster %s, healthy %v; want the lab's, and unhealthy with a stray endpoint", ID(cl.ClusterID), Healthy(cl))
	}
}

// raiseNoSpace raises the NOSPACE alarm of member id, as etcd does when
// its database reaches its quota.
func raiseNoSpace(t *testing.T, cli *clientv3.Client, id uint64) {
	t.Helper()
	if _, err := pb.NewMaintenanceClient(cli.ActiveConnection()).Alarm(testCtx(t),
		&pb.AlarmRequest{Action: pb.AlarmRequest_ACTIVATE, MemberID: id, Alarm: pb.AlarmType_NOSPACE}); err != nil {
		t.Fatal(err)
	}
}
