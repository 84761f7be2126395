package compat

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/kraftgo/kraft/metadatalog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestFranzGoKadm bootstraps franz-go's admin client from the first broker: BrokerMetadata and
// ListBrokers show the three brokers, the cluster id and a live broker as the controller; ApiVersions
// reaches every broker and shows metadata.version finalized at the level the cluster was formatted at.
func TestFranzGoKadm(t *testing.T) {
	t.Parallel()
	c := sharedCluster(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addrs[c.brokers[0]]), kgo.ClientID("kraft-compat"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()

	md, err := adm.BrokerMetadata(ctx)
	if err != nil {
		t.Fatalf("kadm BrokerMetadata: %v", err)
	}
	t.Logf("BrokerMetadata: cluster %s, controller %d, brokers %v", md.Cluster, md.Controller, md.Brokers)
	if got := md.Brokers.NodeIDs(); !slices.Equal(got, c.brokers) {
		t.Errorf("BrokerMetadata brokers %v, want %v", got, c.brokers)
	}
	if md.Cluster != c.clusterID {
		t.Errorf("BrokerMetadata cluster %q, want %q", md.Cluster, c.clusterID)
	}
	if !slices.Contains(c.brokers, md.Controller) {
		t.Errorf("BrokerMetadata controller %d, want one of the brokers %v", md.Controller, c.brokers)
	}
	checkEndpoints(t, "BrokerMetadata", c, md.Brokers)

	list, err := adm.ListBrokers(ctx)
	if err != nil {
		t.Fatalf("kadm ListBrokers: %v", err)
	}
	if got := list.NodeIDs(); !slices.Equal(got, c.brokers) {
		t.Errorf("ListBrokers %v, want %v", got, c.brokers)
	}
	checkEndpoints(t, "ListBrokers", c, list)

	vs, err := adm.ApiVersions(ctx)
	if err != nil {
		t.Fatalf("kadm ApiVersions: %v", err)
	}
	var asked []int32
	want := metadatalog.LatestMetadataVersion.Level
	for _, v := range vs {
		asked = append(asked, v.NodeID)
		if v.Err != nil {
			t.Errorf("ApiVersions of broker %d: %v", v.NodeID, v.Err)
			continue
		}
		for _, key := range []int16{(&kmsg.ApiVersionsRequest{}).Key(), (&kmsg.MetadataRequest{}).Key(), (&kmsg.DescribeClusterRequest{}).Key()} {
			if _, _, ok := v.KeyVersions(key); !ok {
				t.Errorf("broker %d does not advertise %s", v.NodeID, kmsg.NameForKey(key))
			}
		}
		if _, _, ok := v.KeyVersions((&kmsg.ProduceRequest{}).Key()); ok {
			t.Errorf("broker %d advertises Produce, which is out of scope", v.NodeID)
		}
		raw := v.Raw()
		finalized, supported := int16(-1), [2]int16{-1, -1}
		for _, f := range raw.FinalizedFeatures {
			if f.Name == metadatalog.MetadataVersionFeature {
				finalized = f.MaxVersionLevel
			}
		}
		for _, f := range raw.SupportedFeatures {
			if f.Name == metadatalog.MetadataVersionFeature {
				supported = [2]int16{f.MinVersion, f.MaxVersion}
			}
		}
		t.Logf("broker %d: %d APIs, metadata.version finalized %d, supported %d-%d, features epoch %d",
			v.NodeID, len(raw.ApiKeys), finalized, supported[0], supported[1], raw.FinalizedFeaturesEpoch)
		if finalized != want {
			t.Errorf("broker %d: finalized metadata.version %d, want %d (%s, what format wrote)", v.NodeID, finalized, want, metadatalog.LatestMetadataVersion.Name)
		}
		if supported[0] < 1 || supported[1] < want {
			t.Errorf("broker %d: supported metadata.version %d-%d, want a range reaching %d", v.NodeID, supported[0], supported[1], want)
		}
		if raw.FinalizedFeaturesEpoch <= 0 {
			t.Errorf("broker %d: FinalizedFeaturesEpoch %d, want its image's (positive) offset", v.NodeID, raw.FinalizedFeaturesEpoch)
		}
	}
	slices.Sort(asked)
	if !slices.Equal(asked, c.brokers) {
		t.Errorf("kadm ApiVersions asked brokers %v, want %v", asked, c.brokers)
	}
}

func checkEndpoints(t *testing.T, what string, c *cluster, brokers kadm.BrokerDetails) {
	t.Helper()
	for _, b := range brokers {
		if got := fmt.Sprintf("%s:%d", b.Host, b.Port); got != c.addrs[b.NodeID] {
			t.Errorf("%s: broker %d at %s, want %s", what, b.NodeID, got, c.addrs[b.NodeID])
		}
	}
}

// kcatBroker is a line of `kcat -L`'s broker list: "  broker 4 at 127.0.0.1:9092 (controller)".
var kcatBroker = regexp.MustCompile(`^\s*broker (-?\d+) at (\S+):(\d+)`)

// kcatBrokerCount is its header: " 3 brokers:".
var kcatBrokerCount = regexp.MustCompile(`^\s*(\d+) brokers?:`)

// TestKcatListsBrokers runs `kcat -L` (librdkafka) against the first broker and parses its listing.
func TestKcatListsBrokers(t *testing.T) {
	t.Parallel()
	kcat := kcatPath(t)
	c := sharedCluster(t)
	r, err := runCmd(clientTimeout, kcat, "-L", "-b", c.addrs[c.brokers[0]], "-m", "30")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("kcat -L -b %s:\n%s", c.addrs[c.brokers[0]], r.Stdout)
	if r.Code != 0 {
		t.Fatalf("kcat -L: %v", r)
	}
	count := -1
	got := map[int32]string{}
	for _, line := range strings.Split(r.Stdout, "\n") {
		if m := kcatBrokerCount.FindStringSubmatch(line); m != nil {
			count, _ = strconv.Atoi(m[1])
		}
		if m := kcatBroker.FindStringSubmatch(line); m != nil {
			id, _ := strconv.ParseInt(m[1], 10, 32)
			got[int32(id)] = m[2] + ":" + m[3]
		}
	}
	if count != len(c.brokers) {
		t.Errorf("kcat reports %d brokers, want %d", count, len(c.brokers))
	}
	if len(got) != len(c.brokers) {
		t.Errorf("kcat lists brokers %v, want %v", got, c.brokers)
	}
	for _, id := range c.brokers {
		if got[id] != c.addrs[id] {
			t.Errorf("kcat: broker %d at %q, want %s", id, got[id], c.addrs[id])
		}
	}
	if !strings.Contains(r.Stdout, "(controller)") {
		t.Errorf("kcat marks no broker as the controller")
	}
}

// describeClusterPy prints kafka-python's KafkaAdminClient.describe_cluster() as JSON.
const describeClusterPy = `
import json, sys
from kafka import KafkaAdminClient
admin = KafkaAdminClient(bootstrap_servers=sys.argv[1], client_id="kraft-compat",
                         request_timeout_ms=20000, api_version_auto_timeout_ms=20000)
try:
    print(json.dumps(admin.describe_cluster(), default=str))
finally:
    admin.close()
`

// TestKafkaPythonDescribeCluster runs kafka-python's admin client against the first broker:
// describe_cluster() returns the three brokers and the cluster id.
func TestKafkaPythonDescribeCluster(t *testing.T) {
	t.Parallel()
	py := kafkaPython(t)
	c := sharedCluster(t)
	r, err := runCmd(clientTimeout, py, "-c", describeClusterPy, c.addrs[c.brokers[0]])
	if err != nil {
		t.Fatal(err)
	}
	if r.Code != 0 {
		t.Fatalf("%s (kafka-python) describe_cluster: %v", py, r)
	}
	t.Logf("describe_cluster(): %s", strings.TrimSpace(r.Stdout))
	var out struct {
		Brokers []struct {
			NodeID int32  `json:"node_id"`
			Host   string `json:"host"`
			Port   int    `json:"port"`
		} `json:"brokers"`
		ClusterID    *string `json:"cluster_id"`
		ControllerID int32   `json:"controller_id"`
	}
	if err := json.Unmarshal([]byte(lastLine(r.Stdout)), &out); err != nil {
		t.Fatalf("describe_cluster() printed something that is not JSON: %v\n%v", err, r)
	}
	var ids []int32
	for _, b := range out.Brokers {
		ids = append(ids, b.NodeID)
		if got := fmt.Sprintf("%s:%d", b.Host, b.Port); got != c.addrs[b.NodeID] {
			t.Errorf("describe_cluster(): broker %d at %s, want %s", b.NodeID, got, c.addrs[b.NodeID])
		}
	}
	slices.Sort(ids)
	if !slices.Equal(ids, c.brokers) {
		t.Errorf("describe_cluster() brokers %v, want %v", ids, c.brokers)
	}
	if out.ClusterID == nil || *out.ClusterID != c.clusterID {
		t.Errorf("describe_cluster() cluster_id %v, want %q", out.ClusterID, c.clusterID)
	}
	if !slices.Contains(c.brokers, out.ControllerID) {
		t.Errorf("describe_cluster() controller_id %d, want one of the brokers %v", out.ControllerID, c.brokers)
	}
}
