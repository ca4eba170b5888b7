module github.com/berth-project/berth

go 1.26.8

require (
	github.com/opencontainers/go-digest v1.0.0
	github.com/opencontainers/image-spec v1.1.1
	github.com/opencontainers/runtime-spec v1.3.0
	golang.org/x/sys v0.50.0
)

require (
	github.com/moby/profiles/seccomp v0.3.0
	github.com/seccomp/libseccomp-golang v0.11.1
)

require (
	github.com/coreos/go-systemd/v22 v22.7.0
	github.com/godbus/dbus/v5 v5.2.4
)
