package compat

// ACLs through franz-go's kadm: created and deleted through a broker, which forwards them to the
// active controller, and described by every broker from its own image. A second, small cluster
// formatted at 1.0-IV1, below the level ACLs need, refuses them.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	harness "github.com/kraftgo/kraft/test/cluster"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// brokerACLs asks the broker at addr, and only it, for the ACLs on topics whose name starts with
// prefix, as sorted "TYPE:name:PATTERN principal@host OPERATION PERMISSION" lines.
func brokerACLs(addr, prefix string) ([]string, error) {
	req := kmsg.NewPtrDescribeACLsRequest()
	req.ResourceType, req.ResourcePatternType = kmsg.ACLResourceTypeTopic, kmsg.ACLResourcePatternTypeAny
	req.Operation, req.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
	resp, err := harness.Request(addr, "kraft-compat", requestTimeout, req)
	if err != nil {
		return nil, err
	}
	r := resp.(*kmsg.DescribeACLsResponse)
	if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
		msg := ""
		if r.ErrorMessage != nil {
			msg = *r.ErrorMessage
		}
		return nil, fmt.Errorf("%w: %s", err, msg)
	}
	var out []string
	for _, res := range r.Resources {
		if !strings.HasPrefix(res.ResourceName, prefix) {
			continue
		}
		for _, a := range res.ACLs {
			out = append(out, fmt.Sprintf("%s:%s:%s %s@%s %s %s", res.ResourceType, res.ResourceName, res.ResourcePatternType, a.Principal, a.Host, a.Operation, a.PermissionType))
		}
	}
	slices.Sort(out)
	return out, nil
}

// describedLines renders kadm's describe results like brokerACLs.
func describedLines(rs kadm.DescribeACLsResults) ([]string, error) {
	var out []string
	for _, r := range rs {
		if r.Err != nil {
			return nil, fmt.Errorf("%w: %s", r.Err, r.ErrMessage)
		}
		for _, d := range r.Described {
			out = append(out, fmt.Sprintf("%s:%s:%s %s@%s %s %s", d.Type, d.Name, d.Pattern, d.Principal, d.Host, d.Operation, d.Permission))
		}
	}
	slices.Sort(out)
	return out, nil
}

// waitEveryBroker polls until every broker describes exactly want among the ACLs on prefix's topics.
func waitEveryBroker(t *testing.T, c *cluster, prefix string, want []string) {
	t.Helper()
	for _, id := range c.brokers {
		poll(t, fmt.Sprintf("broker %d to describe %v", id, want), func() (bool, string) {
			got, err := brokerACLs(c.addrs[id], prefix)
			if err != nil {
				return false, err.Error()
			}
			return slices.Equal(got, want), fmt.Sprint(got)
		})
	}
}

