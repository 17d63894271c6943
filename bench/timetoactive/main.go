// Command timetoactive splits the time each deploy of a lab run took, from deploy to active,
// into firmware, kernel and ramdisk boot, image transfer and Ironwork's own share, reading the
// run's logs (DIR/serve.log, and DIR/lab.json for the node names) rather than a person
// reading timestamps. It only reads files; it starts and changes nothing.
//
//	go run ./bench/timetoactive DIR      (DIR: a lab directory, e.g. /var/tmp/ironwork-lab)
//
// For every deploy (a node's "provision state changed" to deploying, event deploy, up to the
// change to active) in serve.log:
//   - firmware: the first power on of the deploy (the conductor's "power state changed" to
//     power on or rebooting) to the node's first DHCP lease;
//   - kernel + ramdisk boot: that lease to the agent's lookup ("agent token issued");
//   - image transfer: the write_image step starting to its agent command finishing
//     (standby.prepare_image: download, write, checksum);
//   - Ironwork's own share: the rest (API, conductor, step transitions, the wait for the
//     next heartbeat, the agent's soft power off and the power state polls).
//
// A fast-track deploy (the conductor's "fast track: ..." line) has no power on, lease or lookup
// before its image: firmware and boot are 0.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

func main() {
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: timetoactive DIR   (a lab directory with serve.log)")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(flag.Arg(0), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "timetoactive:", err)
		os.Exit(1)
	}
}

func run(dir string, w io.Writer) error {
	f, err := os.Open(filepath.Join(dir, "serve.log"))
	if err != nil {
		return err
	}
	defer f.Close()
	events, err := readLog(f)
	if err != nil {
		return fmt.Errorf("read serve.log: %w", err)
	}
	names := nodeNames(filepath.Join(dir, "lab.json"))
	deploys := split(events)
	if len(deploys) == 0 {
		return errors.New("no deploy reached active in serve.log")
	}
	writeTable(w, deploys, names)
	return nil
}

// event is one log line: its time and its key=value fields.
type event struct {
	at     time.Time
	fields map[string]string
}

func (e event) get(k string) string { return e.fields[k] }

// readLog reads slog's text format (time=... level=... msg="..." key=value ...); lines that
// are not in it (the server's banner) are skipped.
func readLog(r io.Reader) ([]event, error) {
	var out []event
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 4*1024*1024)
	for sc.Scan() {
		fields, ok := parseLine(sc.Text())
		if !ok {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, fields["time"])
		if err != nil {
			continue
		}
		out = append(out, event{at: at, fields: fields})
	}
	return out, sc.Err()
}

// parseLine splits one logfmt line into its fields; false when it has no time field.
func parseLine(line string) (map[string]string, bool) {
	fields := map[string]string{}
	for i := 0; i < len(line); {
		for i < len(line) && line[i] == ' ' {
			i++
		}
		eq := strings.IndexByte(line[i:], '=')
		if eq <= 0 {
			break
		}
		key := line[i : i+eq]
		if strings.ContainsAny(key, " \"") {
			return nil, false
		}
		i += eq + 1
		var val string
		if i < len(line) && line[i] == '"' {
			j := i + 1
			for j < len(line) && line[j] != '"' {
				if line[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(line) {
				return nil, false
			}
			v, err := strconv.Unquote(line[i : j+1])
			if err != nil {
				return nil, false
			}
			val, i = v, j+1
		} else {
			j := strings.IndexByte(line[i:], ' ')
			if j < 0 {
				j = len(line) - i
			}
			val, i = line[i:i+j], i+j
		}
		fields[key] = val
	}
	_, ok := fields["time"]
	return fields, ok
}

// deploy is one deploy of one node and its split.
type deploy struct {
	node                       string
	start, end                 time.Time
	firmware, boot, image, own time.Duration
	fastTrack                  bool
	powerOn, lease, lookup     time.Time
	imageStart, imageEnd       time.Time
}

func (d deploy) total() time.Duration { return d.end.Sub(d.start) }

// split finds every deploy that reached active and splits its time.
func split(events []event) []deploy {
	var out []deploy
	open := map[string]*deploy{}
	for _, e := range events {
		node := e.get("node")
		if node == "" {
			continue
		}
		msg := e.get("msg")
		if msg == "provision state changed" && e.get("to") == "deploying" && (e.get("event") == "deploy" || e.get("event") == "rebuild") {
			open[node] = &deploy{node: node, start: e.at}
			continue
		}
		d := open[node]
		if d == nil {
			continue
		}
		switch {
		case msg == "provision state changed" && e.get("to") == "active":
			d.end = e.at
			out = append(out, finish(*d))
			delete(open, node)
		case msg == "provision state changed" && strings.HasSuffix(e.get("to"), "failed"):
			delete(open, node)
		case strings.HasPrefix(msg, "fast track:"):
			d.fastTrack = true
		case msg == "power state changed" && d.powerOn.IsZero() && d.imageStart.IsZero() &&
			(e.get("state") == "power on" || e.get("target") == "rebooting"):
			// The boot into the ramdisk; boot_instance's power on comes after the image.
			d.powerOn = e.at
		case msg == "lease" && d.lease.IsZero() && !d.powerOn.IsZero():
			d.lease = e.at
		case msg == "agent token issued" && d.lookup.IsZero():
			d.lookup = e.at
		case msg == "running step" && e.get("step") == "write_image":
			d.imageStart = e.at
		case msg == "agent command finished" && e.get("command") == "standby.prepare_image" && !d.imageStart.IsZero():
			d.imageEnd = e.at
		}
	}
	return out
}

// finish computes the parts of a deploy from its marks; a part whose marks are missing is 0.
func finish(d deploy) deploy {
	if !d.powerOn.IsZero() && !d.lease.IsZero() {
		d.firmware = d.lease.Sub(d.powerOn)
	}
	if !d.lease.IsZero() && !d.lookup.IsZero() {
		d.boot = d.lookup.Sub(d.lease)
	}
	if !d.imageStart.IsZero() && !d.imageEnd.IsZero() {
		d.image = d.imageEnd.Sub(d.imageStart)
	}
	d.own = d.total() - d.firmware - d.boot - d.image
	return d
}

// nodeNames maps node UUIDs to the lab's machine names (none when lab.json is unreadable).
func nodeNames(path string) map[string]string {
	out := map[string]string{}
	b, err := os.ReadFile(path)
	if err != nil {
		return out
	}
	var st struct {
		Nodes []struct {
			Name string `json:"name"`
			UUID string `json:"uuid"`
		} `json:"nodes"`
	}
	if json.Unmarshal(b, &st) == nil {
		for _, n := range st.Nodes {
			out[n.UUID] = n.Name
		}
	}
	return out
}

func writeTable(w io.Writer, deploys []deploy, names map[string]string) {
	fmt.Fprintln(w, "| node | deploy → active | firmware | kernel + ramdisk boot | image transfer | Ironwork's own share | fast track |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---|")
	sec := func(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }
	for _, d := range deploys {
		name := names[d.node]
		if name == "" {
			name = d.node
		}
		ft := "no"
		if d.fastTrack {
			ft = "yes"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s |\n", name, sec(d.total()), sec(d.firmware), sec(d.boot), sec(d.image), sec(d.own), ft)
	}
}
