// Package deploy holds groupgate's deployment files and the tests that check
// them: the container image's build (../Dockerfile and ../.dockerignore), a
// hardened systemd unit (systemd/groupgate.service), an example
// configuration for a real TechPass tenant (config.example.yaml), and two
// examples of several replicas sharing one PostgreSQL database: a Kubernetes
// manifest (kubernetes/groupgate.yaml) and a compose file with PostgreSQL and
// the TechPass simulator (compose/compose.yaml, with the configuration it
// mounts and the simulator's image).
//
// No Docker engine, Kubernetes cluster or systemd is needed to check them.
// The tests parse the Dockerfiles and lint their stages, user, static build
// and entrypoint; build the server the way the image does and check that the
// binary is static; check that .dockerignore keeps every file the build
// needs; load every configuration through the real loader and validator;
// check the unit's hardening and that it loads exactly the credentials the
// configuration names; and check that the replica examples run the agreed
// number of replicas, probe the real routes, keep secrets in read-only files
// only, run as locked down as the image, and name each other's services,
// ids and secrets consistently. The files refer to each other (ports, paths,
// credential names), and the tests keep them in step.
//
// The package has no Go code of its own.
package deploy
