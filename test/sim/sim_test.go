package sim

import (
	"flag"
	"fmt"
	"strings"
	"testing"
	"testing/cryptotest"
)

var (
	flagSeeds  = flag.Int("seeds", 200, "seeds to run: 60% with 3 voters and 40% with 5 (or all with -voters)")
	flagSeed   = flag.Uint64("seed", 0, "run only this seed (replay)")
	flagVoters = flag.Int("voters", 0, "quorum size, 3 or 5 (0: both)")
	flagSteps  = flag.Int("steps", defaultSteps, "steps of the fault phase of each seed")
	flagFirst  = flag.Uint64("firstseed", 1, "first seed of the -seeds range, so that a soak can cover new ground")
	flagFaults = flag.String("faults", "default", "fault profile: default, or heavy (several times as many crashes, torn writes and lost messages)")
)

func faultProfile(t *testing.T) Faults {
	switch *flagFaults {
	case "default":
		return DefaultFaults()
	case "heavy":
		return HeavyFaults()
	}
	t.Fatalf("-faults=%q: want default or heavy", *flagFaults)
	return Faults{}
}

const defaultSteps = 5000

type seedRun struct {
	seed   uint64
	voters int
}

func seedsToRun() []seedRun {
	if *flagSeed != 0 {
		if *flagVoters != 0 {
			return []seedRun{{*flagSeed, *flagVoters}}
		}
		return []seedRun{{*flagSeed, 3}, {*flagSeed, 5}}
	}
	var runs []seedRun
	n3, n5 := *flagSeeds*3/5, *flagSeeds-*flagSeeds*3/5
	switch *flagVoters {
	case 3:
		n3, n5 = *flagSeeds, 0
	case 5:
		n3, n5 = 0, *flagSeeds
	}
	for i := range uint64(n3) {
		runs = append(runs, seedRun{*flagFirst + i, 3})
	}
	for i := range uint64(n5) {
		runs = append(runs, seedRun{*flagFirst + i, 5})
	}
	return runs
}

func replayCommand(r seedRun) string {
	cmd := fmt.Sprintf("go test ./test/sim -run TestSim -seed=%d -voters=%d", r.seed, r.voters)
	if *flagSteps != defaultSteps {
		cmd += fmt.Sprintf(" -steps=%d", *flagSteps)
	}
	if *flagFaults != "default" {
		cmd += " -faults=" + *flagFaults
	}
	return cmd
}

// runSeed runs one seed with Raft's randomness drawn from that seed too. cryptotest.SetGlobalRandom
// forbids parallel tests, which is the point: the source is process-wide.
func runSeed(t *testing.T, cfg Config) Result {
	cryptotest.SetGlobalRandom(t, cfg.Seed<<8|uint64(cfg.Voters))
	return Run(cfg)
}

