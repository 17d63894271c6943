-- Every process's metrics show how many nodes are in each state (ironwork_nodes), and counting
-- them reads the whole nodes table: at 100,000 nodes on PostgreSQL, 100 to 200 ms (with two
-- parallel workers) per scrape, for each process scraped. The last count is kept here (one row,
-- id 1) with the time it was made, so that the processes of a deployment count once per
-- metrics_count_interval between them and the scrapes in between read this row
-- (sqlstore.Store.NodeCounts, docs/metrics.md).
CREATE TABLE node_counts (
    id INTEGER PRIMARY KEY,
    counted_at BIGINT NOT NULL,
    counts TEXT NOT NULL
);
