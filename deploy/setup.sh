#!/usr/bin/env bash
# Idempotent local-stack setup, run by `npm run setup` (and before `npm start` / `npm test`).
# Makes sure nats-server and kubectl (Debian packages), Java >= 17 and Maven are present, and that Cassandra's jars
# have been resolved from Maven Central into deploy/cassandra/lib. Prints "setup: ok" when nothing was
# missing; exits 1 with a message naming what to install when it cannot fix something itself.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MIN_JAVA_MAJOR=17
did_work=0

fail() {
  echo "setup: $*" >&2
  exit 1
}

have_nats() {
  command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ]
}

# --- nats-server -------------------------------------------------------------------------------------
if ! have_nats; then
  if [ "$(id -u)" -eq 0 ]; then
    as_root=()
  elif command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then
    as_root=(sudo -n)
  else
    fail "nats-server is missing. Install the Debian package as root: apt-get install -y nats-server"
  fi
  command -v apt-get >/dev/null 2>&1 ||
    fail "nats-server is missing and apt-get is not available. Install nats-server (v2.9+) and put it on PATH."
  echo "setup: installing the Debian package nats-server"
  "${as_root[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq nats-server >/dev/null
  have_nats || fail "apt-get install nats-server finished but nats-server is still not found"
  did_work=1
fi

# --- kubectl (renders deploy/k8s in test/unit/k8s.test.ts: `kubectl kustomize`) ------------------------
# Any kubectl will do; Debian's kubernetes-client (1.20, kustomize v2) is the one the package registry
# offers, and deploy/k8s keeps to the kustomize fields it renders.
if ! command -v kubectl >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ]; then
    as_root=()
  elif command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then
    as_root=(sudo -n)
  else
    fail "kubectl is missing. Install the Debian package as root: apt-get install -y kubernetes-client"
  fi
  command -v apt-get >/dev/null 2>&1 ||
    fail "kubectl is missing and apt-get is not available. Install kubectl and put it on PATH."
  echo "setup: installing the Debian package kubernetes-client (kubectl)"
  "${as_root[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq kubernetes-client >/dev/null
  command -v kubectl >/dev/null 2>&1 || fail "apt-get install kubernetes-client finished but kubectl is still not found"
  did_work=1
fi

# --- Java and Maven ----------------------------------------------------------------------------------
command -v java >/dev/null 2>&1 ||
  fail "java is missing. Install a Java ${MIN_JAVA_MAJOR}+ runtime (Debian: apt-get install -y openjdk-17-jre-headless)"
# `java -version` prints e.g.: openjdk version "17.0.15" 2025-04-15   (or "1.8.0_392" for Java 8)
java_version="$(java -version 2>&1 | sed -n 's/.*version "\([^"]*\)".*/\1/p' | head -n 1)"
java_major="${java_version%%.*}"
if [ "$java_major" = "1" ]; then
  java_major="$(echo "$java_version" | cut -d. -f2)"
fi
case "$java_major" in
  '' | *[!0-9]*) fail "could not read the Java version from 'java -version' (got '${java_version}')" ;;
esac
[ "$java_major" -ge "$MIN_JAVA_MAJOR" ] ||
  fail "Java ${MIN_JAVA_MAJOR}+ is required, found ${java_version}. Install openjdk-17-jre-headless (or newer)"

command -v mvn >/dev/null 2>&1 ||
  fail "mvn is missing. Install Maven to resolve Cassandra's jars (Debian: apt-get install -y maven)"

# --- Cassandra jars ----------------------------------------------------------------------------------
shopt -s nullglob
cassandra_jars=("$ROOT"/deploy/cassandra/lib/cassandra-all-*.jar)
if [ "${#cassandra_jars[@]}" -eq 0 ]; then
  echo "setup: resolving Cassandra from Maven Central into deploy/cassandra/lib (first time only)"
  mvn -q -B -f "$ROOT/deploy/cassandra/pom.xml" package
  cassandra_jars=("$ROOT"/deploy/cassandra/lib/cassandra-all-*.jar)
  [ "${#cassandra_jars[@]}" -gt 0 ] || fail "mvn finished but deploy/cassandra/lib has no cassandra-all jar"
  did_work=1
fi

if [ "$did_work" -eq 1 ]; then
  echo "setup: ok (installed what was missing)"
else
  echo "setup: ok"
fi
