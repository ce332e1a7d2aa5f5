package proxy

import (
	"crypto/sha256"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cellgate/cellgate/internal/testwait"
)

// nginxConf runs nginx in the foreground from prefix: /echo answers with
// what nginx itself saw of the request (its raw $request_uri, the
// forwarding fields) and sets two cookies; /files/ serves prefix/www.
const nginxConf = `daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections 64; }
http {
	access_log off;
	client_body_temp_path %[1]s/tmp; proxy_temp_path %[1]s/tmp; fastcgi_temp_path %[1]s/tmp;
	uwsgi_temp_path %[1]s/tmp; scgi_temp_path %[1]s/tmp;
	server {
		listen %[2]s;
		root %[1]s/www;
		location /echo {
			default_type text/plain;
			add_header Set-Cookie "a=1; Path=/";
			add_header Set-Cookie "b=\"2 3\"";
			return 200 "uri=$request_uri|cookie=$http_cookie|fwd=$http_forwarded|xfp=$http_x_forwarded_proto|via=$http_via\n";
		}
	}
}
`

// startNginx runs nginx (skipping the test where it is not installed) and
// returns its address and its document root.
func startNginx(t *testing.T) (addr, www string) {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if bin, err = exec.LookPath("/usr/sbin/nginx"); err != nil {
			t.Skip("nginx not installed (apt-get install nginx-light; .ci/run installs it)")
		}
	}
	addr = deadAddr(t)
	prefix := t.TempDir()
	www = filepath.Join(prefix, "www")
	for _, d := range []string{www, filepath.Join(prefix, "tmp")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	conf := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(nginxConf, prefix, addr)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-p", prefix, "-c", conf, "-e", filepath.Join(prefix, "error.log"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	testwait.For(t, 10*time.Second, "nginx to listen", func() bool {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return addr, www
}

// TestRealPeers runs curl (a client nobody here wrote) through the proxy to
// nginx (an upstream nobody here wrote): nginx sees the target exactly as
// curl sent it and the Cookie unchanged, cellgate's forwarding fields, and
// both of its Set-Cookie fields reach curl; a 64 MB file arrives intact.
func TestRealPeers(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl not installed")
	}
	up, www := startNginx(t)
	big := make([]byte, 64<<20)
	for i := range big {
		big[i] = byte(i * 7)
	}
	if err := os.WriteFile(filepath.Join(www, "big.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	opts := testOptions()
	opts.ResponseHeaders = false
	p, err := New(opts, 42, []CellSpec{{Name: "a", Weight: 1, Endpoints: []string{up}}}, Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	addr := serveProxy(t, p, nil)

	out, err := exec.Command(curl, "-sS", "-i", "--path-as-is", "--max-time", "10",
		"-H", `Cookie: a={"k":1}; b="q v"; z=1`,
		"http://"+addr+"/echo/a%2Fb/%2e%2e/c//d%7E?x=%c3%a9").CombinedOutput()
	if err != nil {
		t.Fatalf("curl: %v\n%s", err, out)
	}
	got := string(out)
	for _, want := range []string{
		"uri=/echo/a%2Fb/%2e%2e/c//d%7E?x=%c3%a9|",
		`|cookie=a={"k":1}; b="q v"; z=1|`,
		"|fwd=for=127.0.0.1;proto=http;host=\"" + addr + "\"|",
		"|xfp=http|via=1.1 cellgate\n",
		"Set-Cookie: a=1; Path=/\r\n",
		"Set-Cookie: b=\"2 3\"\r\n",
		"Via: 1.1 cellgate\r\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("curl through cellgate to nginx: missing %q in\n%s", want, got)
		}
	}

	out, err = exec.Command(curl, "-sS", "--max-time", "30", "http://"+addr+"/big.bin").Output()
	if err != nil {
		t.Fatalf("curl big.bin: %v", err)
	}
	if sha256.Sum256(out) != sha256.Sum256(big) {
		t.Errorf("big.bin through cellgate: %d bytes, SHA-256 differs from nginx's file", len(out))
	}
}
