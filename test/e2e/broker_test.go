package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// failoverSampling is how long Metadata is sampled after the active controller is killed: several
// session timeouts, so a broker that lost its session would have been fenced within it.
const failoverSampling = 15 * time.Second

// TestBrokersRegisterAndServeMetadata starts three controllers and three brokers from one file: every
// broker registers and is unfenced, Metadata (raw and through kadm) lists exactly the three with the
// cluster id, DescribeQuorum shows them as observers, and `kraftctl brokers list` agrees through a
// broker and through a controller.
func TestBrokersRegisterAndServeMetadata(t *testing.T) {
	t.Parallel()
	bc := newBrokerCluster(t, 3, 3)
	bc.formatAndStartAll()
	leader, _ := bc.appendOK(bc.controllers)
	standby := bc.others(append([]int32{leader}, bc.brokers...)...)[0]

	// Every controller's image shows the three brokers unfenced, with their own endpoints.
	want := map[int32]bool{4: false, 5: false, 6: false}
	var registered map[int32]brokerInfo
	for _, id := range bc.controllers {
		registered = bc.waitBrokerStates(bc.addrs[id], want, bc.ids)
	}
	t.Logf("DescribeCluster v2 on controller %d: %s", bc.controllers[len(bc.controllers)-1], describeString(registered))
	for _, id := range bc.brokers {
		b := registered[id]
		if b.endpoint != bc.addrs[id] {
			t.Errorf("broker %d registered endpoint %s, want %s", id, b.endpoint, bc.addrs[id])
		}
		if b.epoch <= 0 {
			t.Errorf("broker %d has epoch %d, want the (positive) offset of its registration", id, b.epoch)
		}
	}
	if len(registered) != 3 {
		t.Errorf("DescribeCluster lists %d brokers, want 3: %s", len(registered), describeString(registered))
	}

	// Each broker's Metadata lists exactly the three, the cluster id, and itself as the controller.
	for _, id := range bc.brokers {
		m := bc.waitMetadataBrokers(bc.addrs[id], bc.brokers, bc.ids)
		if m.clusterID != bc.clusterID {
			t.Errorf("Metadata on broker %d: cluster id %q, want %q", id, m.clusterID, bc.clusterID)
		}
		if m.controller != id {
			t.Errorf("Metadata on broker %d names controller %d, want %d (a live broker: the one asked, as Kafka's KRaft mode does)", id, m.controller, id)
		}
		for _, b := range bc.brokers {
			if m.endpoints[b] != bc.addrs[b] {
				t.Errorf("Metadata on broker %d: broker %d at %s, want %s", id, b, m.endpoints[b], bc.addrs[b])
			}
		}
	}

	// franz-go's admin client, bootstrapped from the first broker.
	cl, err := kgo.NewClient(kgo.SeedBrokers(bc.addrs[4]), kgo.ClientID("kraft-e2e"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), pollTimeout)
	defer cancel()
	md, err := kadm.NewClient(cl).BrokerMetadata(ctx)
	if err != nil {
		t.Fatalf("kadm BrokerMetadata via %s: %v", bc.addrs[4], err)
	}
	t.Logf("kadm BrokerMetadata: cluster %s, controller %d, brokers %v", md.Cluster, md.Controller, md.Brokers)
	if got := md.Brokers.NodeIDs(); !slices.Equal(got, bc.brokers) {
		t.Errorf("kadm BrokerMetadata brokers %v, want %v", got, bc.brokers)
	}
	for _, b := range md.Brokers {
		if got := fmt.Sprintf("%s:%d", b.Host, b.Port); got != bc.addrs[b.NodeID] {
			t.Errorf("kadm BrokerMetadata: broker %d at %s, want %s", b.NodeID, got, bc.addrs[b.NodeID])
		}
	}
	if md.Cluster != bc.clusterID {
		t.Errorf("kadm BrokerMetadata cluster %q, want %q", md.Cluster, bc.clusterID)
	}
	if !containsID(bc.brokers, md.Controller) {
		t.Errorf("kadm BrokerMetadata controller %d, want one of the live brokers %v", md.Controller, bc.brokers)
	}

	// DescribeQuorum: the brokers are observers, each having applied at least its own registration;
	// the voters are the controllers. Asked of the leader, a standby, and a broker (which forwards).
	for _, addr := range []string{bc.addrs[leader], bc.addrs[standby], bc.addrs[5]} {
		bc.eventually(pollTimeout, "DescribeQuorum at "+addr+" to list the brokers as observers", bc.ids, func() (bool, string) {
			obs, q, err := observers(addr)
			if err != nil {
				return false, err.Error()
			}
			if !slices.Equal(q.voterIDs(), bc.controllers) {
				return false, fmt.Sprintf("voters %v, want %v", q.voterIDs(), bc.controllers)
			}
			if len(obs) != 3 {
				return false, fmt.Sprintf("observers %v, want brokers %v", obs, bc.brokers)
			}
			for _, id := range bc.brokers {
				if off, ok := obs[id]; !ok || off < registered[id].epoch {
					return false, fmt.Sprintf("observers %v: broker %d must report at least its registration offset %d", obs, id, registered[id].epoch)
				}
			}
			t.Logf("DescribeQuorum at %s: %v, observers %v", addr, q, obs)
			return true, ""
		})
	}

	// DescribeCluster on a controller asked for controllers (EndpointType 2) lists the three voters.
	req := kmsg.NewPtrDescribeClusterRequest()
	req.Version, req.EndpointType = 2, 2
	r, err := request(bc.addrs[standby], req)
	if err != nil {
		t.Fatalf("DescribeCluster EndpointType 2 on controller %d: %v", standby, err)
	}
	var ctrls []int32
	for _, b := range r.(*kmsg.DescribeClusterResponse).Brokers {
		ctrls = append(ctrls, b.NodeID)
		if fmt.Sprintf("%s:%d", b.Host, b.Port) != bc.addrs[b.NodeID] {
			t.Errorf("DescribeCluster EndpointType 2: controller %d at %s:%d, want %s", b.NodeID, b.Host, b.Port, bc.addrs[b.NodeID])
		}
	}
	slices.Sort(ctrls)
	if !slices.Equal(ctrls, bc.controllers) {
		t.Errorf("DescribeCluster EndpointType 2 on controller %d lists %v, want the controllers %v", standby, ctrls, bc.controllers)
	}

	// kraftctl brokers list, through a broker and through a controller: three unfenced rows.
	for _, target := range [][2]string{{"--bootstrap-server", bc.addrs[6]}, {"--bootstrap-controller", bc.addrs[standby]}} {
		bc.eventually(pollTimeout, "kraftctl brokers list "+target[0]+" to show three unfenced brokers with offsets", bc.ids, func() (bool, string) {
			rows, out, err := brokersList(t, target[0], target[1])
			if err != nil {
				return false, err.Error()
			}
			if len(rows) != 3 {
				return false, out
			}
			for _, id := range bc.brokers {
				row, ok := rows[id]
				if !ok || row.state != "unfenced" || row.endpoint != bc.addrs[id] || row.epoch != strconv.FormatInt(registered[id].epoch, 10) {
					return false, out
				}
				if off, err := strconv.ParseInt(row.off, 10, 64); err != nil || off < registered[id].epoch {
					return false, out
				}
				if _, err := strconv.ParseInt(row.lag, 10, 64); err != nil {
					return false, out
				}
			}
			t.Logf("kraftctl brokers list %s %s:\n%s", target[0], target[1], out)
			return true, ""
		})
	}
	bc.stopAll()
}

