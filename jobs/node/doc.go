// Package node is a process's connection to the job system: the NATS server
// embedded in the single binary (JetStream files under data_dir/nats, no
// port opened) or an external one at nats.url, dialled with endless
// reconnects, and the JetStream objects every process needs, which whoever
// connects first creates: the build queue's stream and the catalog's bucket.
package node
