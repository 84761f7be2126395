// Package bench measures the quorum against DESIGN.md's targets on this machine, with the floors those
// targets are stated in (fsync latency, loopback round trip) measured in the same run, side by side.
//
// Run it with `make bench`; the figures and the method are recorded in BENCHMARKS.md. Everything lives
// in test files: the package has no code of its own.
package bench
