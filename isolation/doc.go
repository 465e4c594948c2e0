// Package isolation keeps a hostile or buggy plugin process from hurting
// anything but itself.
//
// It owns three things:
//
//   - Envelopes: one cgroup per plugin instance (v1 or v2), nested under the
//     runtime's own cgroup, with memory, CPU, pids (and io where the kernel
//     offers it) limits, per-instance stats, attribution of OOM kills and
//     pids-limit hits as typed *LimitError, removal on Close, and a Sweep of
//     envelopes left behind by a crashed runtime.
//   - The gated start: a RunnerFunc for go-plugin that starts the sandbox
//     entry point (the runtime binary re-executed, see MaybeSandboxMain)
//     blocked on a pipe, places its pid in the envelope, then releases it, so
//     no plugin instruction ever runs outside its limits. The entry point
//     applies rlimits, drops capabilities, sets no_new_privs, landlock and
//     seccomp, and execs the plugin binary through a file descriptor the
//     host already verified against go-plugin's SecureConfig.
//   - Profiles: "trusted" (envelope only) and "tenant" (limits plus new
//     user/net/pid/mount/ipc/uts namespaces, read-only filesystem except a
//     scratch dir, seccomp, no host environment, no inherited descriptors),
//     with per-tenant overrides.
//
// It must never run plugin code before placement, never widen what a profile
// allows, and never touch cgroups it did not create (Sweep only removes
// envelopes whose owning runtime process is gone).
//
// Policies apply to the single OS thread that execs the plugin (landlock,
// seccomp, capabilities and no_new_privs are per-thread and survive execve),
// so the entry point needs no all-threads machinery (psx) and works in a
// binary built with or without cgo.
//
// It is a leaf: it imports nothing else of this module.
package isolation