// TestKadmACLs creates a literal and a prefixed ACL through kadm, is refused a malformed principal,
// creates one again (accepted, not duplicated), describes them with filters, sees them on every
// broker, and deletes them by filter.
func TestKadmACLs(t *testing.T) {
	t.Parallel()
	c := sharedCluster(t)
	adm := newAdmin(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	const prefix = "compat-acl-"
	orders, ordPrefix := prefix+"orders", prefix+"ord"

	created, err := adm.CreateACLs(ctx, kadm.NewACLs().Topics(orders).Allow("User:alice").Operations(kadm.OpRead))
	if err != nil || len(created) != 1 || created[0].Err != nil {
		t.Fatalf("creating alice's ACL: %v %+v", err, created)
	}
	created, err = adm.CreateACLs(ctx, kadm.NewACLs().Topics(ordPrefix).ResourcePatternType(kadm.ACLPatternPrefixed).
		Allow("User:bob").Operations(kadm.OpWrite, kadm.OpDescribe))
	if err != nil || len(created) != 2 || created[0].Err != nil || created[1].Err != nil {
		t.Fatalf("creating bob's prefixed ACLs: %v %+v", err, created)
	}
	bad, err := adm.CreateACLs(ctx, kadm.NewACLs().Topics(orders).Allow("alice").Operations(kadm.OpRead))
	if err != nil || len(bad) != 1 || !errors.Is(bad[0].Err, kerr.InvalidRequest) || !strings.Contains(bad[0].ErrMessage, "principalType:principalName") {
		t.Fatalf("a principal without a type: %v %+v", err, bad)
	}
	again, err := adm.CreateACLs(ctx, kadm.NewACLs().Topics(orders).Allow("User:alice").Operations(kadm.OpRead))
	if err != nil || len(again) != 1 || again[0].Err != nil {
		t.Fatalf("creating alice's ACL again: %v %+v", err, again)
	}

	alice := "TOPIC:" + orders + ":LITERAL User:alice@* READ ALLOW"
	bobDescribe := "TOPIC:" + ordPrefix + ":PREFIXED User:bob@* DESCRIBE ALLOW"
	bobWrite := "TOPIC:" + ordPrefix + ":PREFIXED User:bob@* WRITE ALLOW"
	waitEveryBroker(t, c, prefix, []string{bobDescribe, bobWrite, alice})

	for _, tc := range []struct {
		what    string
		builder *kadm.ACLBuilder
		want    []string
	}{
		{"what applies to " + orders, kadm.NewACLs().Topics(orders).ResourcePatternType(kadm.ACLPatternMatch).Allow().AllowHosts().Operations(), []string{bobDescribe, bobWrite, alice}},
		{"the literal " + orders, kadm.NewACLs().Topics(orders).Allow().AllowHosts().Operations(), []string{alice}},
		{"bob's writes on any pattern", kadm.NewACLs().Topics().ResourcePatternType(kadm.ACLPatternAny).Allow("User:bob").AllowHosts().Operations(kadm.OpWrite), []string{bobWrite}},
		{"denials", kadm.NewACLs().Topics(orders).ResourcePatternType(kadm.ACLPatternMatch).Deny().DenyHosts().Operations(), nil},
	} {
		rs, err := adm.DescribeACLs(ctx, tc.builder)
		if err != nil {
			t.Fatalf("describing %s: %v", tc.what, err)
		}
		got, err := describedLines(rs)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Fatalf("describing %s: %v %v, want %v", tc.what, err, got, tc.want)
		}
	}

	// Delete bob's prefixed ACLs by filter: both come back as matched.
	deleted, err := adm.DeleteACLs(ctx, kadm.NewACLs().Topics(ordPrefix).ResourcePatternType(kadm.ACLPatternPrefixed).Allow().AllowHosts().Operations())
	if err != nil || len(deleted) != 1 || deleted[0].Err != nil || len(deleted[0].Deleted) != 2 {
		t.Fatalf("deleting bob's ACLs: %v %+v", err, deleted)
	}
	waitEveryBroker(t, c, prefix, []string{alice})
	// A filter that matches nothing is no error.
	deleted, err = adm.DeleteACLs(ctx, kadm.NewACLs().Topics(ordPrefix).ResourcePatternType(kadm.ACLPatternPrefixed).Allow().AllowHosts().Operations())
	if err != nil || len(deleted) != 1 || deleted[0].Err != nil || len(deleted[0].Deleted) != 0 {
		t.Fatalf("deleting bob's ACLs again: %v %+v", err, deleted)
	}
	deleted, err = adm.DeleteACLs(ctx, kadm.NewACLs().Topics(orders).Allow().AllowHosts().Operations())
	if err != nil || len(deleted) != 1 || deleted[0].Err != nil || len(deleted[0].Deleted) != 1 {
		t.Fatalf("deleting alice's ACL: %v %+v", err, deleted)
	}
	waitEveryBroker(t, c, prefix, nil)
}