func TestSim(t *testing.T) {
	var total Stats
	faults := faultProfile(t)
	runs := seedsToRun()
	for _, r := range runs {
		t.Run(fmt.Sprintf("voters=%d/seed=%d", r.voters, r.seed), func(t *testing.T) {
			res := runSeed(t, Config{Seed: r.seed, Voters: r.voters, Steps: *flagSteps, Faults: faults})
			if res.Err != nil {
				t.Fatalf("seed %d with %d voters failed; replay: %s\n%v", r.seed, r.voters, replayCommand(r), res.Err)
			}
			st := res.Stats
			t.Logf("%+v", st)
			total.Epochs += st.Epochs
			total.Crashes += st.Crashes
			total.LeaderCrashes += st.LeaderCrashes
			total.CrashesInSync += st.CrashesInSync
			total.TornRecordsLost += st.TornRecordsLost
			total.Partitions += st.Partitions
			total.Acked += st.Acked
			total.Superseded += st.Superseded
			total.SentEarly += st.SentEarly
			total.Predicted += st.Predicted
			total.Brokers.add(st.Brokers)
			total.Snapshots.add(st.Snapshots)
			total.Features.add(st.Features)
		})
	}
	t.Logf("total: %d epochs, %d crashes (%d of a leader, %d mid-fsync), %d torn records lost, %d partitions, %d messages sent before an fsync, %d writes acknowledged, %d superseded, %d offsets predicted",
		total.Epochs, total.Crashes, total.LeaderCrashes, total.CrashesInSync, total.TornRecordsLost, total.Partitions, total.SentEarly, total.Acked, total.Superseded, total.Predicted)
	b := total.Brokers
	t.Logf("brokers: %d brokers, %d crashes, %d isolations, %d controlled shutdowns (%d granted); committed: %d registrations, %d fences (%d expiry batches proposed), %d unfences; %d controller activations, %d resignations dropping %d answers; answers: %d DUPLICATE_BROKER_REGISTRATION (%d of them for a fenced registration), %d STALE_BROKER_EPOCH, %d NOT_CONTROLLER, %d fetch refusals; %d Metadata answers checked (%d with a fenced broker registered); topics: %d created, %d refused; %d committed leader changes (%d to no leader), %d preferred elections; ISR expansions: %d partitions granted, %d refused",
		b.Brokers, b.Crashes, b.Isolations, b.Shutdowns, b.Granted, b.Registrations, b.Fences, b.ExpiryBatches, b.Unfences, b.Activations, b.Resignations, b.AnswersDropped,
		b.Duplicates, b.DuplicatesOfFenced, b.SessionsLost, b.NotController, b.FetchRefusals, b.MetadataChecks, b.MetadataWithFenced,
		b.TopicsCreated, b.TopicsRefused, b.LeaderMoves, b.OfflinePartition, b.Elections, b.ISRGrown, b.ISRRefused)
	sn := total.Snapshots
	t.Logf("snapshots: %d written (%d writes cut short by a crash, %d files retired), %d compactions (%d requests lost to a crash, %d crashes mid-marker), %d WAL segments released; %d leader offers held back, %d downloads (%d failed, %d no longer held), %d installed from the leader, %d restarts from a snapshot; brokers: %d caught up by snapshot, %d asked for one that was gone",
		sn.Written, sn.WritesLost, sn.Retired, sn.Compactions, sn.CompactionsLost, sn.MarkerCrashes, sn.SegmentsReleased,
		sn.OffersHeld, sn.Downloads, sn.DownloadsFailed, sn.DownloadsNotFound, sn.Installs, sn.RestartsFromSnapshot, sn.BrokerLoads, sn.BrokerNotFound)
	fs := total.Features
	t.Logf("metadata.version: %d changes decided (%d refused); committed changes to levels 1–4: %v, %d from >= 3 to < 3, %d from 4 to < 4; downgrades: %d proposed (%d dropping ACLs or quotas), %d committed, %d acknowledged, %d lost, %d raced by a crash or partition of their leader; committed: %d ACLs created, %d dropped; %d client quotas set, %d removed, %d dropped; %d purge snapshots retiring %d files",
		fs.Decided, fs.Refused, fs.ToLevel[1:], fs.Below3, fs.Below4, fs.Downgrades, fs.DowngradesDropping, fs.DowngradesCommitted, fs.DowngradesAcked, fs.DowngradesLost, fs.DowngradesRaced,
		fs.ACLsCreated, fs.ACLsDropped, fs.QuotasSet, fs.QuotasRemoved, fs.QuotasDropped, fs.PurgeSnapshots, fs.PurgeRetired)
	// A change that quietly stops injecting some fault would leave every seed green and prove nothing.
	if len(runs) >= 50 && !t.Failed() {
		for what, n := range map[string]int{
			"leader crashes": total.LeaderCrashes, "crashes mid-fsync": total.CrashesInSync, "torn records lost": total.TornRecordsLost,
			"partitions": total.Partitions, "acknowledged writes": total.Acked, "superseded writes": total.Superseded,
			"messages sent before the leader's fsync": total.SentEarly, "predicted offsets": total.Predicted,
			"broker registrations": b.Registrations, "session-expiry fences": b.ExpiryBatches, "committed fences": b.Fences,
			"unfences": b.Unfences, "granted controlled shutdowns": b.Granted, "broker answers dropped with leadership": b.AnswersDropped,
			"registrations refused as duplicates": b.Duplicates, "log-follow refusals by standbys": b.FetchRefusals,
			"Metadata answers from an image with a fenced broker": b.MetadataWithFenced,
			"topics created": b.TopicsCreated, "topics refused": b.TopicsRefused, "leader changes": b.LeaderMoves,
			"partitions gone offline": b.OfflinePartition, "preferred elections": b.Elections,
			"ISR expansions granted": b.ISRGrown, "ISR expansions refused": b.ISRRefused,
		} {
			// Heavy faults leave too little calm for a partition to drift from its preferred leader and
			// back; the default profile, which CI runs, keeps that floor.
			if n == 0 && (what != "preferred elections" || *flagFaults == "default") {
				t.Errorf("%d seeds saw no %s: the simulation has stopped exercising them", len(runs), what)
			}
		}
		// Snapshots must happen often, not just once: each path below is where a bug would hide.
		// The floors are a fraction of what the 200 default seeds see, scaled to the run.
		// The heavy profile's controllers are active less often; it is held to a quarter of the floors.
		share := 1
		if *flagFaults == "heavy" {
			share = 4
		}
		per := func(n200 int) int { return max(1, n200*len(runs)/200/share) }
		for what, c := range map[string][2]int{
			"snapshots written":                        {sn.Written, per(5000)},
			"compactions":                              {sn.Compactions, per(3000)},
			"WAL segments released":                    {sn.SegmentsReleased, per(3000)},
			"snapshots installed from a leader":        {sn.Installs, per(100)},
			"restarts from a snapshot":                 {sn.RestartsFromSnapshot, per(200)},
			"snapshot writes cut short by a crash":     {sn.WritesLost, per(20)},
			"compactions lost to a crash":              {sn.CompactionsLost, per(5)},
			"snapshot downloads that failed":           {sn.DownloadsFailed, per(10)},
			"crashes in a snapshot marker's fsync":     {sn.MarkerCrashes, per(5)},
			"brokers caught up by snapshot":            {sn.BrokerLoads, per(50)},
			"snapshots retired by retention":           {sn.Retired, per(1000)},
			"snapshot offers held back for a download": {sn.OffersHeld, per(100)},
			// metadata.version, ACLs and quotas (invariants 18 and 19).
			"downgrades proposed":                               {fs.Downgrades, per(150)},
			"downgrades dropping ACLs or quotas":                {fs.DowngradesDropping, per(80)},
			"downgrades committed":                              {fs.DowngradesCommitted, per(120)},
			"downgrades acknowledged":                           {fs.DowngradesAcked, per(80)},
			"downgrades lost to a failover":                     {fs.DowngradesLost, per(20)},
			"downgrades raced by a crash or partition":          {fs.DowngradesRaced, per(50)},
			"committed downgrades from level 3 or 4 to below 3": {fs.Below3, per(80)},
			"committed downgrades from level 4 to below 4":      {fs.Below4, per(50)},
			"committed changes to level 3":                      {fs.ToLevel[3], per(100)},
			"committed changes to level 4":                      {fs.ToLevel[4], per(80)},
			"ACLs created":                                      {fs.ACLsCreated, per(500)},
			"ACLs dropped by a downgrade":                       {fs.ACLsDropped, per(250)},
			"client quotas set":                                 {fs.QuotasSet, per(130)},
			"client quotas dropped by a downgrade":              {fs.QuotasDropped, per(60)},
			"refused metadata.version changes":                  {fs.Refused, per(250)},
			"purge snapshots after a downgrade":                 {fs.PurgeSnapshots, per(300)},
		} {
			if c[0] < c[1] {
				t.Errorf("%d seeds saw %d %s, fewer than %d: the simulation has stopped exercising them", len(runs), c[0], what, c[1])
			}
		}
	}
}

