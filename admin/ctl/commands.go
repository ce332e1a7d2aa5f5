package ctl

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"net/url"
	"os"
	"strconv"

	"github.com/cellgate/cellgate/admin"
)

// get fetches path and either prints the JSON or hands it to table.
func (c *cmd) get(ctx context.Context, path string, table func([]byte) error) error {
	data, err := c.c.do(ctx, "GET", path, nil)
	if err != nil {
		return err
	}
	return c.print(data, table)
}

// print writes the server's JSON as is with -o json, else the table.
func (c *cmd) print(data []byte, table func([]byte) error) error {
	if c.json {
		_, err := c.stdout.Write(data)
		return err
	}
	return table(data)
}

func (c *cmd) status(ctx context.Context, args []string) error {
	if _, err := parseArgs(flag.NewFlagSet("status", flag.ContinueOnError), args, 0, ""); err != nil {
		return err
	}
	return c.get(ctx, "/v1/status", func(data []byte) error {
		var doc admin.StatusDoc
		if err := json.Unmarshal(data, &doc); err != nil {
			return c.raw(data)
		}
		return writeStatus(c.stdout, &doc)
	})
}

func (c *cmd) cells(ctx context.Context, args []string) error {
	if _, err := parseArgs(flag.NewFlagSet("cells", flag.ContinueOnError), args, 0, ""); err != nil {
		return err
	}
	return c.get(ctx, "/v1/cells", func(data []byte) error {
		var cells []admin.CellStatus
		if err := json.Unmarshal(data, &cells); err != nil {
			return c.raw(data)
		}
		return writeCells(c.stdout, cells)
	})
}

func (c *cmd) weight(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("weight", flag.ContinueOnError)
	reason := fs.String("reason", "", "why, for the journal")
	pos, err := parseArgs(fs, args, 2, "CELL WEIGHT [-reason R]")
	if err != nil {
		return err
	}
	w, err := strconv.ParseFloat(pos[1], 64)
	if err != nil || w < 0 || math.IsInf(w, 0) {
		return usagef("weight %q: want a number ≥ 0", pos[1])
	}
	body := map[string]any{"weight": w, "reason": *reason}
	data, err := c.c.do(ctx, "PUT", "/v1/cells/"+url.PathEscape(pos[0])+"/weight", body)
	if err != nil {
		return err
	}
	return c.print(data, func([]byte) error {
		_, err := fmt.Fprintf(c.stdout, "cell %s: weight set to %s\n", pos[0], num(w))
		return err
	})
}

func (c *cmd) rolloutCmd(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usagef("usage: cellgate ctl rollout start FILE.json|- · rollout get ID")
	}
	switch args[0] {
	case "start":
		return c.start(ctx, args[1:])
	case "get":
		pos, err := parseArgs(flag.NewFlagSet("rollout get", flag.ContinueOnError), args[1:], 1, "ID")
		if err != nil {
			return err
		}
		return c.get(ctx, "/v1/rollouts/"+url.PathEscape(pos[0]), func(data []byte) error {
			var r rolloutDoc
			if err := json.Unmarshal(data, &r); err != nil {
				return c.raw(data)
			}
			return writeRollout(c.stdout, &r)
		})
	}
	return usagef("unknown rollout command %q (want start or get)", args[0])
}

func (c *cmd) start(ctx context.Context, args []string) error {
	pos, err := parseArgs(flag.NewFlagSet("rollout start", flag.ContinueOnError), args, 1, "FILE.json|-")
	if err != nil {
		return err
	}
	plan, err := c.readPlan(pos[0])
	if err != nil {
		return err
	}
	data, err := c.c.do(ctx, "POST", "/v1/rollouts", plan)
	if err != nil {
		return err
	}
	return c.print(data, func(data []byte) error {
		var r struct{ ID, Status string }
		if err := json.Unmarshal(data, &r); err != nil {
			return c.raw(data)
		}
		_, err := fmt.Fprintf(c.stdout, "started rollout %s (%s)\n", r.ID, r.Status)
		return err
	})
}

// readPlan reads the plan file (or stdin for "-"). It must be JSON; the
// server checks the rest.
func (c *cmd) readPlan(name string) (json.RawMessage, error) {
	var data []byte
	var err error
	if name == "-" {
		data, err = io.ReadAll(io.LimitReader(c.stdin, admin.DefaultMaxBodyBytes+1))
	} else {
		data, err = os.ReadFile(name)
	}
	if err != nil {
		return nil, usagef("read plan: %v", err)
	}
	if !json.Valid(data) {
		return nil, usagef("plan %s is not valid JSON", name)
	}
	return json.RawMessage(data), nil
}

