// Package supervisor owns plugin processes: it starts each configured
// provider or node binary as a pool of instances, hands ready instances to
// the session runner, notices when one dies, replaces it, and stops them all
// (sockets and temp dirs included) on shutdown. It never decides what a
// failure means for a turn: it reports typed failures and the kernel's
// policy decides.
package supervisor
