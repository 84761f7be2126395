package compat

// Topics and configs through real clients: franz-go's kadm, kcat (librdkafka) and kafka-python, each
// talking to a broker, which forwards the admin requests to the active controller. Each test owns its
// topic names, since they share one cluster.

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func newAdmin(t *testing.T, c *cluster) *kadm.Client {
	t.Helper()
	var seeds []string
	for _, id := range c.brokers {
		seeds = append(seeds, c.addrs[id])
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ClientID("kraft-compat"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// poll retries cond every 100ms until it holds or clientTimeout passes.
func poll(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(clientTimeout)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %v waiting for %s; last seen: %s", clientTimeout, what, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestKadmTopicsAndConfigs creates a topic with a config through kadm, lists and describes it, changes
// its configs incrementally, is refused an unknown config key, and deletes it.
func TestKadmTopicsAndConfigs(t *testing.T) {
	t.Parallel()
	c := sharedCluster(t)
	adm := newAdmin(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	const topic = "compat-kadm"

	retention := "3600000"
	created, err := adm.CreateTopic(ctx, 3, 3, map[string]*string{"retention.ms": &retention}, topic)
	if err != nil || created.Err != nil {
		t.Fatalf("kadm CreateTopic: %v / %v (%s)", err, created.Err, created.ErrMessage)
	}
	poll(t, "ListTopics to show "+topic+" with 3 led partitions", func() (bool, string) {
		td, err := adm.ListTopics(ctx, topic)
		if err != nil {
			return false, err.Error()
		}
		d := td[topic]
		if d.Err != nil || len(d.Partitions) != 3 || d.ID != created.ID {
			return false, fmt.Sprintf("err=%v partitions=%d id=%v (want %v)", d.Err, len(d.Partitions), d.ID, created.ID)
		}
		for _, p := range d.Partitions.Sorted() {
			if p.Leader < 0 || !slices.Contains(p.ISR, p.Leader) || len(p.Replicas) != 3 {
				return false, fmt.Sprintf("partition %d: leader %d replicas %v isr %v", p.Partition, p.Leader, p.Replicas, p.ISR)
			}
		}
		return true, ""
	})

	// The config the topic was created with, as a topic config; an unset one as its default.
	described, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		t.Fatalf("kadm DescribeTopicConfigs: %v", err)
	}
	rc, err := described.On(topic, nil)
	if err != nil || rc.Err != nil {
		t.Fatalf("DescribeTopicConfigs %s: %v / %v", topic, err, rc.Err)
	}
	got := map[string]kadm.Config{}
	for _, cfg := range rc.Configs {
		got[cfg.Key] = cfg
	}
	if cfg := got["retention.ms"]; cfg.MaybeValue() != retention || cfg.Source.String() != "DYNAMIC_TOPIC_CONFIG" {
		t.Errorf("retention.ms = %q from %s, want %s from DYNAMIC_TOPIC_CONFIG", cfg.MaybeValue(), cfg.Source, retention)
	}
	if cfg := got["cleanup.policy"]; cfg.MaybeValue() != "delete" || cfg.Source.String() != "DEFAULT_CONFIG" {
		t.Errorf("cleanup.policy = %q from %s, want delete from DEFAULT_CONFIG", cfg.MaybeValue(), cfg.Source)
	}

	// Incremental changes: set one, delete another.
	altered, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: "cleanup.policy", Value: kadm.StringPtr("compact")},
		{Op: kadm.DeleteConfig, Name: "retention.ms"},
	}, topic)
	if err != nil {
		t.Fatalf("kadm AlterTopicConfigs: %v", err)
	}
	if r, _ := altered.On(topic, nil); r.Err != nil {
		t.Fatalf("AlterTopicConfigs %s: %v (%s)", topic, r.Err, r.ErrMessage)
	}
	poll(t, "DescribeTopicConfigs to show the change", func() (bool, string) {
		d, err := adm.DescribeTopicConfigs(ctx, topic)
		if err != nil {
			return false, err.Error()
		}
		r, err := d.On(topic, nil)
		if err != nil {
			return false, err.Error()
		}
		var cleanup, retention string
		for _, cfg := range r.Configs {
			switch cfg.Key {
			case "cleanup.policy":
				cleanup = cfg.MaybeValue() + "/" + cfg.Source.String()
			case "retention.ms":
				retention = cfg.MaybeValue() + "/" + cfg.Source.String()
			}
		}
		return cleanup == "compact/DYNAMIC_TOPIC_CONFIG" && retention == "604800000/DEFAULT_CONFIG",
			fmt.Sprintf("cleanup.policy=%s retention.ms=%s", cleanup, retention)
	})

	// A key no topic has is refused with INVALID_CONFIG and a message naming it.
	bad, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.mss", Value: kadm.StringPtr("1")}}, topic)
	if err != nil {
		t.Fatalf("kadm AlterTopicConfigs: %v", err)
	}
	if r, _ := bad.On(topic, nil); r.Err == nil || !strings.Contains(r.Err.Error(), "INVALID_CONFIG") || !strings.Contains(r.ErrMessage, "retention.mss") {
		t.Errorf("unknown key: %v (%q), want INVALID_CONFIG naming retention.mss", r.Err, r.ErrMessage)
	}

	deleted, err := adm.DeleteTopic(ctx, topic)
	if err != nil || deleted.Err != nil {
		t.Fatalf("kadm DeleteTopic: %v / %v (%s)", err, deleted.Err, deleted.ErrMessage)
	}
	poll(t, "ListTopics to no longer show "+topic, func() (bool, string) {
		td, err := adm.ListTopics(ctx)
		if err != nil {
			return false, err.Error()
		}
		return !td.Has(topic), fmt.Sprint(td.Names())
	})
}

// kcatPartition is a partition line of `kcat -L`: "    partition 0, leader 4, replicas: 4,5,6, isrs: 4,5,6".
var kcatPartition = regexp.MustCompile(`^\s*partition (\d+), leader (-?\d+), replicas: ([\d,]*), isrs: ([\d,]*)`)

// TestKcatListsTopics creates a topic with kadm and reads it back with `kcat -L -t`: librdkafka shows
// its partitions with leaders, replicas and ISRs.
func TestKcatListsTopics(t *testing.T) {
	t.Parallel()
	kcat := kcatPath(t)
	c := sharedCluster(t)
	adm := newAdmin(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	const topic = "compat-kcat"
	if r, err := adm.CreateTopic(ctx, 4, 3, nil, topic); err != nil || r.Err != nil {
		t.Fatalf("kadm CreateTopic: %v / %v (%s)", err, r.Err, r.ErrMessage)
	}
	t.Cleanup(func() { // the cluster outlives the test (go test -count=2 runs it again)
		if r, err := adm.DeleteTopic(context.Background(), topic); err != nil || r.Err != nil {
			t.Errorf("deleting %s: %v / %v", topic, err, r.Err)
		}
	})
	poll(t, "kcat -L to show "+topic+" with 4 partitions led from their ISRs", func() (bool, string) {
		r, err := runCmd(clientTimeout, kcat, "-L", "-b", c.addrs[c.brokers[0]], "-t", topic, "-m", "30")
		if err != nil {
			return false, err.Error()
		}
		if r.Code != 0 || !strings.Contains(r.Stdout, fmt.Sprintf("topic %q with 4 partitions", topic)) {
			return false, r.String()
		}
		parts := 0
		for _, line := range strings.Split(r.Stdout, "\n") {
			m := kcatPartition.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			parts++
			leader, _ := strconv.Atoi(m[2])
			replicas, isr := strings.Split(m[3], ","), strings.Split(m[4], ",")
			if leader < 0 || len(replicas) != 3 || !slices.Contains(isr, m[2]) {
				return false, "bad partition line: " + line
			}
		}
		if parts != 4 {
			return false, r.Stdout
		}
		t.Logf("kcat -L -t %s:\n%s", topic, r.Stdout)
		return true, ""
	})
}

// topicsPy creates or deletes topics with kafka-python's admin client; a refusal prints the error's
// class name and exits 3.
const topicsPy = `
import sys
from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaError
admin = KafkaAdminClient(bootstrap_servers=sys.argv[1], client_id="kraft-compat",
                         request_timeout_ms=20000, api_version_auto_timeout_ms=20000)
try:
    if sys.argv[2] == "create":
        admin.create_topics([NewTopic(name=sys.argv[3], num_partitions=2, replication_factor=3)])
    else:
        admin.delete_topics([sys.argv[3]])
    print("ok")
except KafkaError as e:
    print(type(e).__name__)
    sys.exit(3)
finally:
    admin.close()
`

// TestKafkaPythonCreatesAndDeletesTopics runs kafka-python's create_topics and delete_topics through a
// broker; creating an existing topic raises TopicAlreadyExistsError, deleting a missing one
// UnknownTopicOrPartitionError.
func TestKafkaPythonCreatesAndDeletesTopics(t *testing.T) {
	t.Parallel()
	py := kafkaPython(t)
	c := sharedCluster(t)
	adm := newAdmin(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	const topic = "compat-python"
	run := func(op, wantOut string, wantCode int) {
		t.Helper()
		r, err := runCmd(clientTimeout, py, "-c", topicsPy, c.addrs[c.brokers[0]], op, topic)
		if err != nil {
			t.Fatal(err)
		}
		if r.Code != wantCode || lastLine(r.Stdout) != wantOut {
			t.Fatalf("kafka-python %s %s: %v; want exit %d printing %s", op, topic, r, wantCode, wantOut)
		}
	}

	run("create", "ok", 0)
	poll(t, "kadm to see the topic kafka-python created", func() (bool, string) {
		td, err := adm.ListTopics(ctx, topic)
		if err != nil {
			return false, err.Error()
		}
		d := td[topic]
		return d.Err == nil && len(d.Partitions) == 2, fmt.Sprintf("err=%v partitions=%d", d.Err, len(d.Partitions))
	})
	run("create", "TopicAlreadyExistsError", 3)
	run("delete", "ok", 0)
	poll(t, "kadm to see the topic gone", func() (bool, string) {
		td, err := adm.ListTopics(ctx)
		if err != nil {
			return false, err.Error()
		}
		return !td.Has(topic), fmt.Sprint(td.Names())
	})
	run("delete", "UnknownTopicOrPartitionError", 3)
}
