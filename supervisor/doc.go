// Package supervisor owns plugin processes. Each provider version runs as
// a Pool of Instances kept warm (a crash leaves a ready standby), each
// instance in its own cgroup envelope when isolation is available. An
// instance moves starting -> ready -> draining -> stopped, or to crashed;
// a death becomes a typed *CrashError (signal, exit, stream, handshake,
// protocol, hung, oom, pids) that unwraps to the kernel's failure kind, so
// in-flight invocations fail typed and the kernel's frozen policy decides
// retry, fallback or abort. Restarts follow an OTP-style intensity/period
// with backoff and jitter on an injected Clock; past it the provider's
// circuit opens. A cancelled invocation that does not end within the kill
// grace, or an instance failing its health checks, is killed as hung.
//
// The Runtime binds providers to pools for the kernel (BindingSource),
// hot-upgrades a provider by starting the new version's pool beside the
// old one and draining the old one once no open turn is bound to it, and
// serves the admin socket (status, upgrade, reload). RunLoad and RunChaos
// drive many concurrent scripted sessions, with faults for chaos.
//
// Every transport reaches a session through ServeConn (one
// transports.Conn, one session): the file transport of rspp run, the
// load's scripted connections of rspp serve --input, and the WebSocket
// connections of rspp serve --listen. A live connection's agent audio is
// played out in real time by a Playout, paced for all sessions by one
// Pacer, behind the session's one fence gate; its turns end when their
// audio has played (kernel AwaitPlayback), so the user can barge in.
//
// It never decides what a failure means for a turn: it reports typed
// failures and the kernel's policy decides. It never leaves a process
// behind: plugins die with the runtime (Pdeathsig from the locked spawn
// thread, process groups, envelopes), and a start sweeps what a crashed
// run left.
package supervisor
