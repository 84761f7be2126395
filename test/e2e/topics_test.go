package e2e

// Topics end to end: created through a broker with franz-go's kadm (the broker forwards to the active
// controller), seen in every broker's Metadata, and moved when a broker dies.

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// partitionView is one partition as a broker's Metadata shows it.
type partitionView struct {
	leader        int32
	replicas, isr []int32
}

func (p partitionView) String() string {
	return fmt.Sprintf("leader=%d replicas=%v isr=%v", p.leader, p.replicas, p.isr)
}

// topicsView is every topic partition a broker's Metadata shows, by "topic-partition".
type topicsView map[string]partitionView

// topicsMetadata asks the broker at addr for every topic.
func topicsMetadata(addr string) (topicsView, error) {
	req := kmsg.NewPtrMetadataRequest() // nil Topics: every topic
	r, err := request(addr, req)
	if err != nil {
		return nil, err
	}
	v := topicsView{}
	for _, t := range r.(*kmsg.MetadataResponse).Topics {
		for _, p := range t.Partitions {
			v[fmt.Sprintf("%s-%d", *t.Topic, p.Partition)] = partitionView{leader: p.Leader, replicas: p.Replicas, isr: p.ISR}
		}
	}
	return v, nil
}

// problems lists the partitions of v that break what every healthy partition keeps: a leader that is in
// its ISR, an ISR drawn from its replicas. led, when set, also rejects a leader for which it is false.
func (v topicsView) problems(led func(int32) bool) []string {
	var out []string
	for name, p := range v {
		switch {
		case p.leader < 0:
			out = append(out, name+" has no leader: "+p.String())
		case !slices.Contains(p.isr, p.leader):
			out = append(out, name+"'s leader is not in its ISR: "+p.String())
		case led != nil && !led(p.leader):
			out = append(out, name+" is led by a broker that may not lead: "+p.String())
		}
		for _, b := range p.isr {
			if !slices.Contains(p.replicas, b) {
				out = append(out, name+"'s ISR holds a non-replica: "+p.String())
			}
		}
	}
	slices.Sort(out)
	return out
}

// ledBy counts the partitions of v that broker leads.
func (v topicsView) ledBy(broker int32) int {
	n := 0
	for _, p := range v {
		if p.leader == broker {
			n++
		}
	}
	return n
}

func summarize(problems []string) string {
	if len(problems) > 5 {
		return fmt.Sprintf("%s … and %d more", strings.Join(problems[:5], "; "), len(problems)-5)
	}
	return strings.Join(problems, "; ")
}