// TestBrokenDiskIsCaught tests the checker: over a disk that ignores mustSync, a crash loses votes,
// terms and acknowledged entries, and some seed must then trip invariant 2 or 3. Other seeds trip
// invariant 1 first, or make Raft itself panic on a log that shrank under it; those prove less, so the
// search goes on until the log-level invariants have fired.
func TestBrokenDiskIsCaught(t *testing.T) {
	const maxSeeds = 60
	caught := map[int]int{}
	for seed := uint64(1); seed <= maxSeeds; seed++ {
		var res Result
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			res = runSeed(t, Config{Seed: seed, Voters: 3, Steps: 2000, BrokenDisk: true})
		})
		if res.Err == nil {
			continue
		}
		caught[res.Err.Invariant]++
		if inv := res.Err.Invariant; inv == 2 || inv == 3 {
			t.Logf("seed %d: caught: %s", seed, strings.SplitN(res.Err.Error(), "\n", 2)[0])
			return
		}
	}
	t.Fatalf("a disk that ignores mustSync never broke invariant 2 or 3 in %d seeds (violations by invariant: %v): the checker has gone blind", maxSeeds, caught)
}

// mustCatch runs a sabotage over seeds 1.. with 3 voters until a seed fails: it must fail on invariant,
// and within maxSeeds, or the checker that guards the sabotaged behaviour has gone blind.
func mustCatch(t *testing.T, sabotage Sabotage, invariant int, maxSeeds uint64, steps int) {
	t.Helper()
	for seed := uint64(1); seed <= maxSeeds; seed++ {
		var res Result
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			res = runSeed(t, Config{Seed: seed, Voters: 3, Steps: steps, Sabotage: sabotage})
		})
		if res.Err == nil {
			continue
		}
		if res.Err.Invariant != invariant {
			t.Fatalf("seed %d: want invariant %d, got %v", seed, invariant, res.Err)
		}
		t.Logf("seed %d: caught: %s", seed, strings.SplitN(res.Err.Error(), "\n", 2)[0])
		return
	}
	t.Fatalf("invariant %d never fired in %d seeds: its checker has gone blind", invariant, maxSeeds)
}

