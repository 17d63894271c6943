package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/ironwork/ironwork/api"
)

const consoleUsage = `Usage: ironwork console NODE [--wait DURATION] [--no-enable]

Attaches this terminal to the node's serial console: enables the console first when it is not
(PUT /v1/nodes/NODE/states/console), connects to the tcp:// URL the conductor serves it at,
and puts the terminal in raw mode while attached. Type ~. at the start of a line to leave (~~
sends one ~). The console stays enabled afterwards: 'baremetal node console disable NODE' (or
PUT states/console {"enabled": false}) disables it.

Flags:
`

func runConsole(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ironwork console", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, consoleUsage); fs.PrintDefaults() }
	client := clientFlags(fs)
	wait := fs.Duration("wait", time.Minute, "how long to wait for the console to be served")
	noEnable := fs.Bool("no-enable", false, "fail instead of enabling a disabled console")
	node, code := oneArgument(fs, args)
	if code >= 0 {
		return code
	}
	url, err := consoleURL(ctx, client(), node, *wait, !*noEnable)
	if err != nil {
		fmt.Fprintf(stderr, "ironwork console: %v\n", err)
		return 1
	}
	addr, _ := strings.CutPrefix(url, "tcp://")
	var d net.Dialer
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	conn, err := d.DialContext(dctx, "tcp", addr)
	cancel()
	if err != nil {
		fmt.Fprintf(stderr, "ironwork console: connect to %s: %v\n", url, err)
		return 1
	}
	defer conn.Close()
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		old, err := term.MakeRaw(int(f.Fd()))
		if err == nil {
			defer term.Restore(int(f.Fd()), old)
		}
	}
	fmt.Fprintf(stderr, "Connected to the console of node %s at %s; type ~. at the start of a line to leave.\r\n", node, url)
	left := make(chan error, 1)
	go func() { left <- copyEscaped(conn, stdin) }()
	fromNode := make(chan error, 1)
	go func() {
		_, err := io.Copy(stdout, conn)
		fromNode <- err
	}()
	select {
	case err := <-left:
		conn.Close()
		<-fromNode
		if errors.Is(err, errLeave) || err == nil {
			fmt.Fprintf(stderr, "\r\nLeft the console of node %s (it stays enabled).\r\n", node)
			return 0
		}
		fmt.Fprintf(stderr, "\r\nironwork console: %v\r\n", err)
		return 1
	case err := <-fromNode:
		if err != nil && !errors.Is(err, net.ErrClosed) {
			fmt.Fprintf(stderr, "\r\nironwork console: %v\r\n", err)
		} else {
			fmt.Fprintf(stderr, "\r\nThe console of node %s was closed by the conductor.\r\n", node)
		}
		return 1
	case <-ctx.Done():
		return 1
	}
}

// consoleURL returns the node's console URL, enabling the console when allowed and needed,
// and waiting (bounded by wait) until the conductor serves it.
func consoleURL(ctx context.Context, c *api.Client, node string, wait time.Duration, enable bool) (string, error) {
	type state struct {
		Enabled bool `json:"console_enabled"`
		Info    *struct {
			URL string `json:"url"`
		} `json:"console_info"`
	}
	path := "/v1/nodes/" + node + "/states/console"
	deadline := time.Now().Add(wait)
	asked := false
	for {
		var st state
		if err := c.Do(ctx, http.MethodGet, path, nil, &st); err != nil {
			return "", err
		}
		if st.Enabled && st.Info != nil && strings.HasPrefix(st.Info.URL, "tcp://") {
			return st.Info.URL, nil
		}
		if !st.Enabled && !asked {
			if !enable {
				return "", fmt.Errorf("the console of node %s is not enabled", node)
			}
			if err := c.Do(ctx, http.MethodPut, path, map[string]any{"enabled": true}, nil); err != nil {
				return "", fmt.Errorf("enable the console: %w", err)
			}
			asked = true
		}
		if time.Now().After(deadline) {
			var n map[string]any
			_ = c.Do(ctx, http.MethodGet, "/v1/nodes/"+node, nil, &n)
			if le, _ := n["last_error"].(string); le != "" {
				return "", fmt.Errorf("the console of node %s is not served after %s: %s", node, wait, le)
			}
			if st.Enabled {
				return "", fmt.Errorf("the console of node %s is enabled but not served (it is hidden between an undeploy and the next deploy)", node)
			}
			return "", fmt.Errorf("the console of node %s is not served after %s", node, wait)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// errLeave is copyEscaped's answer to "~." at the start of a line.
var errLeave = errors.New("left the console")

// copyEscaped copies keystrokes from in to out, watching for the escape "~" at the start of a
// line (as ssh does): "~." leaves (errLeave), "~~" sends one "~", "~" before anything else
// is sent as typed. It returns nil when in ends.
func copyEscaped(out io.Writer, in io.Reader) error {
	var e escaper
	buf := make([]byte, 256)
	for {
		n, err := in.Read(buf)
		if n > 0 {
			send, leave := e.feed(buf[:n])
			if len(send) > 0 {
				if _, werr := out.Write(send); werr != nil {
					return werr
				}
			}
			if leave {
				return errLeave
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// escaper finds "~." at the start of a line in a stream of keystrokes.
type escaper struct {
	midLine bool // a character other than a line end was sent last
	tilde   bool // a "~" at the start of a line is held back
}

// feed returns what of p to send, and whether the user asked to leave (what follows "~." is
// not sent).
func (e *escaper) feed(p []byte) (send []byte, leave bool) {
	send = make([]byte, 0, len(p))
	for _, b := range p {
		if e.tilde {
			e.tilde = false
			switch b {
			case '.':
				return send, true
			case '~':
				send = append(send, '~')
				e.midLine = true
				continue
			default:
				send = append(send, '~')
				e.midLine = true
			}
		}
		if b == '~' && !e.midLine {
			e.tilde = true
			continue
		}
		send = append(send, b)
		e.midLine = b != '\r' && b != '\n'
	}
	return send, false
}