// TestBrokerKill9IsFencedAndRejoins kills a broker with SIGKILL: its session expires, it is fenced
// (DescribeCluster v2 and `kraftctl brokers list` say so) and leaves Metadata. Restarted, it
// registers under a new, higher epoch, is unfenced once caught up, and is back in Metadata.
func TestBrokerKill9IsFencedAndRejoins(t *testing.T) {
	t.Parallel()
	bc := newBrokerCluster(t, 3, 3)
	bc.formatAndStartAll()
	bc.appendOK(bc.controllers)
	ctrl := bc.addrs[bc.controllers[0]]
	before := bc.waitBrokerStates(ctrl, map[int32]bool{4: false, 5: false, 6: false}, bc.ids)
	bc.waitMetadataBrokers(bc.addrs[4], bc.brokers, bc.ids)
	t.Logf("before: %s", describeString(before))

	const victim = 6
	bc.kill9(victim)
	live := bc.others(victim)
	after := bc.waitBrokerStates(ctrl, map[int32]bool{4: false, 5: false, victim: true}, live)
	t.Logf("after kill -9 of broker %d: %s", victim, describeString(after))
	if after[victim].epoch != before[victim].epoch {
		t.Errorf("the fenced broker %d's epoch went from %d to %d; fencing must keep the registration", victim, before[victim].epoch, after[victim].epoch)
	}
	// DescribeCluster without IncludeFencedBrokers (v1) leaves it out.
	v1 := kmsg.NewPtrDescribeClusterRequest()
	v1.Version, v1.EndpointType = 1, 1
	if r, err := request(ctrl, v1); err != nil {
		t.Errorf("DescribeCluster v1: %v", err)
	} else {
		for _, b := range r.(*kmsg.DescribeClusterResponse).Brokers {
			if b.NodeID == victim {
				t.Errorf("DescribeCluster v1 (no fenced brokers) lists the fenced broker %d", victim)
			}
		}
	}
	for _, id := range []int32{4, 5} {
		bc.waitMetadataBrokers(bc.addrs[id], []int32{4, 5}, live)
	}
	// kraftctl shows it fenced, the others unfenced.
	bc.eventually(pollTimeout, "kraftctl brokers list to show the killed broker fenced", live, func() (bool, string) {
		rows, out, err := brokersList(t, "--bootstrap-server", bc.addrs[4])
		if err != nil {
			return false, err.Error()
		}
		if len(rows) != 3 || rows[victim].state != "fenced" || rows[4].state != "unfenced" || rows[5].state != "unfenced" {
			return false, out
		}
		t.Logf("kraftctl brokers list with broker %d killed:\n%s", victim, out)
		return true, ""
	})

	// Restarted: a new registration, a higher epoch, unfenced once it has caught up.
	bc.start(victim)
	var rejoined map[int32]brokerInfo
	bc.eventually(pollTimeout, fmt.Sprintf("broker %d to register again and be unfenced", victim), bc.ids, func() (bool, string) {
		got, _, err := describeBrokers(ctrl)
		if err != nil {
			return false, err.Error()
		}
		rejoined = got
		b := got[victim]
		return !b.fenced && b.epoch != before[victim].epoch, describeString(got)
	})
	t.Logf("after the restart: %s", describeString(rejoined))
	if rejoined[victim].epoch <= before[victim].epoch {
		t.Errorf("broker %d re-registered with epoch %d, want one higher than its previous %d", victim, rejoined[victim].epoch, before[victim].epoch)
	}
	for _, id := range bc.brokers {
		bc.waitMetadataBrokers(bc.addrs[id], bc.brokers, bc.ids)
	}
	// It reports having applied at least its own registration.
	bc.eventually(pollTimeout, fmt.Sprintf("broker %d to report an offset at or past its new epoch", victim), bc.ids, func() (bool, string) {
		obs, q, err := observers(ctrl)
		if err != nil {
			return false, err.Error()
		}
		return obs[victim] >= rejoined[victim].epoch, fmt.Sprintf("%v observers %v", q, obs)
	})
	bc.stopAll()
}

