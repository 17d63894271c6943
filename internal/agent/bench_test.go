package agent

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Benchmarks write a GPT image of AGENT_BENCH_MIB MiB (default 512, about
// 60% random data, the rest holes) from a loopback HTTP server to a file
// target on the same filesystem, and compare with curl | dd.
var (
	benchOnce sync.Once
	benchImgs *benchImages
	benchErr  error
)

type benchImages struct {
	dir, raw, qcow2 string
	size            int64
	sums            map[string]string
}

func benchFixture(b *testing.B) *benchImages {
	b.Helper()
	requireTools(b, "qemu-img", "sgdisk", "curl", "dd")
	benchOnce.Do(func() {
		mib := int64(512)
		if v, err := strconv.ParseInt(os.Getenv("AGENT_BENCH_MIB"), 10, 64); err == nil && v >= 64 {
			mib = v
		}
		dir, err := os.MkdirTemp("/var/tmp", "agent-bench-")
		if err != nil {
			benchErr = err
			return
		}
		bi := &benchImages{dir: dir, raw: filepath.Join(dir, "bench.raw"), qcow2: filepath.Join(dir, "bench.qcow2"), size: mib << 20, sums: map[string]string{}}
		if out, err := runErr("truncate", "-s", fmt.Sprint(bi.size), bi.raw); err != nil {
			benchErr = fmt.Errorf("%v: %s", err, out)
			return
		}
		if out, err := runErr("sgdisk", "-n", "1:2048:+64M", "-n", "2:0:0", bi.raw); err != nil {
			benchErr = fmt.Errorf("%v: %s", err, out)
			return
		}
		var ranges [][2]int64
		for off := int64(1 << 20); off+(6<<20) < bi.size-(1<<20); off += 10 << 20 {
			ranges = append(ranges, [2]int64{off, 6 << 20})
		}
		if err := scribble(bi.raw, 3, ranges); err != nil {
			benchErr = err
			return
		}
		if out, err := runErr("qemu-img", "convert", "-f", "raw", "-O", "qcow2", bi.raw, bi.qcow2); err != nil {
			benchErr = fmt.Errorf("%v: %s", err, out)
			return
		}
		for _, f := range []string{bi.raw, bi.qcow2} {
			if bi.sums[f], err = sha256File(f); err != nil {
				benchErr = err
				return
			}
		}
		benchImgs = bi
	})
	if benchErr != nil {
		b.Fatalf("bench fixture: %v", benchErr)
	}
	return benchImgs // kept for the whole run; TestMain removes it
}

func benchTarget(b *testing.B, size int64) string {
	b.Helper()
	dir, err := os.MkdirTemp("/var/tmp", "agent-bench-target-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	p := filepath.Join(dir, "target.img")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.Truncate(p, size); err != nil {
		b.Fatal(err)
	}
	return p
}

func benchWrite(b *testing.B, file string) {
	bi := benchFixture(b)
	srv := serveFiles(b, bi.dir)
	target := benchTarget(b, bi.size)
	b.SetBytes(bi.size)
	var res Result
	for b.Loop() {
		var err error
		res, err = WriteImage(context.Background(), ImageRequest{URL: srv.URL + "/" + filepath.Base(file), Checksum: bi.sums[file]}, target, nil)
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(res.Downloaded)/float64(1<<20), "downloaded-MiB")
}

func BenchmarkWriteRaw(b *testing.B) { benchWrite(b, benchFixture(b).raw) }

func BenchmarkWriteQcow2(b *testing.B) { benchWrite(b, benchFixture(b).qcow2) }

// BenchmarkCurlDD is the baseline: curl -s URL | dd of=TARGET conv=fsync on
// the same source and target, with dd's usual bs=1M and with 4 MiB full
// blocks (the agent's own write size).
func BenchmarkCurlDD(b *testing.B) {
	bi := benchFixture(b)
	srv := serveFiles(b, bi.dir)
	for _, dd := range []struct{ name, args string }{
		{"bs=1M", "bs=1M"},
		{"bs=4M,fullblock", "bs=4M iflag=fullblock"},
	} {
		b.Run(dd.name, func(b *testing.B) {
			target := benchTarget(b, bi.size)
			b.SetBytes(bi.size)
			cmd := fmt.Sprintf("curl -sf %s/%s | dd of=%s %s conv=fsync,notrunc status=none", srv.URL, filepath.Base(bi.raw), target, dd.args)
			for b.Loop() {
				if out, err := exec.Command("sh", "-c", cmd).CombinedOutput(); err != nil {
					b.Fatalf("%s: %v %s", cmd, err, out)
				}
			}
		})
	}
}

// BenchmarkPeakRSS writes each image once in a child process (this test
// binary with rssChildEnv set) and reports its VmHWM.
func BenchmarkPeakRSS(b *testing.B) {
	bi := benchFixture(b)
	srv := serveFiles(b, bi.dir)
	for _, f := range []string{bi.raw, bi.qcow2} {
		b.Run(filepath.Ext(f)[1:], func(b *testing.B) {
			target := benchTarget(b, bi.size)
			var kb int64
			for b.Loop() {
				cmd := exec.Command(os.Args[0])
				cmd.Env = append(os.Environ(), rssChildEnv+"="+strings.Join([]string{srv.URL + "/" + filepath.Base(f), bi.sums[f], target}, "|"))
				out, err := cmd.CombinedOutput()
				if err != nil {
					b.Fatalf("child: %v\n%s", err, out)
				}
				if _, err := fmt.Sscanf(strings.TrimSpace(string(out)), "VmHWM-kB %d", &kb); err != nil {
					b.Fatalf("child output %q: %v", out, err)
				}
			}
			b.ReportMetric(float64(kb)/1024, "peak-RSS-MiB")
		})
	}
}

// BenchmarkWritePartition writes the same images as partition images: into the root
// partition of a disk laid out as Ironic does for BIOS (msdos; swap of 64 MiB before the
// root), so the numbers compare with BenchmarkWriteRaw and BenchmarkWriteQcow2. The disk is
// the image's size plus 80 MiB (first MiB, swap, alignment).
func BenchmarkWritePartition(b *testing.B) {
	bi := benchFixture(b)
	srv := serveFiles(b, bi.dir)
	for _, f := range []string{bi.raw, bi.qcow2} {
		b.Run(filepath.Ext(f)[1:], func(b *testing.B) {
			target := benchTarget(b, bi.size+80<<20)
			b.SetBytes(bi.size)
			var res PartitionResult
			for b.Loop() {
				var err error
				res, err = WritePartitionImage(context.Background(), PartitionImageRequest{
					Image:  ImageRequest{URL: srv.URL + "/" + filepath.Base(f), Checksum: bi.sums[f]},
					Layout: LayoutRequest{BootMode: "bios", SwapMiB: 64},
				}, target, nil)
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(res.Downloaded)/float64(1<<20), "downloaded-MiB")
		})
	}
}
