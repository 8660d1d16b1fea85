// Package deploy holds groupgate's deployment files and the tests that check
// them: the container image's build (../Dockerfile and ../.dockerignore), a
// hardened systemd unit (systemd/groupgate.service) and an example
// configuration for a real TechPass tenant (config.example.yaml).
//
// No Docker engine or systemd is needed to check them. The tests parse the
// Dockerfile and lint its stages, user, static build and entrypoint; build
// the server the way the image does and check that the binary is static;
// check that .dockerignore keeps every file the build needs; load the example
// configuration through the real loader and validator; and check the unit's
// hardening and that it loads exactly the credentials the configuration
// names. The files refer to each other (ports, paths, credential names), and
// the tests keep them in step.
//
// The package has no Go code of its own.
package deploy
