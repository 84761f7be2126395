package broker

// DescribeAcls (key 29), versions 0–3: the bindings a filter matches, answered from the broker's own
// image, which may lag the controller's by a fetch, as a Kafka broker's authorizer does. v1 added the
// filter's ResourcePatternType (KIP-290; v0 means LITERAL) and each resource's; v2 is flexible; v3
// adds the USER resource type (KIP-554).
//
// The answer is metadatalog.Image.DescribeACLsResponse, which controllers give too. Unlike Kafka's
// brokers without an authorizer, this one does not answer SECURITY_DISABLED: the ACLs are stored in
// the metadata log and described, though nothing enforces them.

const describeACLsMaxVersion = 3