// TestBrokerControlledShutdown stops a broker with SIGTERM: it completes a controlled shutdown and exits
// 0, is no longer unfenced, and leaves the other brokers' Metadata.
func TestBrokerControlledShutdown(t *testing.T) {
	t.Parallel()
	bc := newBrokerCluster(t, 3, 3)
	bc.formatAndStartAll()
	bc.appendOK(bc.controllers)
	ctrl := bc.addrs[bc.controllers[1]]
	bc.waitBrokerStates(ctrl, map[int32]bool{4: false, 5: false, 6: false}, bc.ids)
	bc.waitMetadataBrokers(bc.addrs[4], bc.brokers, bc.ids)

	const leaving = 5
	bc.stop(leaving) // SIGTERM; fails the test unless it exits 0
	live := bc.others(leaving)
	for _, id := range []int32{4, 6} {
		bc.waitMetadataBrokers(bc.addrs[id], []int32{4, 6}, live)
	}
	got := bc.waitBrokerStates(ctrl, map[int32]bool{4: false, leaving: true, 6: false}, live)
	t.Logf("after SIGTERM of broker %d: %s", leaving, describeString(got))
	bc.eventually(pollTimeout, "kraftctl brokers list to show the stopped broker not unfenced", live, func() (bool, string) {
		rows, out, err := brokersList(t, "--bootstrap-controller", ctrl)
		if err != nil {
			return false, err.Error()
		}
		return rows[leaving].state == "fenced" && rows[4].state == "unfenced" && rows[6].state == "unfenced", out
	})
	bc.stopAll()
}

