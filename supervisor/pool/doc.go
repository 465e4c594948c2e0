// Package pool owns plugin processes. Each provider version runs as a Pool
// of Instances kept warm (a crash leaves a ready standby), each instance in
// its own cgroup envelope when isolation is available. An instance moves
// starting -> ready -> draining -> stopped, or to crashed; a death becomes
// a typed *CrashError (signal, exit, stream, handshake, protocol, hung,
// oom, pids, flood) that unwraps to the kernel's failure kind, so in-flight
// invocations fail typed and the kernel's frozen policy decides retry,
// fallback or abort. Restarts follow an OTP-style intensity/period with
// backoff and jitter on an injected Clock; past it the pool's circuit
// opens. A cancelled invocation that does not end within the kill grace,
// or an instance failing its health checks, is killed as hung. A pool of
// min < max grows with its load and drains back; new invocations go to the
// least loaded ready instance.
//
// It never decides what a failure means for a turn, and never leaves a
// process behind: plugins die with the runtime (Pdeathsig from the locked
// spawn thread, process groups, envelopes).
//
// It may import kernel/..., externalnode, isolation and supervisor/config;
// it must not import the supervisor package or its other rooms.
package pool