// newAdmin is a kadm client bootstrapped from the given brokers, as any application would be.
func newAdmin(t *testing.T, addrs ...string) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ClientID("kraft-e2e-admin"), kgo.RequestTimeoutOverhead(requestTimeout))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// TestTopicsThroughBrokersAndLeaderMoves is the topic issue's acceptance run: through a broker, kadm
// creates 100 topics × 3 partitions at RF=3; every broker's Metadata shows them with leaders and full
// ISRs; killing a broker moves its leaderships and no partition is ever seen leaderless while two of
// its replicas live; once it is back, the leaders add it to their ISRs again and a preferred-leader
// election gives it its leaderships back.
func TestTopicsThroughBrokersAndLeaderMoves(t *testing.T) {
	t.Parallel()
	bc := newBrokerCluster(t, 3, 3)
	bc.formatAndStartAll()
	bc.appendOK(bc.controllers)
	ctrl := bc.addrs[bc.controllers[0]]
	bc.waitBrokerStates(ctrl, map[int32]bool{4: false, 5: false, 6: false}, bc.ids)
	for _, id := range bc.brokers {
		bc.waitMetadataBrokers(bc.addrs[id], bc.brokers, bc.ids)
	}

	adm := newAdmin(t, bc.addrs[4], bc.addrs[5], bc.addrs[6])
	var names []string
	for i := range 100 {
		names = append(names, fmt.Sprintf("orders-%03d", i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), pollTimeout)
	defer cancel()
	created, err := adm.CreateTopics(ctx, 3, 3, nil, names...)
	if err != nil {
		t.Fatalf("kadm CreateTopics through a broker: %v", err)
	}
	for _, name := range names {
		r, ok := created[name]
		switch {
		case !ok:
			t.Fatalf("no answer for topic %s", name)
		case r.Err != nil:
			t.Fatalf("topic %s: %v (%s)", name, r.Err, r.ErrMessage)
		case r.ID == [16]byte{} || r.NumPartitions != 3 || r.ReplicationFactor != 3:
			t.Fatalf("topic %s answered id %v, %d partitions, RF %d; want an id, 3, 3", name, r.ID, r.NumPartitions, r.ReplicationFactor)
		}
	}
	// Creating them again is refused, topic by topic, with Kafka's code.
	again, err := adm.CreateTopics(ctx, 3, 3, nil, names[0])
	if err != nil {
		t.Fatal(err)
	}
	if r := again[names[0]]; r.Err == nil || !strings.Contains(r.Err.Error(), "TOPIC_ALREADY_EXISTS") {
		t.Fatalf("creating %s again: %v (%s), want TOPIC_ALREADY_EXISTS", names[0], r.Err, r.ErrMessage)
	}

	// Every broker shows all 300 partitions, each led from a full ISR; leadership is spread.
	for _, id := range bc.brokers {
		bc.eventually(pollTimeout, fmt.Sprintf("broker %d's Metadata to show 300 healthy partitions", id), bc.ids, func() (bool, string) {
			v, err := topicsMetadata(bc.addrs[id])
			if err != nil {
				return false, err.Error()
			}
			if len(v) != 300 {
				return false, fmt.Sprintf("%d partitions", len(v))
			}
			if p := v.problems(nil); len(p) > 0 {
				return false, summarize(p)
			}
			for name, p := range v {
				if len(p.replicas) != 3 || len(p.isr) != 3 {
					return false, name + ": " + p.String()
				}
			}
			return true, ""
		})
	}
	before, err := topicsMetadata(bc.addrs[4])
	if err != nil {
		t.Fatal(err)
	}
	const victim = 6
	for _, id := range bc.brokers {
		if before.ledBy(id) == 0 {
			t.Fatalf("broker %d leads none of the 300 partitions: placement did not spread leadership", id)
		}
	}

	// Sample Metadata on the survivors from the kill until the moves are done: no sample may show a
	// partition leaderless, since two replicas of each stay live.
	live := bc.others(victim)
	var (
		mu      sync.Mutex
		seen    []string
		samples int
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, id := range []int32{4, 5} {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if v, err := topicsMetadata(bc.addrs[id]); err == nil {
					mu.Lock()
					samples++
					for name, p := range v {
						if p.leader < 0 {
							seen = append(seen, fmt.Sprintf("broker %d showed %s leaderless: %s", id, name, p))
						}
					}
					mu.Unlock()
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	killed := time.Now()
	bc.kill9(victim)
	bc.eventually(pollTimeout, fmt.Sprintf("broker %d's leaderships to move to the survivors", victim), live, func() (bool, string) {
		v, err := topicsMetadata(bc.addrs[4])
		if err != nil {
			return false, err.Error()
		}
		if p := v.problems(func(b int32) bool { return b != victim }); len(p) > 0 {
			return false, summarize(p)
		}
		for name, p := range v {
			if slices.Contains(p.isr, victim) {
				return false, name + " still has the dead broker in its ISR: " + p.String()
			}
		}
		return true, ""
	})
	t.Logf("broker %d led %d partitions; all led by survivors %v after its kill -9 (session timeout %d ms)", victim, before.ledBy(victim), time.Since(killed).Round(time.Millisecond), testSessionMs)
	bc.waitMetadataBrokers(bc.addrs[5], []int32{4, 5}, live)
	close(stop)
	wg.Wait()
	if len(seen) > 0 {
		t.Errorf("%d of %d Metadata samples showed a partition without a leader while two replicas lived: %s", len(seen), samples, summarize(seen))
	}
	t.Logf("%d Metadata samples during the move, none leaderless", samples)

	// Back again: unfenced, the leaders grow their ISRs back to all three replicas (AlterPartition), and
	// a preferred-leader election returns its leaderships.
	bc.start(victim)
	bc.waitBrokerStates(ctrl, map[int32]bool{4: false, 5: false, victim: false}, bc.ids)
	bc.waitMetadataBrokers(bc.addrs[4], bc.brokers, bc.ids)
	bc.eventually(pollTimeout, fmt.Sprintf("every ISR to hold broker %d again", victim), bc.ids, func() (bool, string) {
		v, err := topicsMetadata(bc.addrs[5])
		if err != nil {
			return false, err.Error()
		}
		for name, p := range v {
			if len(p.isr) != 3 {
				return false, name + ": " + p.String()
			}
		}
		return true, ""
	})
	preferred := 0
	for _, p := range before {
		if p.replicas[0] == victim {
			preferred++
		}
	}
	bc.eventually(pollTimeout, fmt.Sprintf("a preferred-leader election to make broker %d lead the %d partitions it is first replica of", victim, preferred), bc.ids, func() (bool, string) {
		if _, err := adm.ElectLeaders(ctx, kadm.ElectPreferredReplica, nil); err != nil {
			return false, err.Error()
		}
		v, err := topicsMetadata(bc.addrs[5])
		if err != nil {
			return false, err.Error()
		}
		for name, p := range v {
			if p.leader != p.replicas[0] {
				return false, fmt.Sprintf("%s is not led by its first replica: %s", name, p)
			}
		}
		return v.ledBy(victim) == preferred, fmt.Sprintf("broker %d leads %d", victim, v.ledBy(victim))
	})

	// Deleted through a broker: gone from every broker's Metadata.
	deleted, err := adm.DeleteTopics(ctx, names[:10]...)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range deleted {
		if r.Err != nil {
			t.Fatalf("delete %s: %v (%s)", r.Topic, r.Err, r.ErrMessage)
		}
	}
	for _, id := range bc.brokers {
		bc.eventually(pollTimeout, fmt.Sprintf("broker %d to show 270 partitions after deleting 10 topics", id), bc.ids, func() (bool, string) {
			v, err := topicsMetadata(bc.addrs[id])
			if err != nil {
				return false, err.Error()
			}
			return len(v) == 270, fmt.Sprintf("%d partitions", len(v))
		})
	}
	bc.stopAll()
}

// TestReplicationFactorThreeWithABrokerDown creates an RF=3 topic on three brokers while one of them is
// fenced: placement falls back to the fenced broker for the third replica, leads from unfenced ones,
// and leaves the fenced one out of the ISR.
func TestReplicationFactorThreeWithABrokerDown(t *testing.T) {
	t.Parallel()
	bc := newBrokerCluster(t, 1, 3)
	bc.formatAndStartAll()
	ctrl := bc.addrs[bc.controllers[0]]
	bc.waitBrokerStates(ctrl, map[int32]bool{2: false, 3: false, 4: false}, bc.ids)

	const down = 4
	bc.kill9(down)
	live := bc.others(down)
	bc.waitBrokerStates(ctrl, map[int32]bool{2: false, 3: false, down: true}, live)

	adm := newAdmin(t, bc.addrs[2], bc.addrs[3])
	ctx, cancel := context.WithTimeout(context.Background(), pollTimeout)
	defer cancel()
	created, err := adm.CreateTopics(ctx, 6, 3, nil, "while-one-is-down")
	if err != nil {
		t.Fatal(err)
	}
	if r := created["while-one-is-down"]; r.Err != nil {
		t.Fatalf("RF=3 on three brokers with one fenced: %v (%s); Kafka places on the fenced broker when the unfenced run out", r.Err, r.ErrMessage)
	}
	bc.eventually(pollTimeout, "broker 2 to show the new topic", live, func() (bool, string) {
		v, err := topicsMetadata(bc.addrs[2])
		if err != nil {
			return false, err.Error()
		}
		if len(v) != 6 {
			return false, fmt.Sprintf("%d partitions", len(v))
		}
		if p := v.problems(func(b int32) bool { return b != down }); len(p) > 0 {
			return false, summarize(p)
		}
		for name, p := range v {
			if len(p.replicas) != 3 || !slices.Contains(p.replicas, down) || slices.Contains(p.isr, down) {
				return false, name + ": " + p.String() + fmt.Sprintf(" (want 3 replicas including the fenced %d, which is not in the ISR)", down)
			}
		}
		return true, ""
	})

	// RF=4 cannot be placed on three registered brokers: Kafka's code and message.
	created, err = adm.CreateTopics(ctx, 1, 4, nil, "too-replicated")
	if err != nil {
		t.Fatal(err)
	}
	if r := created["too-replicated"]; r.Err == nil || !strings.Contains(r.Err.Error(), "INVALID_REPLICATION_FACTOR") || !strings.Contains(r.ErrMessage, "only 3 broker(s) are registered") {
		t.Fatalf("RF=4 on 3 brokers: %v (%q), want INVALID_REPLICATION_FACTOR naming the 3 registered brokers", r.Err, r.ErrMessage)
	}

	// A million partitions in one topic is over the per-request cap, a 250-character name over Kafka's
	// 249: each refused with its code and a message saying why.
	long := strings.Repeat("n", 250)
	created, err = adm.CreateTopics(ctx, 1_000_000, 1, nil, "huge", long)
	if err != nil {
		t.Fatal(err)
	}
	if r := created["huge"]; r.Err == nil || !strings.Contains(r.Err.Error(), "POLICY_VIOLATION") || !strings.Contains(r.ErrMessage, "max.partitions.per.request") {
		t.Errorf("a million partitions: %v (%q), want POLICY_VIOLATION naming max.partitions.per.request", r.Err, r.ErrMessage)
	}
	if r := created[long]; r.Err == nil || !strings.Contains(r.Err.Error(), "INVALID_TOPIC_EXCEPTION") || !strings.Contains(r.ErrMessage, "249") {
		t.Errorf("a 250-character name: %v (%q), want INVALID_TOPIC_EXCEPTION naming the 249 limit", r.Err, r.ErrMessage)
	}
	bc.stopAll()
}
