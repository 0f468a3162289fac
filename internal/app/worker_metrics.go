package app

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pgrollup/pgrollup/jobs/cache"
	"github.com/pgrollup/pgrollup/jobs/remote"
)

// The query-serving metrics of a worker. They are the worker's side of the
// proxy's rollup route, so their names say worker: pgrollup_queries_total and
// the other metrics of the README's table count statements at the proxies.
var (
	workerQueriesDesc = prometheus.NewDesc("pgrollup_worker_queries_total",
		"Rollup queries this worker was sent by proxies, by result: completed (answered whole), failed (ended with an error), cancelled (by the proxy, its silence or shutdown), busy (refused at worker.concurrency; the proxy asked another worker), other_release (refused: the proxy runs another release).",
		[]string{"result"}, nil)
	workerRunningDesc = prometheus.NewDesc("pgrollup_worker_queries_running",
		"Rollup queries this worker is answering now.", nil, nil)
	workerRowsDesc = prometheus.NewDesc("pgrollup_worker_rows_sent_total",
		"Rows this worker sent to proxies in answers.", nil, nil)
	cacheRequestsDesc = prometheus.NewDesc("pgrollup_worker_cache_requests_total",
		"Parquet files this worker's queries asked its cache for, by result: hit (cached), miss (started a download), wait (joined a download in progress).",
		[]string{"result"}, nil)
	cacheDownloadsDesc = prometheus.NewDesc("pgrollup_worker_cache_downloads_total",
		"Downloads of Parquet files from storage into this worker's cache, by result: success or error.",
		[]string{"result"}, nil)
	cacheEvictionsDesc = prometheus.NewDesc("pgrollup_worker_cache_evictions_total",
		"Files evicted from this worker's cache to stay within worker.cache_max_bytes.", nil, nil)
	cacheFilesDesc = prometheus.NewDesc("pgrollup_worker_cache_files",
		"Parquet files in this worker's cache.", nil, nil)
	cacheBytesDesc = prometheus.NewDesc("pgrollup_worker_cache_bytes",
		"Bytes of the Parquet files in this worker's cache.", nil, nil)
)

// queryCollector reads the query server's and the cache's counters at scrape
// time, so that the hot path keeps its plain atomic counters.
type queryCollector struct {
	queries func() remote.ServerStats
	cache   func() cache.Stats
}

func newQueryCollector(queries func() remote.ServerStats, cache func() cache.Stats) *queryCollector {
	return &queryCollector{queries: queries, cache: cache}
}

// Describe implements prometheus.Collector.
func (c *queryCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{workerQueriesDesc, workerRunningDesc, workerRowsDesc,
		cacheRequestsDesc, cacheDownloadsDesc, cacheEvictionsDesc, cacheFilesDesc, cacheBytesDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector. Every series exists from the
// first scrape, at zero, so that rate() sees a worker's first query.
func (c *queryCollector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v int64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v))
	}
	q := c.queries()
	counter(workerQueriesDesc, q.Completed, "completed")
	counter(workerQueriesDesc, q.Failed, "failed")
	counter(workerQueriesDesc, q.Cancelled, "cancelled")
	counter(workerQueriesDesc, q.Busy, "busy")
	counter(workerQueriesDesc, q.Refused, "other_release")
	gauge(workerRunningDesc, q.Active)
	counter(workerRowsDesc, q.Rows)

	s := c.cache()
	counter(cacheRequestsDesc, s.Hits, "hit")
	counter(cacheRequestsDesc, s.Misses, "miss")
	counter(cacheRequestsDesc, s.Waits, "wait")
	counter(cacheDownloadsDesc, s.Downloads, "success")
	counter(cacheDownloadsDesc, s.Failures, "error")
	counter(cacheEvictionsDesc, s.Evictions)
	gauge(cacheFilesDesc, s.Files)
	gauge(cacheBytesDesc, s.Bytes)
}
