// Package cli is groupgate's command line for project teams, tenant-admins
// and operators: `groupgate groups create billing`, `groupgate operations
// wait op_...`, `groupgate keys issue ...`. It is a thin layer over the typed
// client in package client, so it speaks exactly the contract in
// openapi.yaml and follows it when the client is regenerated.
//
// The credential (an API key or a JWT) comes only from a file named by
// --key-file or GROUPGATE_KEY_FILE (refused when others may read it, as ssh
// does) or from the GROUPGATE_KEY variable, never from a flag value, which
// would show in the process list and the shell history; it is never
// printed, and goes over plain http only to this machine unless
// --insecure-http says otherwise; redirects are not followed. Output is an
// aligned table, or with -o json the API's own JSON (indented; `keys issue
// --out` re-encodes it without the "key" member, which went to the file).
// Text from the server is stripped of control characters before it reaches
// the terminal. Errors go to stderr, and the exit status says what kind of
// failure happened (see ExitOK and the codes after it), so scripts can act
// on it.
//
// Run is the whole program; cmd/groupgate calls it for the command names
// IsCommand recognises. It holds no global state: everything it touches
// comes in through Env.
package cli
