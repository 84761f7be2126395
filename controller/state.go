package controller

import (
	"fmt"

	"github.com/kraftgo/kraft/api/metadatapb"
	"github.com/kraftgo/kraft/metadatalog"
	"google.golang.org/protobuf/proto"
)

// parkedWrite is a response waiting for its batch to commit.
type parkedWrite struct {
	offset uint64
	// complete is told whether the batch committed; on false the request failed with NOT_CONTROLLER.
	complete func(committed bool)
}

// quorumState is the controller's pure core: the committed and speculative images, who leads, and the
// writes waiting to commit. It performs no I/O; the event loop feeds it the log's events and acts on
// what it returns, and unit tests drive it the same way.
type quorumState struct {
	nodeID uint64

	// committed is the image at the high watermark; speculative adds this leader's uncommitted writes,
	// so each new request sees the ones before it.
	committed   *metadatalog.Image
	speculative *metadatalog.Image

	leader, epoch uint64
	// active: this node leads epoch and has applied through the first entry of that epoch, so its image
	// holds everything any earlier leader committed.
	active bool
	// nextOffset is where this active controller's next batch will land: it is the only writer of its
	// epoch, and its epoch's first entry was the last in the log when it activated.
	nextOffset uint64
	parked     []parkedWrite
	// speculated holds, in offset order, the images this active controller built from its own
	// uncommitted batches. When a batch commits, the image its speculative Apply produced is the
	// committed image (see reuse), so the commit costs no second decode and Apply.
	speculated []speculation
	// publish, when set, makes the committed image visible to readers; completeParked calls it before
	// answering writers.
	publish func(*metadatalog.Image)
}

// speculation is one batch this active controller applied ahead of its commit: applying the batch
// written at (offset, epoch) to base gave image.
type speculation struct {
	offset, epoch uint64
	base, image   *metadatalog.Image
}

// newQuorumState starts from img: the image of the snapshot the log opened at, or an empty one.
func newQuorumState(nodeID uint64, img *metadatalog.Image) *quorumState {
	return &quorumState{nodeID: nodeID, committed: img, speculative: img}
}

// restore replaces the image with a snapshot's, installed from the leader because this node was too
// far behind to catch up from the log. Only a follower installs one, so nothing is parked.
func (s *quorumState) restore(img *metadatalog.Image) {
	if s.active {
		s.resign()
	}
	s.committed, s.speculative, s.speculated = img, img, nil
}

// leaderChanged records a new leader. If this node was active and no longer is, every parked write
// fails and the speculative image falls back to the committed one: those writes may yet commit under
// the next leader, but this node can no longer vouch for them.
func (s *quorumState) leaderChanged(leader, epoch uint64) {
	if s.active && (leader != s.nodeID || epoch != s.epoch) {
		s.resign()
	}
	s.leader, s.epoch = leader, epoch
}

func (s *quorumState) resign() {
	s.active = false
	for _, p := range s.parked {
		p.complete(false)
	}
	s.parked = nil
	s.speculated = nil
	s.speculative = s.committed
}

// reuse returns the image that committing e yields if this controller already built it: e is the batch
// it wrote at that offset in its epoch, and the committed image is the one that batch was applied to.
// Raft writes one entry per (offset, epoch), and only this node writes in the epoch it leads; a batch
// that did not land where it was expected resigns before its commit is seen (Controller.write,
// metadatalog.ProposalFailure). Applying is deterministic, so the image is the one a replay gives.
// Anything else is applied from the log as a follower would.
func (s *quorumState) reuse(e metadatalog.Entry) (*metadatalog.Image, bool) {
	for len(s.speculated) > 0 && s.speculated[0].offset < e.Offset {
		// Cannot happen while the chain holds (our writes commit in order); never reuse past a gap.
		s.speculated[0] = speculation{}
		s.speculated = s.speculated[1:]
	}
	if len(s.speculated) == 0 || s.speculated[0].offset != e.Offset {
		return nil, false
	}
	sp := s.speculated[0]
	s.speculated[0] = speculation{}
	s.speculated = s.speculated[1:]
	if !s.active || sp.epoch != e.Epoch || sp.base != s.committed {
		return nil, false
	}
	return sp.image, true
}

// applyCommitted replays committed entries. It reports whether this node just became active; the
// caller must then write the bootstrap records if the log has none. An entry that cannot be applied is
// returned as an error and must stop the node.
func (s *quorumState) applyCommitted(entries []metadatalog.Entry) (activated bool, err error) {
	for _, e := range entries {
		if next, ok := s.reuse(e); ok {
			s.committed = next
			s.completeParked(e.Offset)
			continue
		}
		var batch *metadatapb.RecordBatch
		if len(e.Data) > 0 {
			batch = &metadatapb.RecordBatch{}
			if err := proto.Unmarshal(e.Data, batch); err != nil {
				return activated, fmt.Errorf("%w: the batch at offset %d does not decode: %v", metadatalog.ErrCorruptLog, e.Offset, err)
			}
		}
		next, err := s.committed.Apply(e.Offset, e.Epoch, batch)
		if err != nil {
			return activated, err
		}
		s.committed = next
		if s.active {
			s.completeParked(e.Offset)
			continue
		}
		s.speculative = s.committed
		if s.leader == s.nodeID && e.Epoch == s.epoch {
			// The first entry of our own epoch has been applied, so everything before it has too.
			s.active, activated = true, true
			s.nextOffset = e.Offset + 1
		}
	}
	return activated, nil
}

// completeParked answers the writes parked at or before offset, which has committed. Our own writes
// commit in order, so the speculative image already holds them.
func (s *quorumState) completeParked(offset uint64) {
	if s.publish != nil && len(s.parked) > 0 && s.parked[0].offset <= offset {
		// Readers must see the commit before any writer hears of it, or a client that reads right
		// after its write is answered could miss it.
		s.publish(s.committed)
	}
	for len(s.parked) > 0 && s.parked[0].offset <= offset {
		s.parked[0].complete(true)
		s.parked = s.parked[1:]
	}
	if len(s.parked) == 0 {
		s.speculative = s.committed
	}
}

// wrote records a batch this active controller is appending at nextOffset: the speculative image
// advances at once, so the next request sees it, and complete waits for the commit.
func (s *quorumState) wrote(batch *metadatapb.RecordBatch, complete func(bool)) (offset uint64, err error) {
	offset = s.nextOffset
	next, err := s.speculative.Apply(offset, s.epoch, batch)
	if err != nil {
		return 0, err
	}
	s.speculated = append(s.speculated, speculation{offset: offset, epoch: s.epoch, base: s.speculative, image: next})
	s.speculative = next
	s.nextOffset++
	s.parked = append(s.parked, parkedWrite{offset: offset, complete: complete})
	return offset, nil
}

// afterPending parks complete behind every write still waiting to commit (at once if none is), for an
// answer that wrote nothing but describes what those writes did.
func (s *quorumState) afterPending(complete func(bool)) {
	if len(s.parked) == 0 {
		complete(true)
		return
	}
	s.parked = append(s.parked, parkedWrite{offset: s.parked[len(s.parked)-1].offset, complete: complete})
}
