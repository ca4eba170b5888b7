// Package registry runs a real registry for tests: Debian's
// docker-registry (distribution 2.8) on 127.0.0.1 with a free port and its
// storage, configuration and log in the test's temporary directory.
//
// Start waits until /v2/ answers and stops and reaps the process when the
// test ends, printing the end of its log if the test failed. Options
// protect it with basic auth (an htpasswd file) or docker's token auth (an
// in-process token server signing ES256 JWTs with a key whose
// self-signed certificate the registry trusts). Push seeds it from an OCI
// image layout (test/fixture's busybox image) with go-containerregistry,
// a client independent of berth's.
//
// A missing docker-registry binary skips the test, unless
// BERTH_TEST_REQUIRE_FIXTURES is set, when it fails it (as test/fixture
// does). Nothing here touches anything but 127.0.0.1 and the temporary
// directory.
//
// Imported only by tests.
package registry
