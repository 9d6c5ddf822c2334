// Package labtest tests the local etcd lab (scripts/lab.sh) and the etcd demo
// (scripts/demo-etcd.sh) end to end, with real etcd members on loopback.
package labtest
