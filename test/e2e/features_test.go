package e2e

// `kraftctl features` against a real cluster (three controllers, one broker) formatted at 1.0-IV1:
// describe through a broker and through a controller, upgrades and safe downgrades with Kafka's checks
// and messages, dry runs that change nothing, version-mapping, and the unsafe downgrade we do where
// Kafka refuses.

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// mvLineRE is describe's metadata.version line on nodes running this software (levels 1–4).
var mvLineRE = regexp.MustCompile(`^Feature: metadata\.version\tSupportedMinVersion: 1\.0-IV0\tSupportedMaxVersion: 1\.1-IV1\tFinalizedVersionLevel: (\S+)\tEpoch: (\d+)$`)

// parseFeaturesDescribe reads the finalized metadata.version and the epoch from a describe run, which
// must print exactly one feature line.
func parseFeaturesDescribe(r runResult) (level string, epoch int64, err error) {
	if r.Code != 0 || r.Stderr != "" {
		return "", 0, fmt.Errorf("exit code %d, stderr %q", r.Code, r.Stderr)
	}
	lines := nonEmptyLines(r.Stdout)
	if len(lines) != 1 {
		return "", 0, fmt.Errorf("printed %d lines, want one:\n%s", len(lines), r.Stdout)
	}
	m := mvLineRE.FindStringSubmatch(lines[0])
	if m == nil {
		return "", 0, fmt.Errorf("line %q is not kafka-features.sh's layout", lines[0])
	}
	epoch, _ = strconv.ParseInt(m[2], 10, 64)
	return m[1], epoch, nil
}

// waitMetadataVersion runs describe against one node until it shows level; it returns the epoch
// shown then.
func waitMetadataVersion(t *testing.T, flag, addr, level string) int64 {
	t.Helper()
	var epoch int64
	kctlEventually(t, fmt.Sprintf("%s %s to show metadata.version %s", flag, addr, level), func(r runResult) (bool, string) {
		got, e, err := parseFeaturesDescribe(r)
		if err != nil {
			return false, err.Error()
		}
		epoch = e
		return got == level, "FinalizedVersionLevel " + got
	}, "features", "describe", flag, addr)
	return epoch
}

