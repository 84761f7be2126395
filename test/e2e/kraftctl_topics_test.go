package e2e

// `kraftctl topics` and `kraftctl configs` against a real cluster (one controller, three brokers): the
// operator's view of topics (create, list, describe with partition states, alter, delete) and of
// configs (describe, alter), through a broker and straight to the controller, and every error an
// operator can reach printed as one line with a non-zero exit code.

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// ctlTimeout is what each kraftctl run may wait for an answer.
const ctlTimeout = "10s"

// kctl runs kraftctl with args; it never fails the test on a non-zero exit code.
func kctl(t *testing.T, args ...string) runResult {
	t.Helper()
	return run(t, kraftctl, append(slices.Clone(args), "--timeout", ctlTimeout)...)
}

// kctlOK runs kraftctl and requires exit code 0 and nothing on stderr; it returns stdout.
func kctlOK(t *testing.T, args ...string) string {
	t.Helper()
	r := kctl(t, args...)
	if r.Code != 0 || r.Stderr != "" {
		t.Fatalf("kraftctl %s: want exit code 0 and no stderr, got %v", strings.Join(args, " "), r)
	}
	return r.Stdout
}

// kctlFails runs kraftctl and requires exit code code and exactly one "kraftctl: …" line on stderr
// holding every string of want.
func kctlFails(t *testing.T, code int, want []string, args ...string) {
	t.Helper()
	r := kctl(t, args...)
	lines := nonEmptyLines(r.Stderr)
	ok := r.Code == code && len(lines) == 1 && strings.HasPrefix(lines[0], "kraftctl: ")
	for _, w := range want {
		ok = ok && strings.Contains(r.Stderr, w)
	}
	if !ok {
		t.Errorf("kraftctl %s: want exit code %d and one stderr line holding %q, got %v", strings.Join(args, " "), code, want, r)
	}
}

// kctlEventually runs kraftctl until check accepts the run, failing after pollTimeout. An answer that
// the node does not serve the request ends the wait at once: the software lacks it, and waiting will
// not help.
func kctlEventually(t *testing.T, what string, check func(r runResult) (bool, string), args ...string) runResult {
	t.Helper()
	deadline := time.Now().Add(pollTimeout)
	for {
		r := kctl(t, args...)
		ok, why := check(r)
		if ok {
			return r
		}
		if strings.Contains(r.Stderr, "does not serve") || time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s (kraftctl %s): %s\n%v", what, strings.Join(args, " "), why, r)
		}
		time.Sleep(pollInterval)
	}
}

// describedPartition is one partition line of `kraftctl topics describe`.
type describedPartition struct {
	leader, replicas, isr, offline, state string
}

// describedTopic is one topic of `kraftctl topics describe`: the topic line's fields by name, and its
// partition lines by partition number.
type describedTopic struct {
	fields     map[string]string
	partitions map[string]describedPartition
}

// parseDescribe reads kafka-topics.sh-style output: "Topic: T\tTopicId: …" lines, each followed by
// "\tTopic: T\tPartition: N\t…" lines. Partition lines without a topic line (the report flags) are
// gathered under their topic too.
func parseDescribe(out string) (map[string]*describedTopic, error) {
	topics := map[string]*describedTopic{}
	get := func(name string) *describedTopic {
		if topics[name] == nil {
			topics[name] = &describedTopic{fields: map[string]string{}, partitions: map[string]describedPartition{}}
		}
		return topics[name]
	}
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if line == "" {
			continue
		}
		fields := map[string]string{}
		for _, f := range strings.Split(strings.TrimPrefix(line, "\t"), "\t") {
			k, v, ok := strings.Cut(f, ": ")
			if !ok {
				k, v, ok = strings.Cut(f, ":")
			}
			if !ok {
				return nil, fmt.Errorf("line %q: field %q is not \"Name: value\"", line, f)
			}
			fields[k] = v
		}
		name, ok := fields["Topic"]
		if !ok {
			return nil, fmt.Errorf("line %q names no topic", line)
		}
		if !strings.HasPrefix(line, "\t") {
			get(name).fields = fields
			continue
		}
		p, ok := fields["Partition"]
		if !ok {
			return nil, fmt.Errorf("partition line %q has no Partition field", line)
		}
		get(name).partitions[p] = describedPartition{leader: fields["Leader"], replicas: fields["Replicas"], isr: fields["Isr"], offline: fields["Offline"], state: fields["State"]}
	}
	return topics, nil
}

