// Package kafkaext holds this project's extensions to Kafka messages. They travel in tagged fields
// (KIP-482), which every Kafka client skips when it does not know them, so ordinary clients see
// ordinary answers and our own tools see a little more.
package kafkaext

import (
	"encoding/binary"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Tags in a DescribeCluster broker entry, numbered far above any tag Kafka itself uses.
const (
	// TagBrokerEpoch carries the broker's epoch (the offset of its registration) as a varint.
	TagBrokerEpoch uint32 = 10000
	// TagBrokerFlags carries one byte of flags; flagInControlledShutdown is its only bit so far.
	TagBrokerFlags uint32 = 10001
)

const flagInControlledShutdown = 1

// SetBrokerState adds a broker's epoch and controlled-shutdown state to its DescribeCluster entry.
func SetBrokerState(b *kmsg.DescribeClusterResponseBroker, epoch int64, inControlledShutdown bool) {
	b.UnknownTags.Set(TagBrokerEpoch, binary.AppendVarint(nil, epoch))
	var flags byte
	if inControlledShutdown {
		flags |= flagInControlledShutdown
	}
	b.UnknownTags.Set(TagBrokerFlags, []byte{flags})
}

// BrokerState reads what SetBrokerState wrote; ok is false when the server sent nothing (a Kafka
// broker, or an older node).
func BrokerState(b *kmsg.DescribeClusterResponseBroker) (epoch int64, inControlledShutdown, ok bool) {
	b.UnknownTags.Each(func(tag uint32, val []byte) {
		switch tag {
		case TagBrokerEpoch:
			if v, n := binary.Varint(val); n > 0 {
				epoch, ok = v, true
			}
		case TagBrokerFlags:
			if len(val) == 1 {
				inControlledShutdown = val[0]&flagInControlledShutdown != 0
			}
		}
	})
	return epoch, inControlledShutdown, ok
}
