package broker

// DescribeClientQuotas (key 48), versions 0–1: the client quotas whose entities match a filter,
// answered from the broker's own image, which may lag the controller's by a fetch, as a Kafka broker
// answers from its metadata cache. v1 is flexible and changes nothing else.
//
// The answer is metadatalog.Image.DescribeClientQuotasResponse, which controllers give too; below
// metadata.version 1.1-IV1 (level 4) it is UNSUPPORTED_VERSION naming the level needed. The quotas
// are stored and described; nothing enforces them.

const describeClientQuotasMaxVersion = 1
