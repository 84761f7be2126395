package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/kraftgo/kraft/metadatalog"
	"github.com/kraftgo/kraft/snapshot"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The metadata.version matrix on a real cluster: an upgrade refused while a broker that supports
// less is registered (running or fenced) and accepted once it restarts uncapped; ACLs and quotas at
// the top level; a safe downgrade across them refused; an unsafe one that drops them, says so, and
// leaves no record of them in any log or snapshot; and a broker capped at the new level that
// registers afterwards.
func TestMetadataVersionUpgradeAndUnsafeDowngrade(t *testing.T) {
	t.Parallel()
	bc := newBrokerCluster(t, 3, 2)
	for _, id := range bc.ids {
		runCtlOK(t, "storage", "format", "--config", bc.conf, "--node-id", strconv.Itoa(int(id)), "--cluster-id", bc.clusterID, "--release-version", "1.0-IV1")
	}
	capped := bc.brokers[1]
	capAt2 := "metadata.version.supported.max=1.0-IV1"
	for _, id := range bc.controllers {
		bc.start(id)
	}
	bc.start(bc.brokers[0])
	bc.start(capped, capAt2)
	ctrl := bc.addrs[bc.controllers[0]]
	bc.waitBrokerStates(ctrl, map[int32]bool{bc.brokers[0]: false, capped: false}, bc.ids)
	server := bc.addrs[bc.brokers[0]]
	features := func(args ...string) runResult {
		return run(t, kraftctl, append(append([]string{"features"}, args...), "--bootstrap-server", server)...)
	}

	// Refused while the capped broker is registered, running or fenced, naming it.
	for _, running := range []bool{true, false} {
		r := features("upgrade", "--metadata", "1.1-IV1")
		if r.Code != 1 || !strings.Contains(r.Stdout+r.Stderr, fmt.Sprintf("Broker %d only supports versions 1-2", capped)) {
			t.Fatalf("upgrade with broker %d capped (running %v): %s", capped, running, r)
		}
		if running {
			bc.stop(capped)
			bc.waitBrokerStates(ctrl, map[int32]bool{capped: true}, bc.others(capped))
		}
	}
	bc.start(capped)
	bc.waitBrokerStates(ctrl, map[int32]bool{capped: false}, bc.ids)
	// Refused while a controller supports less, naming it; accepted once it restarts uncapped.
	voter := bc.controllers[2]
	bc.stop(voter)
	bc.start(voter, capAt2)
	bc.eventually(pollTimeout, "an upgrade refused, naming the capped controller", bc.ids, func() (bool, string) {
		r := features("upgrade", "--metadata", "1.1-IV1")
		return r.Code == 1 && strings.Contains(r.Stderr, fmt.Sprintf("Controller %d only supports versions 1-2", voter)), r.String()
	})
	bc.stop(voter)
	bc.start(voter)

	bc.eventually(pollTimeout, "the upgrade accepted once every node supports it", bc.ids, func() (bool, string) {
		r := features("upgrade", "--metadata", "1.1-IV1")
		return r.Code == 0 && strings.Contains(r.Stdout, "upgraded to 4"), r.String()
	})

	// A controller that supports less than the finalized level stops, naming both.
	bc.stop(voter)
	p := bc.start(voter, capAt2)
	if code, ok := p.WaitExit(pollTimeout); !ok || code == 0 {
		t.Fatalf("a controller capped at level 2 in a level-4 cluster: exited %v, code %d; want it to stop with an error", ok, code)
	}
	if log := tailFile(filepath.Join(bc.dir, fmt.Sprintf("node-%d.log", voter)), 20); !strings.Contains(log, "finalized metadata.version is 4 (1.1-IV1), but this controller supports only 1-2") {
		t.Fatalf("the capped controller's last words:\n%s", log)
	}
	bc.start(voter)

	// ACLs and a quota, through a broker.
	adm := newAdmin(t, server)
	ctx, cancel := context.WithTimeout(context.Background(), pollTimeout)
	defer cancel()
	acls := kadm.NewACLs().Allow("User:alice", "User:bob").Topics("orders").Operations(kadm.OpRead).ResourcePatternType(kadm.ACLPatternLiteral)
	created, err := adm.CreateACLs(ctx, acls)
	if err != nil || len(created) != 2 {
		t.Fatalf("CreateACLs: %v (%d results)", err, len(created))
	}
	for _, c := range created {
		if c.Err != nil {
			t.Fatalf("CreateACLs: %v %s", c.Err, c.ErrMessage)
		}
	}
	alice := "alice"
	quotas, err := adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{{
		Entity: kadm.ClientQuotaEntity{{Type: "user", Name: &alice}}, Ops: []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: 1024}},
	}})
	if err != nil || len(quotas) != 1 || quotas[0].Err != nil {
		t.Fatalf("AlterClientQuotas: %v %+v", err, quotas)
	}

	// A safe downgrade across them is refused; a dry run of the unsafe one says what it would drop.
	if r := features("downgrade", "--metadata", "1.1-IV0"); r.Code != 1 || !strings.Contains(r.Stdout+r.Stderr, "might delete metadata information") {
		t.Fatalf("safe downgrade 4→3: %s", r)
	}
	if r := features("downgrade", "--metadata", "1.0-IV1", "--unsafe", "--dry-run"); r.Code != 0 || !strings.Contains(r.Stdout, "would drop 2 ACL entries and 1 client-quota entry") {
		t.Fatalf("unsafe dry run: %s", r)
	}
	if got := finalizedLevel(t, server); got != 4 {
		t.Fatalf("the dry run changed metadata.version to %d", got)
	}

	// The unsafe downgrade drops them, says so, and every broker follows.
	r := features("downgrade", "--metadata", "1.0-IV1", "--unsafe")
	if r.Code != 0 || !strings.Contains(r.Stdout, "dropped 2 ACL entries and 1 client-quota entry") {
		t.Fatalf("unsafe downgrade 4→2: %s", r)
	}
	for _, id := range bc.brokers {
		bc.eventually(pollTimeout, fmt.Sprintf("broker %d at metadata.version 2", id), bc.ids, func() (bool, string) {
			lvl := finalizedLevel(t, bc.addrs[id])
			return lvl == 2, fmt.Sprintf("level %d", lvl)
		})
	}
	if out := runCtlOK(t, "features", "describe", "--bootstrap-server", server); !strings.Contains(out, "FinalizedVersionLevel: 1.0-IV1") {
		t.Fatalf("features describe after the downgrade:\n%s", out)
	}

	// Every node snapshots at level 2, and no log or snapshot holds an ACL or quota record any more.
	for _, id := range bc.ids {
		dir := bc.logDir(id)
		bc.eventually(pollTimeout, fmt.Sprintf("node %d holds only snapshots at level 2", id), bc.ids, func() (bool, string) {
			snaps, err := snapshot.List(metadatalog.SnapshotDir(dir))
			if err != nil || len(snaps) == 0 {
				return false, fmt.Sprintf("%d snapshots (%v)", len(snaps), err)
			}
			for _, s := range snaps {
				r, err := snapshot.Open(s.Path)
				if err != nil {
					return false, err.Error()
				}
				lvl := r.Header().MetadataVersion
				r.Close()
				if lvl != 2 {
					return false, fmt.Sprintf("%s is at level %d", filepath.Base(s.Path), lvl)
				}
			}
			return true, ""
		})
		if !containsID(bc.controllers, id) {
			continue
		}
		bc.eventually(pollTimeout, fmt.Sprintf("controller %d's log holds no ACL or quota record", id), bc.ids, func() (bool, string) {
			dump := run(t, kraftctl, "log", "dump", metadatalog.WALDir(dir))
			for _, typ := range []string{"AccessControlEntryRecord", "RemoveAccessControlEntryRecord", "ClientQuotaRecord"} {
				if strings.Contains(dump.Stdout, typ) {
					return false, "the WAL still holds a " + typ
				}
			}
			return dump.Code == 0, dump.Stderr
		})
	}

	// A broker capped at the new level registers.
	bc.stop(capped)
	bc.start(capped, capAt2)
	bc.waitBrokerStates(ctrl, map[int32]bool{capped: false}, bc.ids)
	if log, _ := os.ReadFile(filepath.Join(bc.dir, fmt.Sprintf("node-%d.log", capped))); strings.Contains(string(log), "registration refused") {
		t.Fatalf("the capped broker was refused:\n%s", tailFile(filepath.Join(bc.dir, fmt.Sprintf("node-%d.log", capped)), 20))
	}
}

// finalizedLevel is the metadata.version a node's ApiVersions reports as finalized (0 if none).
func finalizedLevel(t *testing.T, addr string) int16 {
	t.Helper()
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 3 // the first with the finalized features
	req.ClientSoftwareName, req.ClientSoftwareVersion = "kraft-e2e", "1"
	r, err := request(addr, req)
	if err != nil {
		return -1
	}
	for _, f := range r.(*kmsg.ApiVersionsResponse).FinalizedFeatures {
		if f.Name == metadatalog.MetadataVersionFeature {
			return f.MaxVersionLevel
		}
	}
	return 0
}