// sameIDs reports whether two comma-separated id lists hold the same ids, in any order.
func sameIDs(a, b string) bool {
	x, y := strings.Split(a, ","), strings.Split(b, ",")
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}

// healthy checks that topic has n partitions, each with rf distinct replicas among brokers, its leader
// among them, a full ISR and the state online.
func healthy(d *describedTopic, n, rf int, brokers []string) (bool, string) {
	if len(d.partitions) != n {
		return false, fmt.Sprintf("%d partitions, want %d", len(d.partitions), n)
	}
	for id, p := range d.partitions {
		replicas := strings.Split(p.replicas, ",")
		distinct := slices.Compact(slices.Sorted(slices.Values(replicas)))
		switch {
		case len(replicas) != rf || len(distinct) != rf:
			return false, fmt.Sprintf("partition %s: replicas %s, want %d distinct", id, p.replicas, rf)
		case !slices.Contains(replicas, p.leader):
			return false, fmt.Sprintf("partition %s: leader %s is not a replica (%s)", id, p.leader, p.replicas)
		case !sameIDs(p.isr, p.replicas):
			return false, fmt.Sprintf("partition %s: ISR %s, want every replica %s", id, p.isr, p.replicas)
		case p.state != "online":
			return false, fmt.Sprintf("partition %s: state %q, want online", id, p.state)
		}
		for _, r := range replicas {
			if !slices.Contains(brokers, r) {
				return false, fmt.Sprintf("partition %s: replica %s is not a broker %v", id, r, brokers)
			}
		}
	}
	return true, ""
}

