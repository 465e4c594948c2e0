// Package bench is the benchmark driver behind `make bench`. It owns the
// measurements that need more than one process (the frame round trip
// through the real externalnode path, through a bare go-plugin gRPC stream
// and through a raw unix socket), folds in the standard output of the Go
// benchmarks other packages write, and writes bench/results.json.
//
// Speed targets are judged as ratios against baselines measured in the same
// run, never as absolute timings: the machines are shared and noisy. This
// package must therefore never assert a timing; it only measures and
// reports. Every process it starts is killed and reaped before it returns,
// and every socket directory it makes is removed.
package bench
