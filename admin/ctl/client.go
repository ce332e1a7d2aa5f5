package ctl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// client speaks to one admin API.
type client struct {
	base  string // e.g. http://127.0.0.1:9901, no trailing slash
	token string // "" sends no Authorization header
	http  *http.Client
}

// maxAnswerBytes bounds what ctl reads of an answer: the journal of a
// long-lived node is the largest document, and 64 MiB is far above it.
const maxAnswerBytes = 64 << 20

// apiError is an error answer of the server ({"error", "code"}): exit 1.
type apiError struct {
	Status int
	Msg    string
	Code   string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("server answered %d: %s (code %s)", e.Status, e.Msg, e.Code)
}

// unreachableError is a failure to get any answer: exit 3.
type unreachableError struct{ err error }

func (e *unreachableError) Error() string {
	return fmt.Sprintf("cannot reach the admin API: %v", e.err)
}
func (e *unreachableError) Unwrap() error { return e.err }

// do sends one request and returns the answer's body for a 2xx status.
// body nil sends no body.
func (c *client) do(ctx context.Context, method, path string, body any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, &unreachableError{err}
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return nil, &unreachableError{err}
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, maxAnswerBytes))
	if err != nil {
		return nil, &unreachableError{fmt.Errorf("read answer: %w", err)}
	}
	if res.StatusCode/100 != 2 {
		return nil, answerError(res.StatusCode, data)
	}
	return data, nil
}

// answerError decodes an error answer; a body that is not the API's
// error shape (a proxy's HTML page) is reported by its status line.
func answerError(status int, data []byte) *apiError {
	var e struct {
		Error string `json:"error"`
		Code  string `json:"code"`
	}
	if json.Unmarshal(data, &e) != nil || e.Error == "" {
		msg := strings.TrimSpace(string(data))
		if len(msg) > 200 {
			msg = msg[:200] + "…"
		}
		if msg == "" {
			msg = http.StatusText(status)
		}
		return &apiError{Status: status, Msg: msg, Code: "http_" + fmt.Sprint(status)}
	}
	return &apiError{Status: status, Msg: e.Error, Code: e.Code}
}

// exitCode maps a command's error to the process exit code.
func exitCode(err error) int {
	var ue *unreachableError
	var us *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &us):
		return exitUsage
	case errors.As(err, &ue):
		return exitUnreachable
	}
	return exitServer
}

// defaultTimeout bounds one request; the API answers small documents.
const defaultTimeout = 15 * time.Second
