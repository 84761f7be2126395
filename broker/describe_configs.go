package broker

// DescribeConfigs (key 32), versions 0–4: the configs of topics and of this broker, answered from the
// broker's own image. v1 added each config's Source and, on request, its synonyms (v0 has IsDefault
// instead); v2 changes only throttling; v3 adds each config's type and, on request, its
// documentation; v4 is flexible.
//
// metadatalog.Image.DescribeConfigs resolves values and sources as this broker sees them, its own
// dynamic settings included; this file only turns the answer into Kafka's wire form. For the BROKER
// resource of this broker's id Kafka also lists the broker's static configuration; here the known
// dynamic broker configs are listed with their effective values, since a node's configuration file
// holds none of them. Another broker's id is refused, as Kafka refuses it: clients ask each broker
// about itself.

const describeConfigsMaxVersion = 4
