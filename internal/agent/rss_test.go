package agent

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// rssChildEnv makes the test binary act as a child that writes one image and
// prints its peak RSS (VmHWM), so the measurement excludes the test runner.
const rssChildEnv = "AGENT_RSS_CHILD"

// rssChild runs WriteImage with "URL|CHECKSUM|TARGET" from rssChildEnv.
func rssChild() int {
	parts := strings.Split(os.Getenv(rssChildEnv), "|")
	if len(parts) != 3 {
		fmt.Fprintln(os.Stderr, "bad", rssChildEnv)
		return 2
	}
	_, err := WriteImage(context.Background(), ImageRequest{URL: parts[0], Checksum: parts[1]}, parts[2], nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "write image:", err)
		return 1
	}
	kb, err := vmHWM()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("VmHWM-kB %d\n", kb)
	return 0
}

func vmHWM() (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/self/status")
}