// TestBrokersStayUnfencedThroughControllerFailover kills the active controller with SIGKILL while every
// broker's Metadata is sampled: each sample must list all three brokers, none is fenced afterwards,
// and the brokers follow the new leader: the offsets they report pass an append made on it.
func TestBrokersStayUnfencedThroughControllerFailover(t *testing.T) {
	t.Parallel()
	bc := newBrokerCluster(t, 3, 3)
	bc.formatAndStartAll()
	leader, hw := bc.appendOK(bc.controllers)
	bc.waitBrokerStates(bc.addrs[leader], map[int32]bool{4: false, 5: false, 6: false}, bc.ids)
	for _, id := range bc.brokers {
		bc.waitMetadataBrokers(bc.addrs[id], bc.brokers, bc.ids)
	}
	before := bc.waitLeader(bc.controllers, nil)
	leader = before.Leader
	t.Logf("before the kill: %v (hw after an append %d)", before, hw)

	// Sample every broker's Metadata from before the kill until well after it.
	var (
		mu      sync.Mutex
		bad     []string
		samples = map[int32]int{}
		stop    = make(chan struct{})
		wg      sync.WaitGroup
	)
	for _, id := range bc.brokers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				m, err := metadata(bc.addrs[id])
				mu.Lock()
				samples[id]++
				switch {
				case err != nil:
					bad = append(bad, fmt.Sprintf("%s broker %d: %v", time.Now().Format("15:04:05.000"), id, err))
				case !slices.Equal(m.brokers, bc.brokers):
					bad = append(bad, fmt.Sprintf("%s broker %d: %v", time.Now().Format("15:04:05.000"), id, m))
				}
				mu.Unlock()
				time.Sleep(pollInterval)
			}
		}()
	}
	stopSampling := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopSampling()

	killedAt := time.Now()
	bc.kill9(leader)
	t.Logf("%s: killed the active controller %d", killedAt.Format("15:04:05.000"), leader)
	survivors := bc.others(leader)
	survivingControllers := bc.others(append([]int32{leader}, bc.brokers...)...)
	after := bc.waitLeader(survivingControllers, func(q quorumView) bool { return q.Epoch > before.Epoch })
	t.Logf("new leader: %v", after)
	for time.Since(killedAt) < failoverSampling {
		bc.requireRunning(survivors...)
		time.Sleep(pollInterval)
	}
	stopSampling()
	mu.Lock()
	t.Logf("Metadata samples per broker over the failover: %v", samples)
	if len(bad) > 0 {
		t.Errorf("%d Metadata samples did not list all of %v during the failover, e.g.:\n%s", len(bad), bc.brokers, strings.Join(bad[:min(len(bad), 20)], "\n"))
	}
	for _, id := range bc.brokers {
		if samples[id] < 10 {
			t.Errorf("only %d Metadata samples of broker %d over %v", samples[id], id, failoverSampling)
		}
	}
	mu.Unlock()

	// Nobody was fenced, and the brokers follow the new leader.
	got := bc.waitBrokerStates(bc.addrs[after.Leader], map[int32]bool{4: false, 5: false, 6: false}, survivors)
	newLeader, hw2 := bc.appendOK(survivingControllers)
	t.Logf("after the failover: %s; append on node %d, hw %d", describeString(got), newLeader, hw2)
	if hw2 <= hw {
		t.Errorf("hw %d after an append on the new leader, want > %d", hw2, hw)
	}
	bc.eventually(pollTimeout, fmt.Sprintf("every broker to report applying offset %d to the new leader", hw2), survivors, func() (bool, string) {
		obs, q, err := observers(bc.addrs[newLeader])
		if err != nil {
			return false, err.Error()
		}
		for _, id := range bc.brokers {
			if obs[id] < hw2 {
				return false, fmt.Sprintf("%v observers %v", q, obs)
			}
		}
		return true, ""
	})
	// Their images hold the new batch too: ApiVersions reports the image's offset as the features epoch.
	for _, id := range bc.brokers {
		bc.eventually(pollTimeout, fmt.Sprintf("broker %d's image to reach offset %d", id, hw2), survivors, func() (bool, string) {
			req := kmsg.NewPtrApiVersionsRequest()
			req.ClientSoftwareName, req.ClientSoftwareVersion = "kraft-e2e", "1"
			r, err := request(bc.addrs[id], req)
			if err != nil {
				return false, err.Error()
			}
			av := r.(*kmsg.ApiVersionsResponse)
			return av.ErrorCode == 0 && av.FinalizedFeaturesEpoch >= hw2, fmt.Sprintf("error code %d, FinalizedFeaturesEpoch %d", av.ErrorCode, av.FinalizedFeaturesEpoch)
		})
	}
	rows, out, err := brokersList(t, "--bootstrap-server", bc.addrs[4])
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("kraftctl brokers list after the failover:\n%s", out)
	for _, id := range bc.brokers {
		if rows[id].state != "unfenced" {
			t.Errorf("broker %d is %q after the failover, want unfenced", id, rows[id].state)
		}
	}
	bc.stopAll()
}

