// Package image is the conductor's image cache: it fetches deploy kernels,
// deploy ramdisks and instance images once per source (URL and checksum),
// verifies them, keeps them as master files in one directory, and hands out
// per-node copies as hard links into other directories (a node's boot or
// HTTP directory). A master whose link count is above one is in use by a node
// and is never removed by Clean.
//
// It owns the files in Config.Dir and nothing else: destinations passed to
// Link are trusted caller paths. It must not convert image formats, talk to
// Glance or Swift, or know about nodes; callers map nodes to destinations.
package image