// TestACLsRefusedBelowLevel3 formats a cluster (one controller, one broker) at 1.0-IV1: creating and
// describing ACLs answers UNSUPPORTED_VERSION naming the level needed; once metadata.version is raised
// to 1.1-IV0, ACLs can be created.
func TestACLsRefusedBelowLevel3(t *testing.T) {
	t.Parallel()
	dir, err := os.MkdirTemp("", "kraft-compat-1.0-IV1-")
	if err != nil {
		t.Fatal(err)
	}
	c, err := startClusterAtRelease(dir, "1.0-IV1", 1, 1)
	if c != nil {
		t.Cleanup(func() {
			if t.Failed() {
				var b strings.Builder
				c.printLogs(&b)
				t.Logf("cluster file %s; node logs:\n%s", c.conf, b.String())
			}
			if err := c.stopAll(); err != nil {
				t.Errorf("stopping the 1.0-IV1 cluster: %v", err)
			}
			c.killAll()
		})
	}
	if err != nil {
		t.Fatalf("starting a cluster at 1.0-IV1: %v", err)
	}
	adm := newAdmin(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()

	const need = "ACLs need metadata.version 1.1-IV0 (level 3) or later; the cluster is at 1.0-IV1 (level 2)"
	created, err := adm.CreateACLs(ctx, kadm.NewACLs().Topics("orders").Allow("User:alice").Operations(kadm.OpRead))
	if err != nil || len(created) != 1 || !errors.Is(created[0].Err, kerr.UnsupportedVersion) || !strings.Contains(created[0].ErrMessage, need) {
		t.Fatalf("CreateACLs at 1.0-IV1: %v %+v", err, created)
	}
	described, err := adm.DescribeACLs(ctx, kadm.NewACLs().AnyResource().ResourcePatternType(kadm.ACLPatternAny).Allow().AllowHosts().Operations())
	if err != nil || len(described) != 1 || !errors.Is(described[0].Err, kerr.UnsupportedVersion) || !strings.Contains(described[0].ErrMessage, need) {
		t.Fatalf("DescribeACLs at 1.0-IV1: %v %+v", err, described)
	}
	deleted, err := adm.DeleteACLs(ctx, kadm.NewACLs().AnyResource().ResourcePatternType(kadm.ACLPatternAny).Allow().AllowHosts().Operations())
	if err != nil || len(deleted) != 1 || !errors.Is(deleted[0].Err, kerr.UnsupportedVersion) || !strings.Contains(deleted[0].ErrMessage, need) {
		t.Fatalf("DeleteACLs at 1.0-IV1: %v %+v", err, deleted)
	}

	// What the message says to do.
	if _, err := adm.UpdateFeatures(ctx, false, kadm.FeatureUpdate{Feature: "metadata.version", MaxVersionLevel: 3, UpgradeType: 1}); err != nil {
		t.Fatalf("raising metadata.version to 1.1-IV0: %v", err)
	}
	poll(t, "CreateACLs to be accepted at 1.1-IV0", func() (bool, string) {
		created, err := adm.CreateACLs(ctx, kadm.NewACLs().Topics("orders").Allow("User:alice").Operations(kadm.OpRead))
		if err != nil {
			return false, err.Error()
		}
		return len(created) == 1 && created[0].Err == nil, fmt.Sprintf("%+v", created)
	})
	waitEveryBroker(t, c, "orders", []string{"TOPIC:orders:LITERAL User:alice@* READ ALLOW"})
}

// startClusterAtRelease is startCluster with metadata.version formatted at release and the given numbers of
// controllers and brokers.
func startClusterAtRelease(dir, release string, controllers, brokers int) (*cluster, error) {
	c := &cluster{dir: dir, procs: map[int32]*harness.Proc{}}
	f, err := harness.WriteFile(harness.Spec{
		Dir:         dir,
		Comment:     "written by the compat tests: a cluster formatted at " + release,
		Controllers: controllers,
		Brokers:     brokers,
		Settings:    []string{"broker.heartbeat.interval.ms=500", "broker.session.timeout.ms=3000"},
	})
	if err != nil {
		return nil, err
	}
	c.conf, c.controllers, c.brokers, c.addrs = f.Path, f.Controllers, f.Brokers, f.Addrs
	out, err := ctl("storage", "random-uuid")
	if err != nil {
		return nil, err
	}
	c.clusterID = strings.TrimSpace(out)
	for _, id := range f.IDs() {
		if _, err := ctl("storage", "format", "--config", c.conf, "--node-id", fmt.Sprint(id), "--cluster-id", c.clusterID, "--release-version", release); err != nil {
			return c, err
		}
	}
	for _, id := range f.IDs() {
		if err := c.start(id); err != nil {
			return c, err
		}
	}
	return c, c.waitReady()
}