// TestBrokerRegistrationRefused covers registrations the quorum must refuse: a broker formatted for
// another cluster (INCONSISTENT_CLUSTER_ID, and it exits non-zero) and a second process with a live
// broker's id (DUPLICATE_BROKER_REGISTRATION, while the first keeps its registration).
func TestBrokerRegistrationRefused(t *testing.T) {
	t.Parallel()
	bc := newBrokerCluster(t, 3, 3)
	// Broker 4 is the live one; node 6 is formatted for another cluster; node 5 is never started as
	// itself, its port serves the duplicate of broker 4.
	for _, id := range []int32{1, 2, 3, 4} {
		bc.format(id)
	}
	otherCluster := strings.TrimSpace(runCtlOK(t, "storage", "random-uuid"))
	runCtlOK(t, "storage", "format", "--config", bc.conf, "--node-id", "6", "--cluster-id", otherCluster)
	for _, id := range []int32{1, 2, 3, 4} {
		bc.start(id)
	}
	first := []int32{1, 2, 3, 4}
	ctrl := bc.addrs[1]
	before := bc.waitBrokerStates(ctrl, map[int32]bool{4: false}, first)
	t.Logf("broker 4 registered: %s", describeString(before))

	// The wrong cluster id.
	wrong := bc.start(6)
	code, ok := wrong.WaitExit(exitTimeout)
	if !ok {
		t.Errorf("broker 6, formatted for cluster %s, still runs %v after starting against cluster %s", otherCluster, exitTimeout, bc.clusterID)
		wrong.Kill()
	} else if code == 0 {
		t.Errorf("broker 6, formatted for another cluster, exited 0; want non-zero")
	}
	logText, _ := os.ReadFile(wrong.LogPath)
	if !strings.Contains(string(logText), "INCONSISTENT_CLUSTER_ID") {
		t.Errorf("broker 6's log does not mention INCONSISTENT_CLUSTER_ID:\n%s", tailFile(wrong.LogPath, 20))
	}
	if got, _, err := describeBrokers(ctrl); err == nil {
		if _, listed := got[6]; listed {
			t.Errorf("broker 6 of another cluster is registered: %s", describeString(got))
		}
	}

	// A duplicate of broker 4: its own directory (formatted as node 4) and node 5's port.
	dupDir := filepath.Join(bc.dir, "node-4-duplicate")
	dupOverrides := []string{"metadata.log.dir=" + dupDir, "listeners=PLAINTEXT://" + bc.addrs[5]}
	runCtlOK(t, "storage", "format", "--config", bc.conf, "--node-id", "4", "--cluster-id", bc.clusterID,
		"--override", dupOverrides[0], "--override", dupOverrides[1])
	dupLog := filepath.Join(bc.dir, "node-4-duplicate.log")
	args := bc.nodeArgs(4, dupOverrides...)
	dup := startProc(t, "duplicate node 4", dupLog, args...)
	bc.mu.Lock()
	bc.procs[-4] = dup // not a node of the file; registered only so that cleanup kills it
	bc.logs = append(bc.logs, dupLog)
	bc.mu.Unlock()
	bc.waitLogContains(dupLog, "DUPLICATE_BROKER_REGISTRATION", pollTimeout)
	// Over two session timeouts, the first keeps its registration: same epoch, same endpoint, unfenced.
	deadline := time.Now().Add(2 * testSessionMs * time.Millisecond)
	for time.Now().Before(deadline) {
		bc.requireRunning(first...)
		got, _, err := describeBrokers(ctrl)
		if err != nil {
			t.Fatalf("DescribeCluster on controller 1: %v", err)
		}
		b := got[4]
		if b.epoch != before[4].epoch || b.endpoint != bc.addrs[4] || b.fenced {
			t.Fatalf("with a duplicate of broker 4 running, broker 4's registration changed: %s, was %s", b, before[4])
		}
		time.Sleep(4 * pollInterval)
	}
	if !dup.Running() {
		t.Logf("the duplicate exited (%v)", dup.State())
	}
	m := bc.waitMetadataBrokers(bc.addrs[4], []int32{4}, first)
	if m.endpoints[4] != bc.addrs[4] {
		t.Errorf("Metadata names broker 4 at %s, want the first process's %s", m.endpoints[4], bc.addrs[4])
	}
	dup.Kill()
	bc.stopAll()
}