func (c *cmd) rollouts(ctx context.Context, args []string) error {
	if _, err := parseArgs(flag.NewFlagSet("rollouts", flag.ContinueOnError), args, 0, ""); err != nil {
		return err
	}
	return c.get(ctx, "/v1/rollouts", func(data []byte) error {
		var rs []rolloutDoc
		if err := json.Unmarshal(data, &rs); err != nil {
			return c.raw(data)
		}
		return writeRollouts(c.stdout, rs)
	})
}

func (c *cmd) action(ctx context.Context, action string, args []string) error {
	fs := flag.NewFlagSet(action, flag.ContinueOnError)
	reason := fs.String("reason", "", "why, for the journal")
	pos, err := parseArgs(fs, args, 1, "ID [-reason R]")
	if err != nil {
		return err
	}
	data, err := c.c.do(ctx, "POST", "/v1/rollouts/"+url.PathEscape(pos[0])+"/"+action, map[string]string{"reason": *reason})
	if err != nil {
		return err
	}
	return c.print(data, func(data []byte) error {
		var r rolloutDoc
		if err := json.Unmarshal(data, &r); err != nil || r.Status == "" {
			_, err := fmt.Fprintf(c.stdout, "rollout %s: %s done\n", pos[0], action)
			return err
		}
		_, err := fmt.Fprintf(c.stdout, "rollout %s: %s\n", pos[0], r.Status)
		return err
	})
}

func (c *cmd) audit(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("audit", flag.ContinueOnError)
	since := fs.Int64("since", -1, "every event after this sequence number, fetched page by page (default: only the newest -limit)")
	limit := fs.Int("limit", admin.DefaultAuditLimit, "events per page")
	if _, err := parseArgs(fs, args, 0, "[-since N] [-limit N]"); err != nil {
		return err
	}
	if *since < 0 { // the newest page only
		return c.get(ctx, "/v1/audit?limit="+strconv.Itoa(*limit), func(data []byte) error {
			var evs []event
			if err := json.Unmarshal(data, &evs); err != nil {
				return c.raw(data)
			}
			return writeAudit(c.stdout, evs)
		})
	}
	evs, err := c.auditPages(ctx, uint64(*since), *limit)
	if err != nil {
		return err
	}
	if c.json {
		return json.NewEncoder(c.stdout).Encode(evs)
	}
	var typed []event
	for _, raw := range evs {
		var ev event
		if err := json.Unmarshal(raw, &ev); err != nil {
			return fmt.Errorf("audit event: %w", err)
		}
		typed = append(typed, ev)
	}
	return writeAudit(c.stdout, typed)
}

// auditPages fetches every event after since, a page of limit at a time,
// following each page's last seq until a page comes back short.
func (c *cmd) auditPages(ctx context.Context, since uint64, limit int) ([]json.RawMessage, error) {
	var all []json.RawMessage
	for {
		data, err := c.c.do(ctx, "GET", fmt.Sprintf("/v1/audit?since=%d&limit=%d", since, limit), nil)
		if err != nil {
			return nil, err
		}
		var page []json.RawMessage
		if err := json.Unmarshal(data, &page); err != nil {
			return nil, fmt.Errorf("audit page after %d: %w", since, err)
		}
		all = append(all, page...)
		if len(page) < limit {
			return all, nil
		}
		var last struct {
			Seq uint64 `json:"seq"`
		}
		if err := json.Unmarshal(page[len(page)-1], &last); err != nil || last.Seq <= since {
			return nil, fmt.Errorf("audit page after %d does not move forward", since)
		}
		since = last.Seq
	}
}

func (c *cmd) reload(ctx context.Context, args []string) error {
	if _, err := parseArgs(flag.NewFlagSet("reload", flag.ContinueOnError), args, 0, ""); err != nil {
		return err
	}
	data, err := c.c.do(ctx, "POST", "/v1/config/reload", nil)
	if err != nil {
		return err
	}
	return c.print(data, func(data []byte) error {
		fmt.Fprintln(c.stdout, "config reloaded")
		return writeFields(c.stdout, data)
	})
}

func (c *cmd) signal(ctx context.Context, args []string) error {
	pos, err := parseArgs(flag.NewFlagSet("signal", flag.ContinueOnError), args, 3, "CELL NAME VALUE")
	if err != nil {
		return err
	}
	v, err := strconv.ParseFloat(pos[2], 64)
	if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
		return usagef("signal value %q: want a number", pos[2])
	}
	data, err := c.c.do(ctx, "POST", "/v1/signals", map[string]any{"cell": pos[0], "name": pos[1], "value": v})
	if err != nil {
		return err
	}
	return c.print(data, func([]byte) error {
		_, err := fmt.Fprintf(c.stdout, "signal %s=%s for cell %s accepted\n", pos[1], num(v), pos[0])
		return err
	})
}

// raw prints an answer ctl has no table for (a backend shape it does not
// know) as the JSON it is.
func (c *cmd) raw(data []byte) error {
	_, err := c.stdout.Write(data)
	return err
}