func TestKraftctlFeatures(t *testing.T) {
	bc := newBrokerCluster(t, 3, 1)
	// Formatted low, since a safe downgrade cannot get there from the latest level (3 and 4 changed
	// metadata).
	for _, id := range bc.ids {
		out := runCtlOK(t, "storage", "format", "--config", bc.conf, "--node-id", strconv.Itoa(int(id)), "--cluster-id", bc.clusterID, "--release-version", "1.0-IV1")
		if !strings.Contains(out, "with metadata.version 1.0-IV1") {
			t.Fatalf("storage format printed %q", out)
		}
	}
	for _, id := range bc.ids {
		bc.start(id)
	}
	q := bc.waitLeader(bc.controllers, nil)
	bc.waitBrokerStates(bc.addrs[q.Leader], map[int32]bool{4: false}, bc.ids)
	standby := bc.others(q.Leader, 4)[0]
	B := func(args ...string) []string { return append(args, "--bootstrap-server", bc.addrs[4]) }
	C := func(args ...string) []string { return append(args, "--bootstrap-controller", bc.addrs[standby]) }

	t.Run("version-mapping", func(t *testing.T) {
		want := "metadata.version=1 (1.0-IV0)\nmetadata.version=2 (1.0-IV1)\nmetadata.version=3 (1.1-IV0)\nmetadata.version=4 (1.1-IV1)\n"
		if out := runCtlOK(t, "features", "version-mapping"); out != want {
			t.Errorf("version-mapping printed %q, want %q", out, want)
		}
		if out := runCtlOK(t, "features", "version-mapping", "--release-version", "1.0"); out != "metadata.version=2 (1.0-IV1)\n" {
			t.Errorf("version-mapping --release-version 1.0 printed %q", out)
		}
		if r := run(t, kraftctl, "features", "version-mapping", "--release-version", "0.9"); r.Code != 2 || !strings.Contains(r.Stderr, `unknown metadata.version "0.9"`) {
			t.Errorf("version-mapping --release-version 0.9: %v", r)
		}
	})

	// The broker and a standby controller both describe the level the cluster was formatted at.
	start := waitMetadataVersion(t, "--bootstrap-server", bc.addrs[4], "1.0-IV1")
	waitMetadataVersion(t, "--bootstrap-controller", bc.addrs[standby], "1.0-IV1")

	// A dry run passes every check and writes nothing.
	if out := kctlOK(t, B("features", "upgrade", "--metadata", "1.1-IV1", "--dry-run")...); out != "metadata.version can be upgraded to 4.\n" {
		t.Errorf("upgrade --dry-run printed %q", out)
	}
	if out := kctlOK(t, C("features", "downgrade", "--metadata", "1.0-IV0", "--dry-run")...); out != "metadata.version can be downgraded to 1.\n" {
		t.Errorf("downgrade --dry-run printed %q", out)
	}
	for _, args := range [][]string{B("features", "describe"), C("features", "describe")} {
		if level, _, err := parseFeaturesDescribe(kctl(t, args...)); err != nil || level != "1.0-IV1" {
			t.Errorf("%q after dry runs: level %q, %v; want 1.0-IV1", args, level, err)
		}
	}

	// Kafka's refusals, with the controller's words, exit 1: a lower level sent as an upgrade, a higher
	// one as a downgrade, and nothing changes.
	kctlFails(t, 1, []string{"Could not upgrade metadata.version to 1. ", "Can't downgrade the version of this feature without setting the upgrade type to either safe or unsafe downgrade"},
		B("features", "upgrade", "--metadata", "1.0-IV0")...)
	kctlFails(t, 1, []string{"Could not downgrade metadata.version to 4. ", "Can't downgrade to a newer version"},
		C("features", "downgrade", "--release-version", "1.1")...)
	kctlFails(t, 1, []string{"Can not downgrade metadata.version to 4. ", "Can't downgrade to a newer version"},
		B("features", "downgrade", "--metadata", "4", "--dry-run")...)
	kctlFails(t, 1, []string{"Could not disable metadata.version. "}, B("features", "disable", "--feature", "metadata.version")...)

	// Safe 2 → 1 (no level in between changed metadata), then back up, through either door.
	if out := kctlOK(t, B("features", "downgrade", "--metadata", "1.0-IV0")...); out != "metadata.version was downgraded to 1.\n" {
		t.Errorf("downgrade printed %q", out)
	}
	waitMetadataVersion(t, "--bootstrap-server", bc.addrs[4], "1.0-IV0")
	waitMetadataVersion(t, "--bootstrap-controller", bc.addrs[standby], "1.0-IV0")
	if out := kctlOK(t, C("features", "upgrade", "--feature", "metadata.version=2")...); out != "metadata.version was upgraded to 2.\n" {
		t.Errorf("upgrade --feature printed %q", out)
	}
	waitMetadataVersion(t, "--bootstrap-server", bc.addrs[4], "1.0-IV1")

	// 1.0-IV1 → 1.1-IV1: describe shows the new level at a later epoch.
	if out := kctlOK(t, B("features", "upgrade", "--release-version", "1.1")...); out != "metadata.version was upgraded to 4.\n" {
		t.Errorf("upgrade --release-version printed %q", out)
	}
	if epoch := waitMetadataVersion(t, "--bootstrap-server", bc.addrs[4], "1.1-IV1"); epoch <= start {
		t.Errorf("the broker's epoch is %d after the upgrade, %d before it", epoch, start)
	}
	waitMetadataVersion(t, "--bootstrap-controller", bc.addrs[standby], "1.1-IV1")
	waitMetadataVersion(t, "--bootstrap-controller", bc.addrs[q.Leader], "1.1-IV1")

	// A safe downgrade across a level that changed metadata is refused.
	kctlFails(t, 1, []string{"Could not downgrade metadata.version to 3. ", "Refusing to perform the requested downgrade because it might delete metadata information."},
		B("features", "downgrade", "--metadata", "1.1-IV0")...)
	kctlFails(t, 1, []string{"Could not downgrade metadata.version to 2. ", "might delete metadata information"},
		C("features", "downgrade", "--metadata", "1.0-IV1")...)

	// Unsafe 4 → 2: where Kafka refuses, we drop what 1.0-IV1 cannot hold and say what.
	r := kctl(t, B("features", "downgrade", "--metadata", "1.0-IV1", "--unsafe", "--dry-run")...)
	if strings.Contains(r.Stderr, "not supported by this version yet") {
		t.Skipf("the controller does not do unsafe downgrades yet: %s", strings.TrimSpace(r.Stderr))
	}
	if lines := nonEmptyLines(r.Stdout); r.Code != 0 || r.Stderr != "" || len(lines) == 0 || len(lines) > 2 || lines[0] != "metadata.version can be downgraded to 2." {
		t.Fatalf("downgrade --unsafe --dry-run: %v", r)
	}
	t.Logf("unsafe downgrade, dry run: %q", r.Stdout)
	if level, _, err := parseFeaturesDescribe(kctl(t, C("features", "describe")...)); err != nil || level != "1.1-IV1" {
		t.Errorf("after the unsafe dry run: level %q, %v; want 1.1-IV1", level, err)
	}
	// Something for the downgrade to drop, so its message has something to say: one ACL, at 1.1-IV1.
	acl := createOneACL(bc.addrs[bc.waitLeader(bc.controllers, nil).Leader])
	if acl != nil {
		t.Logf("no ACL to drop (%v): only the downgrade itself is checked", acl)
	}
	r = kctl(t, C("features", "downgrade", "--metadata", "1.0-IV1", "--unsafe")...)
	lines := nonEmptyLines(r.Stdout)
	if r.Code != 0 || r.Stderr != "" || len(lines) == 0 || len(lines) > 2 || lines[0] != "metadata.version was downgraded to 2." {
		t.Fatalf("downgrade --unsafe: %v", r)
	}
	if acl == nil && (len(lines) != 2 || !strings.Contains(lines[1], "dropped 1 ACL entry")) {
		t.Errorf("downgrade --unsafe after one ACL was created printed %q, want the controller's message naming 1 ACL entry on the second line", r.Stdout)
	}
	t.Logf("unsafe downgrade: %q", r.Stdout)
	waitMetadataVersion(t, "--bootstrap-server", bc.addrs[4], "1.0-IV1")
	waitMetadataVersion(t, "--bootstrap-controller", bc.addrs[standby], "1.0-IV1")
}

// createOneACL creates one ACL binding through the controller at addr; nil means it was created.
func createOneACL(addr string) error {
	req := kmsg.NewPtrCreateACLsRequest()
	c := kmsg.NewCreateACLsRequestCreation()
	c.ResourceType, c.ResourceName, c.ResourcePatternType = kmsg.ACLResourceTypeTopic, "orders", kmsg.ACLResourcePatternTypeLiteral
	c.Principal, c.Host = "User:alice", "*"
	c.Operation, c.PermissionType = kmsg.ACLOperationRead, kmsg.ACLPermissionTypeAllow
	req.Creations = append(req.Creations, c)
	r, err := request(addr, req)
	if err != nil {
		return err
	}
	for _, res := range r.(*kmsg.CreateACLsResponse).Results {
		if e := kerr.ErrorForCode(res.ErrorCode); e != nil {
			return fmt.Errorf("%w: %s", e, deref(res.ErrorMessage))
		}
	}
	return nil
}