// TestBrokerListedAsVoterRefused starts a broker-only node whose id is a voter: a configuration error,
// exit code 2 with one line naming the key, and nothing written.
func TestBrokerListedAsVoterRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ports := freePorts(t, 4)
	dataDir := filepath.Join(dir, "data")
	conf := filepath.Join(dir, "voter-broker.properties")
	text := strings.Join([]string{
		fmt.Sprintf("controller.quorum.voters=1@127.0.0.1:%d,2@127.0.0.1:%d,3@127.0.0.1:%d", ports[0], ports[1], ports[2]),
		"controller.listener.names=CONTROLLER",
		"metadata.log.dir=" + filepath.Join(dataDir, "node-${node.id}"),
		fmt.Sprintf("node.1.process.roles=controller\nnode.1.listeners=CONTROLLER://127.0.0.1:%d", ports[0]),
		fmt.Sprintf("node.3.process.roles=controller\nnode.3.listeners=CONTROLLER://127.0.0.1:%d", ports[2]),
		fmt.Sprintf("node.2.process.roles=broker\nnode.2.listeners=PLAINTEXT://127.0.0.1:%d", ports[3]),
		"",
	}, "\n")
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	r := run(t, kraftd, "--config", conf, "--node-id", "2")
	if r.Code != 2 {
		t.Errorf("a broker listed as a voter: exit code %d, want 2\n%v\nconfig:\n%s", r.Code, r, text)
	}
	lines := strings.Split(strings.TrimRight(r.Stderr, "\n"), "\n")
	if len(lines) != 1 || lines[0] == "" {
		t.Errorf("stderr has %d lines, want exactly one:\n%s", len(lines), r.Stderr)
	}
	if !strings.Contains(r.Stderr, "controller.quorum.voters") || !strings.Contains(r.Stderr, "2") {
		t.Errorf("stderr does not name controller.quorum.voters and node 2:\n%s", r.Stderr)
	}
	if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
		t.Errorf("the metadata directory %s was created (stat: %v); bad configuration must write nothing", dataDir, err)
	}
	t.Logf("stderr: %s", strings.TrimSpace(r.Stderr))
}
