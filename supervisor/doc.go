// Package supervisor is the Runtime: it starts a pool (supervisor/pool) per
// provider version, binds the kernel's providers to pools for each session
// (BindingSource), hot-upgrades a provider by starting the new version's
// pool beside the old one and draining the old one once no open turn is
// bound to it, admits or refuses sessions and turns against capacity and
// tenant quotas (RK-10), holds the placement lease (RK-09) and seals the
// timeline of a dead run.
//
// Every transport reaches a session through ServeConn (one
// transports.Conn, one session, driven by supervisor/session): the file
// transport of rspp run, the scripted connections of supervisor/load, the
// WebSocket and LiveKit connections of rspp serve. A live connection's
// agent audio is played out in real time by a Playout, paced for all
// sessions by one Pacer, behind the session's one fence gate; its turns
// end when their audio has played (kernel AwaitPlayback), so the user can
// barge in.
//
// Its rooms: pool (processes, instances, restarts), session (the session
// driver), builtin (builtin: nodes run in this process, opened like
// plugin calls), load (load and chaos harnesses), app (rspp run / serve),
// admin (the admin socket's server and client), config, telemetry,
// authority. The supervisor package imports pool, session, builtin,
// config, telemetry and authority; load, app and admin import it, never
// the other way. No package here imports a providers/... package.
package supervisor
