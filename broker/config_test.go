package broker

import (
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	good := func() Config {
		return Config{
			NodeID: 1, ClusterID: "cid", Controllers: map[int32]string{1: "127.0.0.1:9093"},
			Listeners: []Listener{{Name: "PLAINTEXT", Host: "localhost", Port: 9092}},
		}
	}
	if err := good().Validate(); err != nil {
		t.Fatal(err)
	}
	for want, mutate := range map[string]func(*Config){
		"negative":          func(c *Config) { c.NodeID = -1 },
		"cluster id":        func(c *Config) { c.ClusterID = "" },
		"no controllers":    func(c *Config) { c.Controllers = nil },
		"no address":        func(c *Config) { c.Controllers[2] = "" },
		"no listeners":      func(c *Config) { c.Listeners = nil },
		"has no name":       func(c *Config) { c.Listeners[0].Name = "" },
		"configured twice":  func(c *Config) { c.Listeners = append(c.Listeners, c.Listeners[0]) },
		"outside 1-65535":   func(c *Config) { c.Listeners[0].Port = 70000 },
		"security protocol": func(c *Config) { c.Listeners[0].SecurityProtocol = "TLS" },
		"is invalid":        func(c *Config) { c.SupportedMetadataVersion = [2]int16{4, 2} },
	} {
		c := good()
		mutate(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v", want, err)
		}
	}
}