// TestBrokenBrokersAreCaught tests the broker invariants' checkers: each sabotage breaks one broker
// behaviour on purpose, and within a few seeds the invariant that guards it must fire, and no other.
func TestBrokenBrokersAreCaught(t *testing.T) {
	const maxSeeds = 10
	for _, tc := range []struct {
		name      string
		sabotage  Sabotage
		invariant int
	}{
		{"epoch off by one", SabotageEpochOffByOne, 7},
		{"double fence", SabotageDoubleFence, 8},
		{"Metadata lists fenced brokers", SabotageMetadataListsFenced, 9},
		{"heartbeats report a stale offset", SabotageStaleOffset, 10},
		{"fenced brokers keep leading", SabotageFencedKeepLeading, 12},
	} {
		t.Run(tc.name, func(t *testing.T) { mustCatch(t, tc.sabotage, tc.invariant, maxSeeds, 2000) })
	}
}

// TestBrokenSnapshotsAreCaught tests the snapshot invariants' checkers: a snapshot written without one
// of its image's records must trip invariant 14 when it is written, and a snapshot loaded without one
// (at a restart or from the leader) must trip invariant 15, within a few seeds and before anything else.
func TestBrokenSnapshotsAreCaught(t *testing.T) {
	const maxSeeds = 10
	for _, tc := range []struct {
		name      string
		sabotage  Sabotage
		invariant int
	}{
		{"snapshot written without a record", SabotageSnapshotDropsRecord, 14},
		{"snapshot loaded without a record", SabotageSnapshotLoadDropsRecord, 15},
	} {
		t.Run(tc.name, func(t *testing.T) { mustCatch(t, tc.sabotage, tc.invariant, maxSeeds, 2000) })
	}
}

// TestSimIsDeterministic runs one seed twice: a replay command is only worth printing if the replay
// does the same thing.
func TestSimIsDeterministic(t *testing.T) {
	var traces [2]Result
	for i := range traces {
		t.Run(fmt.Sprintf("run=%d", i), func(t *testing.T) {
			traces[i] = runSeed(t, Config{Seed: 7, Voters: 5, Steps: 1500})
		})
	}
	if traces[0] != traces[1] {
		t.Fatalf("one seed ran two ways:\n%+v\n%+v", traces[0], traces[1])
	}
}

// TestBrokenDowngradesAreCaught tests invariant 18's checker: an unsafe downgrade written as two batches
// (the removals, then the level once they have committed) must be caught when a failover lands between
// them, and one that leaves an ACL or quota behind must be caught before the image refuses it, within a
// few seeds and before anything else.
func TestBrokenDowngradesAreCaught(t *testing.T) {
	const maxSeeds = 30
	for _, tc := range []struct {
		name     string
		sabotage Sabotage
	}{
		{"downgrade split around a failover", SabotageSplitDowngrade},
		{"downgrade keeps one entry", SabotageDowngradeKeepsOne},
	} {
		t.Run(tc.name, func(t *testing.T) { mustCatch(t, tc.sabotage, 18, maxSeeds, 2500) })
	}
}
