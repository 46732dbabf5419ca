package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/corsproc/corsproc/internal/importer"
	"github.com/corsproc/corsproc/internal/observe"
	"github.com/corsproc/corsproc/policy"
)

// suggestFetchTimeout bounds the whole /observed request: a hung admin
// listener must not hang the command.
const suggestFetchTimeout = 30 * time.Second

// maxObservedBytes bounds what suggest reads from /observed.
const maxObservedBytes = 32 << 20

func runSuggest(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newCommandFlags("suggest", "suggest --admin URL [--config FILE]", "Prints the minimal policy that allows what corsproc observed (GET URL/observed).\nExit 0 printed, 2 error.\n", stdout, stderr)
	admin := fs.String("admin", "", "the admin listener's base URL, e.g. http://127.0.0.1:9002")
	config := fs.String("config", "", "the running policy file: suggested policies keep its match blocks")
	rest, code, ok := fs.parse(args)
	if !ok {
		return code
	}
	if *admin == "" || len(rest) > 0 {
		return fs.usageError("give --admin URL and no other argument")
	}
	var cfg *policy.Set
	var err error
	if *config != "" {
		if cfg, err = policy.Load(*config); err != nil {
			fmt.Fprintf(stderr, "corsproc suggest: %s\n", err)
			return 2
		}
	}
	url := strings.TrimSuffix(*admin, "/") + "/observed"
	obs, err := fetchObserved(ctx, url)
	if err != nil {
		fmt.Fprintf(stderr, "corsproc suggest: %s\n", err)
		return 2
	}
	res, err := importer.Suggest(obs, url, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "corsproc suggest: %s\n", err)
		return 2
	}
	printResult(res, stdout, stderr)
	return 0
}

func fetchObserved(ctx context.Context, url string) (observe.Observed, error) {
	var obs observe.Observed
	ctx, cancel := context.WithTimeout(ctx, suggestFetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return obs, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return obs, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return obs, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	dec := json.NewDecoder(io.LimitReader(resp.Body, maxObservedBytes))
	if err := dec.Decode(&obs); err != nil {
		return obs, fmt.Errorf("GET %s: not an /observed document: %w", url, err)
	}
	return obs, nil
}