func TestKraftctlTopicsAndConfigs(t *testing.T) {
	bc := newBrokerCluster(t, 1, 3)
	bc.formatAndStartAll()
	ctl, brk := bc.addrs[bc.controllers[0]], bc.addrs[bc.brokers[0]]
	bc.waitLeader(bc.controllers, nil)
	bc.waitBrokerStates(ctl, map[int32]bool{2: false, 3: false, 4: false}, bc.ids)
	for _, id := range bc.brokers {
		bc.waitMetadataBrokers(bc.addrs[id], bc.brokers, bc.ids)
	}
	brokerIDs := []string{"2", "3", "4"}
	C := func(args ...string) []string { return append(args, "--bootstrap-controller", ctl) }
	S := func(args ...string) []string { return append(args, "--bootstrap-server", brk) }

	// describe runs `topics describe` through a broker until check accepts what it shows.
	describe := func(t *testing.T, what string, check func(map[string]*describedTopic) (bool, string), args ...string) map[string]*describedTopic {
		t.Helper()
		var topics map[string]*describedTopic
		kctlEventually(t, what, func(r runResult) (bool, string) {
			if r.Code != 0 {
				return false, "exit code " + fmt.Sprint(r.Code)
			}
			var err error
			if topics, err = parseDescribe(r.Stdout); err != nil {
				return false, err.Error()
			}
			return check(topics)
		}, S(append([]string{"topics", "describe"}, args...)...)...)
		return topics
	}

	t.Run("create through the controller", func(t *testing.T) {
		out := kctlOK(t, C("topics", "create", "--topic", "orders", "--partitions", "3", "--replication-factor", "3", "--config", "retention.ms=3600000")...)
		if out != "Created topic orders.\n" {
			t.Errorf("topics create printed %q, want \"Created topic orders.\\n\"", out)
		}
		kctlOK(t, C("topics", "create", "--topic", "assigned", "--replica-assignment", "2:3,3:4")...)
		kctlOK(t, C("topics", "create", "--topic", "solo", "--replica-assignment", "4")...)
	})

	t.Run("create refusals", func(t *testing.T) {
		kctlFails(t, 1, []string{"topic orders: TOPIC_ALREADY_EXISTS: ", "orders"}, C("topics", "create", "--topic", "orders")...)
		if out := kctlOK(t, C("topics", "create", "--topic", "orders", "--if-not-exists")...); out != "" {
			t.Errorf("topics create --if-not-exists of an existing topic printed %q, want nothing", out)
		}
		kctlFails(t, 1, []string{"topic big: INVALID_REPLICATION_FACTOR: "}, C("topics", "create", "--topic", "big", "--replication-factor", "4")...)
		kctlFails(t, 1, []string{"topic odd: INVALID_CONFIG: ", "no.such.config"}, C("topics", "create", "--topic", "odd", "--config", "no.such.config=1")...)
		kctlFails(t, 1, []string{"topic ghost: INVALID_REPLICA_ASSIGNMENT: ", "broker 9"}, C("topics", "create", "--topic", "ghost", "--replica-assignment", "9")...)
		// Usage errors: exit code 2, before any request.
		kctlFails(t, 2, []string{"--partitions"}, C("topics", "create", "--topic", "x", "--partitions", "0")...)
		kctlFails(t, 2, []string{"--topic is required"}, C("topics", "create")...)
		kctlFails(t, 2, []string{"--replica-assignment"}, C("topics", "create", "--topic", "x", "--replica-assignment", "2:3,4")...)
		kctlFails(t, 2, []string{"--replica-assignment"}, C("topics", "create", "--topic", "x", "--replica-assignment", "2:3", "--partitions", "1")...)
		kctlFails(t, 2, []string{"illegal"}, C("topics", "create", "--topic", "no spaces")...)
		kctlFails(t, 2, []string{"unknown flag"}, C("topics", "create", "--topic", "x", "--no-such-flag")...)
		kctlFails(t, 2, []string{"--bootstrap-server", "--bootstrap-controller"}, "topics", "create", "--topic", "x")
	})

	t.Run("list", func(t *testing.T) {
		kctlEventually(t, "topics list to show the three topics, sorted", func(r runResult) (bool, string) {
			return r.Code == 0 && r.Stdout == "assigned\norders\nsolo\n", fmt.Sprintf("%q", r.Stdout)
		}, S("topics", "list")...)
		if out := kctlOK(t, S("topics", "list", "--topic", "o*,solo")...); out != "orders\nsolo\n" {
			t.Errorf("topics list --topic 'o*,solo' printed %q, want \"orders\\nsolo\\n\"", out)
		}
		// Controllers serve no Metadata: the error says so and names the brokers to use instead.
		kctlFails(t, 2, []string{"--bootstrap-server", brk}, C("topics", "list")...)
		kctlFails(t, 2, []string{"--bootstrap-server"}, C("topics", "describe")...)
	})

	t.Run("describe", func(t *testing.T) {
		topics := describe(t, "every partition of orders with a leader and a full ISR", func(ts map[string]*describedTopic) (bool, string) {
			d := ts["orders"]
			if d == nil {
				return false, "no orders"
			}
			return healthy(d, 3, 3, brokerIDs)
		})
		orders := topics["orders"]
		if f := orders.fields; f["PartitionCount"] != "3" || f["ReplicationFactor"] != "3" || len(f["TopicId"]) != 22 {
			t.Errorf("orders' topic line: %v, want PartitionCount 3, ReplicationFactor 3 and a 22-character TopicId", f)
		}
		assigned := topics["assigned"]
		if assigned == nil || assigned.partitions["0"].replicas != "2,3" || assigned.partitions["1"].replicas != "3,4" {
			t.Errorf("assigned (created with --replica-assignment 2:3,3:4): %+v", assigned)
		}
		if solo := topics["solo"]; solo == nil || solo.partitions["0"].leader != "4" || solo.partitions["0"].state != "online" {
			t.Errorf("solo (created with --replica-assignment 4): %+v", solo)
		}
		// The report flags print only matching partitions: none while everything is healthy.
		if out := kctlOK(t, S("topics", "describe", "--under-replicated-partitions")...); out != "" {
			t.Errorf("topics describe --under-replicated-partitions on a healthy cluster printed %q", out)
		}
		kctlFails(t, 1, []string{"topic nope: UNKNOWN_TOPIC_OR_PARTITION"}, S("topics", "describe", "--topic", "nope")...)
		if out := kctlOK(t, S("topics", "describe", "--topic", "nope", "--if-exists")...); out != "" {
			t.Errorf("topics describe --if-exists of a missing topic printed %q", out)
		}
	})

	t.Run("describe shows topic configs", func(t *testing.T) {
		// The topic line's Configs come from DescribeConfigs, served by the broker from its image.
		describe(t, "orders' topic line to show retention.ms=3600000", func(ts map[string]*describedTopic) (bool, string) {
			d := ts["orders"]
			if d == nil {
				return false, "no orders"
			}
			return d.fields["Configs"] == "retention.ms=3600000", "Configs: " + d.fields["Configs"]
		}, "--topic", "orders")
	})

	t.Run("alter partitions", func(t *testing.T) {
		if out := kctlOK(t, C("topics", "alter", "--topic", "orders", "--partitions", "4")...); !strings.Contains(out, "orders") {
			t.Errorf("topics alter printed %q, want a line naming orders", out)
		}
		describe(t, "orders with 4 healthy partitions", func(ts map[string]*describedTopic) (bool, string) {
			d := ts["orders"]
			if d == nil {
				return false, "no orders"
			}
			if d.fields["PartitionCount"] != "4" {
				return false, "PartitionCount " + d.fields["PartitionCount"]
			}
			return healthy(d, 4, 3, brokerIDs)
		}, "--topic", "orders")
		kctlFails(t, 1, []string{"topic orders: INVALID_PARTITIONS"}, C("topics", "alter", "--topic", "orders", "--partitions", "2")...)
		kctlFails(t, 1, []string{"topic nope: UNKNOWN_TOPIC_OR_PARTITION"}, C("topics", "alter", "--topic", "nope", "--partitions", "2")...)
		kctlFails(t, 2, []string{"--partitions"}, C("topics", "alter", "--topic", "orders")...)
	})

	t.Run("configs through the controller", func(t *testing.T) {
		out := kctlOK(t, C("configs", "alter", "--entity-type", "topics", "--entity-name", "orders", "--add-config", "retention.ms=1000,cleanup.policy=[compact,delete]")...)
		if out != "Completed updating config for topic orders.\n" {
			t.Errorf("configs alter printed %q", out)
		}
		out = kctlOK(t, C("configs", "describe", "--entity-type", "topics", "--entity-name", "orders")...)
		want := []string{
			"Dynamic configs for topic orders are:",
			"  cleanup.policy=compact,delete sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:cleanup.policy=compact,delete",
			"  retention.ms=1000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:retention.ms=1000",
		}
		lines := nonEmptyLines(out)
		if len(lines) != len(want) {
			t.Errorf("configs describe printed %q, want %d lines starting %q", out, len(want), want)
		} else {
			for i, w := range want {
				if !strings.HasPrefix(lines[i], w) {
					t.Errorf("configs describe line %d: %q, want it to start %q", i, lines[i], w)
				}
			}
		}
		all := kctlOK(t, C("configs", "describe", "--topic", "orders", "--all")...)
		if !strings.HasPrefix(all, "All configs for topic orders are:\n") || !strings.Contains(all, "\n  min.insync.replicas=") || !strings.Contains(all, "DEFAULT_CONFIG:") {
			t.Errorf("configs describe --all printed %q, want every config including the defaults", all)
		}

		kctlOK(t, C("configs", "alter", "--topic", "orders", "--delete-config", "retention.ms")...)
		out = kctlOK(t, C("configs", "describe", "--topic", "orders")...)
		if strings.Contains(out, "retention.ms") || !strings.Contains(out, "cleanup.policy=") {
			t.Errorf("after --delete-config retention.ms, configs describe printed %q", out)
		}

		kctlFails(t, 1, []string{"topic orders: INVALID_CONFIG", "no.such.config"}, C("configs", "alter", "--topic", "orders", "--add-config", "no.such.config=1")...)
		kctlFails(t, 1, []string{"topic orders: INVALID_CONFIG", "retention.ms"}, C("configs", "alter", "--topic", "orders", "--delete-config", "retention.ms")...)
		kctlFails(t, 1, []string{"topic orders: INVALID_CONFIG", "retention.ms"}, C("configs", "alter", "--topic", "orders", "--add-config", "retention.ms=soon")...)
		kctlFails(t, 1, []string{"topic nope: UNKNOWN_TOPIC_OR_PARTITION"}, C("configs", "describe", "--topic", "nope")...)
		kctlFails(t, 1, []string{"topic nope: UNKNOWN_TOPIC_OR_PARTITION"}, C("configs", "alter", "--topic", "nope", "--add-config", "retention.ms=1")...)
		// Usage errors.
		kctlFails(t, 2, []string{"users"}, C("configs", "describe", "--entity-type", "users", "--entity-name", "u")...)
		kctlFails(t, 2, []string{"--entity-name"}, C("configs", "alter", "--entity-type", "topics", "--add-config", "retention.ms=1")...)
		kctlFails(t, 2, []string{"--entity-default"}, C("configs", "describe", "--entity-type", "topics", "--entity-default")...)
		kctlFails(t, 2, []string{"--add-config"}, C("configs", "alter", "--topic", "orders")...)
		kctlFails(t, 2, []string{"broker id"}, C("configs", "describe", "--entity-type", "brokers", "--entity-name", "two")...)
		kctlFails(t, 2, []string{"[", "closed"}, C("configs", "alter", "--topic", "orders", "--add-config", "cleanup.policy=[compact")...)
	})

	t.Run("configs through a broker", func(t *testing.T) {
		// The broker answers DescribeConfigs from its image, which follows the log: poll.
		kctlEventually(t, "the broker's image to hold orders' cleanup.policy", func(r runResult) (bool, string) {
			return r.Code == 0 && strings.Contains(r.Stdout, "\n  cleanup.policy=compact,delete sensitive=false"), ""
		}, S("configs", "describe", "--topic", "orders")...)
		out := kctlOK(t, S("configs", "alter", "--topic", "orders", "--add-config", "max.message.bytes=2000000")...)
		if out != "Completed updating config for topic orders.\n" {
			t.Errorf("configs alter through a broker printed %q", out)
		}
		kctlEventually(t, "max.message.bytes=2000000 on orders", func(r runResult) (bool, string) {
			return r.Code == 0 && strings.Contains(r.Stdout, "\n  max.message.bytes=2000000 "), ""
		}, S("configs", "describe", "--topic", "orders")...)
		kctlFails(t, 1, []string{"topic orders: INVALID_CONFIG"}, S("configs", "alter", "--topic", "orders", "--add-config", "no.such.config=1")...)

		// Broker configs: one broker's, through a broker (kgo sends it to that broker, which forwards it).
		if out := kctlOK(t, S("configs", "alter", "--entity-type", "brokers", "--entity-name", "3", "--add-config", "max.connections=1000")...); out != "Completed updating config for broker 3.\n" {
			t.Errorf("configs alter of broker 3 printed %q", out)
		}
		kctlEventually(t, "broker 3's max.connections=1000", func(r runResult) (bool, string) {
			return r.Code == 0 && strings.HasPrefix(r.Stdout, "Dynamic configs for broker 3 are:\n  max.connections=1000 sensitive=false synonyms={DYNAMIC_BROKER_CONFIG:max.connections=1000"), ""
		}, S("configs", "describe", "--broker", "3")...)
		// The cluster-wide default, straight to the controller; every broker's image gets it.
		if out := kctlOK(t, C("configs", "alter", "--entity-type", "brokers", "--entity-default", "--add-config", "log.retention.ms=7200000")...); out != "Completed updating default config for brokers in the cluster.\n" {
			t.Errorf("configs alter of the brokers' default printed %q", out)
		}
		kctlEventually(t, "the brokers' default log.retention.ms=7200000", func(r runResult) (bool, string) {
			return r.Code == 0 && strings.Contains(r.Stdout, "Default configs for brokers in the cluster are:\n  log.retention.ms=7200000 sensitive=false"), ""
		}, S("configs", "describe", "--entity-type", "brokers")...)
		kctlFails(t, 1, []string{"broker 9: not a live broker"}, S("configs", "describe", "--broker", "9")...)
		kctlFails(t, 1, []string{"broker 9: BROKER_ID_NOT_REGISTERED"}, C("configs", "alter", "--broker", "9", "--add-config", "max.connections=5")...)
		// A node describes only its own broker configs: through the controller, broker 3's are out of reach.
		kctlFails(t, 1, []string{"broker 3: ", "--bootstrap-server"}, C("configs", "describe", "--broker", "3")...)
	})

	t.Run("writes through a broker", func(t *testing.T) {
		if out := kctlOK(t, S("topics", "create", "--topic", "viabroker", "--partitions", "2", "--replication-factor", "2")...); out != "Created topic viabroker.\n" {
			t.Errorf("topics create through a broker printed %q", out)
		}
		kctlFails(t, 1, []string{"topic viabroker: TOPIC_ALREADY_EXISTS"}, S("topics", "create", "--topic", "viabroker")...)
		describe(t, "viabroker with 2 healthy partitions", func(ts map[string]*describedTopic) (bool, string) {
			d := ts["viabroker"]
			if d == nil {
				return false, "no viabroker"
			}
			return healthy(d, 2, 2, brokerIDs)
		}, "--topic", "viabroker")
		if out := kctlOK(t, S("topics", "delete", "--topic", "via*")...); out != "Deleted topic viabroker.\n" {
			t.Errorf("topics delete --topic 'via*' printed %q", out)
		}
	})

	t.Run("delete", func(t *testing.T) {
		// One topic deleted, one missing: the deletion is reported, the miss is an error line, exit 1.
		r := kctl(t, C("topics", "delete", "--topic", "assigned,nope")...)
		if r.Code != 1 || r.Stdout != "Deleted topic assigned.\n" || len(nonEmptyLines(r.Stderr)) != 1 || !strings.Contains(r.Stderr, "topic nope: UNKNOWN_TOPIC_OR_PARTITION") {
			t.Errorf("topics delete --topic assigned,nope: %v", r)
		}
		// Two misses: two lines.
		r = kctl(t, C("topics", "delete", "--topic", "nope,nada")...)
		if lines := nonEmptyLines(r.Stderr); r.Code != 1 || len(lines) != 2 || !strings.Contains(lines[0], "nope") || !strings.Contains(lines[1], "nada") {
			t.Errorf("topics delete --topic nope,nada: want exit code 1 and one line per topic, got %v", r)
		}
		kctlOK(t, C("topics", "delete", "--topic", "nope", "--if-exists")...)
		kctlFails(t, 2, []string{"--bootstrap-server"}, C("topics", "delete", "--topic", "o*")...)
		kctlEventually(t, "assigned gone from the broker's list", func(r runResult) (bool, string) {
			return r.Code == 0 && !strings.Contains(r.Stdout, "assigned"), fmt.Sprintf("%q", r.Stdout)
		}, S("topics", "list")...)
	})

	t.Run("partition states with a broker down", func(t *testing.T) {
		bc.kill9(4)
		live := bc.others(4)
		// orders (RF 3) loses broker 4 from every ISR; solo, on broker 4 alone, has no leader.
		describe(t, "orders under-replicated and solo offline", func(ts map[string]*describedTopic) (bool, string) {
			bc.requireRunning(live...)
			orders, solo := ts["orders"], ts["solo"]
			if orders == nil || solo == nil {
				return false, "orders or solo missing"
			}
			if p := solo.partitions["0"]; p.leader != "none" || p.state != "offline" {
				return false, fmt.Sprintf("solo: %+v", p)
			}
			for id, p := range orders.partitions {
				if p.state != "under-replicated" || strings.Contains(p.isr, "4") || p.offline != "4" || p.leader == "4" {
					return false, fmt.Sprintf("orders partition %s: %+v", id, p)
				}
			}
			return true, ""
		})
		topics := describe(t, "--unavailable-partitions to list solo's partition only", func(ts map[string]*describedTopic) (bool, string) {
			return len(ts) == 1 && ts["solo"] != nil && len(ts["solo"].partitions) == 1, fmt.Sprint(len(ts), " topics")
		}, "--unavailable-partitions")
		if len(topics["solo"].fields) != 0 {
			t.Errorf("--unavailable-partitions printed a topic line: %v", topics["solo"].fields)
		}
		describe(t, "--under-replicated-partitions to list orders' four partitions", func(ts map[string]*describedTopic) (bool, string) {
			return ts["orders"] != nil && len(ts["orders"].partitions) == 4, fmt.Sprint(ts)
		}, "--under-replicated-partitions", "--topic", "orders")
	})
}

