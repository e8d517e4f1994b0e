// Package testutil holds the helpers tests of every layer share: a raw
// Kafka protocol client, the require-or-skip checks for real servers and
// clients, a bounded polling wait, a test logger and the TestMain that
// builds the floe binary.
//
// It must never import internal/agent or anything above it, so that the
// packages below the agent (metastore, objstore, cache, jobs …) can use
// it; starting an in-process agent lives in internal/testutil/agenttest.
package testutil