// TestKraftctlFollowsActiveController points kraftctl's writes at a standby controller, which answers
// NOT_CONTROLLER: kraftctl follows to the active one, and after the active one is killed, to the next.
func TestKraftctlFollowsActiveController(t *testing.T) {
	bc := newBrokerCluster(t, 3, 1)
	bc.formatAndStartAll()
	q := bc.waitLeader(bc.controllers, nil)
	bc.waitBrokerStates(bc.addrs[q.Leader], map[int32]bool{4: false}, bc.ids)
	standby := bc.others(q.Leader, 4)[0]
	C := func(id int32, args ...string) []string {
		return append(args, "--bootstrap-controller", bc.addrs[id])
	}

	kctlOK(t, C(standby, "topics", "create", "--topic", "followed")...)
	kctlOK(t, C(standby, "configs", "alter", "--topic", "followed", "--add-config", "retention.ms=1000")...)
	kctlEventually(t, "the standby's image to hold followed's retention.ms", func(r runResult) (bool, string) {
		return r.Code == 0 && strings.Contains(r.Stdout, "\n  retention.ms=1000 sensitive=false"), ""
	}, C(standby, "configs", "describe", "--topic", "followed")...)
	if out := kctlOK(t, C(standby, "topics", "delete", "--topic", "followed")...); out != "Deleted topic followed.\n" {
		t.Errorf("topics delete through a standby printed %q", out)
	}

	// Kill the active controller: a write sent to a survivor waits out the election and lands.
	bc.kill9(q.Leader)
	survivor := bc.others(q.Leader, 4)[0]
	kctlEventually(t, "a create through a survivor after the leader's death", func(r runResult) (bool, string) {
		bc.requireRunning(bc.others(q.Leader)...)
		return r.Code == 0 || strings.Contains(r.Stderr, "TOPIC_ALREADY_EXISTS"), ""
	}, C(survivor, "topics", "create", "--topic", "afterfailover")...)
}
